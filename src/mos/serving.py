"""Gunicorn wiring: the application, threaded workers, and JSON for Gunicorn's own errors."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import ThreadWorker

from mos.config import Settings

_CODES = {400: "bad_request", 403: "forbidden", 408: "request_timeout", 414: "uri_too_long",
          417: "expectation_failed", 431: "headers_too_large", 500: "internal_error",
          501: "not_implemented"}


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


class PatientSocket(socket.socket):
    """A client socket whose blocking mode waits at most `idle` seconds for each read or write.

    Gunicorn's threaded worker reads a request on a blocking socket with no time limit, so a
    client that sends half a request and goes silent holds a thread for ever; a few of them
    hold every thread. Gunicorn switches the socket to blocking before it reads; here that
    switch sets a timeout instead. A slow upload is fine as long as bytes keep coming.
    """

    idle: float = 60.0

    def setblocking(self, flag: bool) -> None:
        """Blocking means "blocking, but at most `idle` seconds per call"."""
        if flag:
            self.settimeout(self.idle)
        else:
            super().setblocking(False)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """recv, with silence reported as ClientSilent rather than a socket error."""
        try:
            return super().recv(bufsize, flags)
        except TimeoutError:
            raise ClientSilent() from None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """recv_into, with silence reported as ClientSilent."""
        try:
            return super().recv_into(buffer, nbytes, flags)
        except TimeoutError:
            raise ClientSilent() from None


def socket_body(environ: dict[str, Any], piece: int) -> Iterator[bytearray] | None:
    """The body of a Content-Length request straight from Gunicorn's socket, or None.

    Gunicorn's reader gathers each read in BytesIO buffers and slices them, copying a large
    upload two or three times over; reading into fresh buffers with recv_into copies it once
    (kernel to buffer), which made 512 MiB raw PUTs about a third faster here. The bytes
    Gunicorn has already read past the headers come first; the reader's remaining length is
    kept exact after every read, so a body left unread is drained by Gunicorn as before, and
    bytes of a pipelined next request stay in its buffer. None (use wsgi.input) for anything
    else: chunked bodies, other servers, the test client.
    """
    body = environ.get("wsgi.input")
    sock = environ.get("gunicorn.socket")
    if not (
        isinstance(body, Body)
        and isinstance(body.reader, LengthReader)
        and isinstance(body.reader.unreader, SocketUnreader)
        and body.reader.unreader.sock is sock
        and sock is not None
    ):
        return None
    return _socket_pieces(body, body.reader, sock, piece)


def _socket_pieces(
    body: Body, reader: LengthReader, sock: socket.socket, piece: int
) -> Iterator[bytearray]:
    # Body.buf holds body bytes the reader already counted; the unreader's buffer holds bytes
    # read from the socket and not yet counted, possibly running into the next request.
    unreader = reader.unreader
    ahead = unreader.buf.getvalue()
    taken = ahead[: reader.length]
    unreader.buf = io.BytesIO()
    unreader.buf.write(ahead[len(taken):])
    reader.length -= len(taken)
    first = bytearray(body.buf.getvalue() + taken)
    body.buf = io.BytesIO()
    if first:
        yield first
    while reader.length > 0:
        buf = bytearray(min(piece, reader.length))
        view = memoryview(buf)
        got = 0
        while got < len(buf):
            try:
                n = sock.recv_into(view[got:])
            except Exception:
                body.failed = True  # the connection broke or went silent: Gunicorn closes it
                raise
            if n == 0:  # the client closed early: the caller sees a short body
                body.failed = True  # and Gunicorn closes the connection, reading no more
                if got:
                    yield buf[:got]
                return
            got += n
            reader.length -= n
        yield buf


class ClientSilent(Exception):
    """The client sent nothing for MOS_CLIENT_TIMEOUT seconds in the middle of a request.

    Not an OSError on purpose: Gunicorn logs OSErrors with a traceback, and hands other
    errors to handle_error, which answers 408.
    """


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    """Gunicorn's threaded worker: JSON protocol errors, and silent clients time out."""

    def init_process(self) -> None:
        """Swap in the JSON error writer; handle_error looks it up on gunicorn.util."""
        util.write_error = write_json_error
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Give each new connection a PatientSocket before a thread reads from it."""
        if not isinstance(conn.sock, PatientSocket):
            sock = conn.sock
            conn.sock = PatientSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
            conn.sock.setblocking(False)
        super().enqueue_req(conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """A client that went silent gets a 408 and the connection closes; no 500, no trace."""
        if isinstance(exc, ClientSilent):
            self.log.info("client %s silent for %ss; closing", addr, PatientSocket.idle)
            with contextlib.suppress(OSError):
                write_json_error(client, 408, "Request Timeout",
                                 "the client sent nothing for too long")
            return
        super().handle_error(req, client, addr, exc)


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
            # A header name with '_' would be dropped silently (X-Meta-my_key): refuse it.
            "header_map": "refuse",
            # Gunicorn's control socket is one per user's home: parallel servers fight over it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)
        # Workers are forked from this process, so they inherit the class attribute.
        PatientSocket.idle = s.client_timeout

    def load(self) -> Any:
        """Each worker builds its own app, so no connection crosses a fork."""
        from mos.app import create_app

        # The service's own log lines go where Gunicorn's error log goes.
        mos_log = logging.getLogger("mos")
        mos_log.handlers = logging.getLogger("gunicorn.error").handlers
        mos_log.setLevel(logging.INFO)
        return create_app(self.settings, prepare=False)
