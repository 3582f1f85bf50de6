"""Gunicorn wiring: the application, threaded workers, and JSON for Gunicorn's own errors."""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from mos.config import Settings

_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
          431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Answer a request Gunicorn rejected before the app saw it (bad request line, headers
    too large, ...) in API.md's JSON error shape instead of Gunicorn's HTML page."""
    body = json.dumps({
        "error": f"{reason}: {mesg}" if mesg else reason,
        "code": _CODES.get(status_int, "bad_request"),
    }).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    """Gunicorn's threaded worker whose protocol-level errors are JSON."""

    def init_process(self) -> None:
        """Swap in the JSON error writer; handle_error looks it up on gunicorn.util."""
        util.write_error = write_json_error
        super().init_process()


class MosApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn running create_app(settings) in each worker, built after the fork."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """Settings become Gunicorn options; nothing is read from Gunicorn's own sources."""
        s = self.settings
        options: dict[str, Any] = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "threads": s.threads,
            "worker_class": "mos.serving.JsonErrorThreadWorker",
            # Multi-GB uploads on slow links must not be killed for silence.
            "timeout": 0,
            "graceful_timeout": 30,
            "keepalive": 5,
            "accesslog": "-",
            "access_log_format": '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s',
            "proc_name": "mos",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Each worker builds its own app, so no connection crosses a fork."""
        from mos.app import create_app

        return create_app(self.settings, prepare=False)
