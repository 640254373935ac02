"""`manage.py serve_metrics --port 9108`: `/metrics` for a host that runs Celery workers but no web process.

Multiprocess metrics are summed per host (one PROMETHEUS_MULTIPROC_DIR); a worker-only host has no
gunicorn to serve them, so this small exporter does, with the same METRICS_TOKEN check. The database
gauges are the same from every host, so they are left to the web processes unless asked for.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from tenants import metrics


class _Handler(BaseHTTPRequestHandler):
    database_gauges = False

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self._answer(404, b"not found\n", "text/plain")
        elif not metrics.token_accepted(self.headers.get("Authorization", ""), settings.METRICS_TOKEN):
            self._answer(401, b"invalid or missing metrics token\n", "text/plain")
        else:
            try:
                body = metrics.exposition(database_gauges=self.database_gauges)
            finally:
                connections.close_all()  # one short-lived connection per scrape thread
            self._answer(200, body, CONTENT_TYPE_PLAIN_0_0_4)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # scrapes every 15 s would flood the log
        pass


class Command(BaseCommand):
    help = "Serve this host's Prometheus metrics (Celery-only hosts) on --addr:--port."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="0.0.0.0", help="Address to listen on")  # noqa: S104 — scraped from outside
        parser.add_argument("--port", type=int, default=9108)
        parser.add_argument("--database-gauges", action="store_true", help="Also serve the database gauges")

    def handle(self, *args, **options) -> None:
        handler = type("Handler", (_Handler,), {"database_gauges": options["database_gauges"]})
        server = ThreadingHTTPServer((options["addr"], options["port"]), handler)
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.stdout.write(f"Serving metrics on http://{host}:{port}/metrics", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
