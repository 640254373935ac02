"""The results CSV of a campaign (SPEC §15), produced row by row so memory stays constant.

Columns: the rows' own columns (in first-seen order), then `status, reason, attempts, call_id,
call_status, disposition, summary, extracted.<name>..., variables.<name>..., error`. A first pass
reads only the JSON keys to know the columns; the second streams the rows in chunks.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from campaigns.models import Campaign, CampaignRow

CHUNK = 2000
FIXED = ["status", "reason", "attempts", "call_id", "call_status", "disposition", "summary"]
# Spreadsheets run a cell starting with these as a formula (CSV injection); a phone number's "+" stays.
FORMULA_STARTS = ("=", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _keys(campaign: Campaign) -> tuple[list[str], list[str], list[str]]:
    """The rows' own columns in upload order, then the extracted and variable names (sorted)."""
    data = dict.fromkeys(campaign.data_columns or [])
    extracted: set[str] = set()
    variables: set[str] = set()
    rows = CampaignRow.objects.filter(campaign=campaign).values_list("data", "extracted", "variables")
    for row_data, row_extracted, row_variables in rows.iterator(chunk_size=CHUNK):
        for target, source in ((extracted, row_extracted), (variables, row_variables)):
            if isinstance(source, dict):
                target.update(source)
        if isinstance(row_data, dict) and not row_data.keys() <= data.keys():
            data.update(dict.fromkeys(sorted(row_data)))
    return list(data), sorted(extracted), sorted(variables)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if text.startswith(FORMULA_STARTS) or (text[:1] in "+-" and not text[1:2].isdigit() and text[1:]):
        return "'" + text
    return text


def stream_results(campaign: Campaign) -> Iterator[str]:
    """The CSV text, one line at a time."""
    data_keys, extracted_keys, variable_keys = _keys(campaign)
    writer = csv.writer(_Echo())
    yield "\ufeff"  # spreadsheets read UTF-8 only with a BOM
    yield writer.writerow(
        [
            *data_keys,
            *FIXED,
            *(f"extracted.{k}" for k in extracted_keys),
            *(f"variables.{k}" for k in variable_keys),
            "error",
        ]
    )
    rows = CampaignRow.objects.filter(campaign=campaign).select_related("call").order_by("row")
    for row in rows.iterator(chunk_size=CHUNK):
        outcome = row.call.call_outcome if row.call and isinstance(row.call.call_outcome, dict) else {}
        values = [row.data.get(k) for k in data_keys]
        values += [row.status, row.reason, row.attempts, row.call_id, row.call.status if row.call else ""]
        values += [row.disposition, outcome.get("summary")]
        values += [(row.extracted or {}).get(k) for k in extracted_keys]
        values += [(row.variables or {}).get(k) for k in variable_keys]
        values.append(row.error)
        yield writer.writerow([_cell(v) for v in values])
