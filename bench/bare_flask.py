"""The framework floor: a bare Flask app under Gunicorn with mos serve's worker settings.

GET/HEAD /data/file/<id> answer 4 KiB from memory; PUT /data/file/<id> reads the body fully
and answers 201. Run: python -m bench.bare_flask --port PORT.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from mos.config import Settings

OBJECT = os.urandom(4096)


def create_app() -> Flask:
    """Two routes, nothing else: no auth, no store, no JSON."""
    app = Flask("bare_flask")

    @app.get("/data/file/<path:identifier>")
    def get_file(identifier: str) -> Response:
        return Response(OBJECT, 200, mimetype="application/octet-stream")

    @app.put("/data/file/<path:identifier>")
    def put_file(identifier: str) -> tuple[str, int]:
        request.stream.read()  # read the whole body, as an upload would
        return "", 201

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


class BareApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn with the same worker class, counts, timeouts and access log as mos serve."""

    def __init__(self, port: int) -> None:
        self.port = port
        super().__init__()

    def load_config(self) -> None:
        """mos.serving.MosApplication's options, from mos's own defaults (Settings())."""
        s = Settings()
        options: dict[str, Any] = {
            "bind": f"127.0.0.1:{self.port}",
            "workers": s.workers,
            "threads": s.threads,
            "worker_class": "gthread",
            "timeout": 0,
            "graceful_timeout": 30,
            "keepalive": 5,
            "accesslog": "-",
            "access_log_format": '%(h)s "%(r)s" %(s)s %(B)s %(M)sms',
            "proc_name": "bare-flask",
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """The app, built in each worker."""
        return create_app()


def main() -> None:
    """python -m bench.bare_flask --port PORT."""
    p = argparse.ArgumentParser(prog="python -m bench.bare_flask")
    p.add_argument("--port", type=int, required=True)
    BareApplication(p.parse_args().port).run()


if __name__ == "__main__":
    main()
