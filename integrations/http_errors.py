"""The errors of the outgoing-HTTP client (`integrations.http`), apart so that the address policy
(`integrations.destinations`) can raise them too. `integrations.http` re-exports every one: that is
where callers take them from."""

from __future__ import annotations

__all__ = [
    "ConnectionFailed",
    "DestinationNotAllowed",
    "InvalidURL",
    "OutboundError",
    "RequestTimeout",
    "ResponseTooLarge",
    "TLSFailure",
    "TooManyRedirects",
]


class OutboundError(Exception):
    """Base of every error `send()` raises; the message is safe to show and store.

    `refused` is true when the platform refused to send (nothing left the machine): SPEC §4 calls
    that a `failure`, every other error an `exception`.
    """

    refused = False


class DestinationNotAllowed(OutboundError):
    refused = True

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"destination not allowed: {reason}")


class InvalidURL(OutboundError):
    refused = True


class RequestTimeout(OutboundError):
    pass


class ConnectionFailed(OutboundError):
    pass


class TLSFailure(OutboundError):
    pass


class ResponseTooLarge(OutboundError):
    pass


class TooManyRedirects(OutboundError):
    pass
