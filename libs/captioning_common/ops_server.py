"""A small HTTP server giving /metrics, /healthz and /readyz to services without an HTTP API."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], bool]


def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, str]]:
    """Run named checks; a check that raises counts as failed. Returns (all ok, results)."""
    results = {}
    for name, check in checks.items():
        try:
            results[name] = "ok" if check() else "failing"
        except Exception as exc:  # a failing dependency must not break the probe itself
            results[name] = f"error: {type(exc).__name__}"
    return all(value == "ok" for value in results.values()), results


class OpsServer:
    """Serves ``/metrics`` from a registry, ``/healthz`` (liveness) and ``/readyz`` (readiness).

    Each probe answers 200 with a JSON body when all its checks pass, 503 otherwise.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        liveness: dict[str, Check] | None = None,
        readiness: dict[str, Check] | None = None,
    ) -> None:
        self.registry = registry
        self.liveness = liveness or {}
        self.readiness = readiness or {}
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-server", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._server.server_address[1]

    def start(self) -> OpsServer:
        """Serve in a background thread."""
        self._thread.start()
        log.info("ops server listening", extra={"port": self.port})
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(ops.registry))
                elif path in ("/healthz", "/readyz"):
                    ok, results = run_checks(ops.liveness if path == "/healthz" else ops.readiness)
                    body = json.dumps({"status": "ok" if ok else "failing", "checks": results}).encode()
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "application/json", json.dumps({"error": "not_found", "path": path}).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # probes are too frequent to log
                return

        return Handler
