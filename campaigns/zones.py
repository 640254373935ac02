"""Which time zones a contact is in, and whether the calling window is open there now.

A row's zones come from its `timezone` column if that names an IANA zone, else from the number
(`phonenumbers`' timezone data: a US number may map to several zones, and the window must then hold
in all of them). They are kept as a `zone_key` (`|`-joined names, "" = unknown) so the dispatcher can
ask the database only for rows of the zones that are open.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_timezones

from campaigns.validation import window_times, zone_or_none

UNKNOWN_ZONE = "Etc/Unknown"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone_key_for(number: phonenumbers.PhoneNumber, number_type: int, zone_column: object = None) -> str:
    """The zone key of a contact (its parsed, valid number and its type): its own `timezone` column
    if valid, else its number's zones, else ""."""
    if isinstance(zone_column, str) and zone_column and zone_or_none(zone_column) is not None:
        return zone_column.strip()
    zones = sorted(z for z in _time_zones(number, number_type) if z != UNKNOWN_ZONE)
    return "|".join(zones)


def _time_zones(number: phonenumbers.PhoneNumber, number_type: int) -> tuple[str, ...]:
    # phonenumbers' time_zones_for_number given the type the importer already computed to validate
    # the number: computing it twice was a third of the import's time at 100,000 rows.
    if not phonenumbers.is_number_type_geographical(number_type, number.country_code or 0):
        return phone_timezones._country_level_time_zones_for_number(number)
    return phone_timezones.time_zones_for_geographical_number(number)


@lru_cache(maxsize=4096)
def _zones(key: str):
    return tuple(z for z in (zone_or_none(name) for name in key.split("|")) if z is not None)


def open_in(key: str, window: dict, now: datetime) -> bool:
    """True when the window is open at `now` in every zone of `key` (an unreadable key: never)."""
    zones = _zones(key)
    if not zones:
        return False
    start, end = window_times(window)
    return all(_open_at(now.astimezone(zone), window["days"], start, end) for zone in zones)


def _open_at(local: datetime, days: list[str], start: time, end: time) -> bool:
    clock = local.time().replace(tzinfo=None)
    if start < end:
        return DAY_NAMES[local.weekday()] in days and start <= clock < end
    # A window past midnight (22:00-02:00) belongs to the day it starts on.
    if clock >= start:
        return DAY_NAMES[local.weekday()] in days
    if clock < end:
        return DAY_NAMES[(local.weekday() - 1) % 7] in days
    return False
