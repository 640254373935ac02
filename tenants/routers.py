from __future__ import annotations

from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """The API's paths are written without a trailing slash (`/api/v1/rules`); one is tolerated."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
