"""A thin HTTP client on http.client: keep-alive, Bearer token, one retry on a stale socket."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

T = TypeVar("T")

# Gunicorn closes idle keep-alive connections after 5 s; reconnect well before that.
IDLE_RECONNECT_S = 3.0
STALE_ERRORS = (http.client.HTTPException, ConnectionError, OSError)


def split_url(url: str) -> tuple[str, int]:
    """Host and port of an http:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"bench: only http://host:port URLs are supported, not {url!r}")
    return parts.hostname, parts.port or 80


def file_path(identifier: str) -> str:
    """The /data/file/ URL path of an identifier."""
    return "/data/file/" + quote(identifier, safe="/")


def metadata_path(identifier: str) -> str:
    """The /data/metadata/ URL path of an identifier."""
    return "/data/metadata/" + quote(identifier, safe="/")


class Client:
    """One keep-alive connection to the server; not thread-safe (use one per thread)."""

    def __init__(self, host: str, port: int, token: str | None = None, timeout: float = 600.0):
        """Remember where to connect; the socket opens on first use."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self.headers: dict[str, str] = {}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0
        self.reconnects = 0

    def connection(self) -> http.client.HTTPConnection:
        """The open connection, or a new one if there is none or it sat idle too long."""
        now = time.monotonic()
        if self._conn is not None and now - self._last_used > IDLE_RECONNECT_S:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.connect()
        self._last_used = now
        return self._conn

    def close(self) -> None:
        """Close the socket, if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send a request with an in-memory body; status and whole response body.

        A failure on a reused socket (the server closed it) is retried once on a new one.
        """
        all_headers = {**self.headers, **(headers or {})}
        for attempt in (0, 1):
            conn = self.connection()
            try:
                conn.request(method, path, body=body, headers=all_headers)
                resp = conn.getresponse()
                data = resp.read()
                self._last_used = time.monotonic()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except STALE_ERRORS:
                self.close()
                if attempt:
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def send_stream(
        self, method: str, path: str, chunks: Iterable[bytes], length: int,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Stream a body of known length from an iterable (no retry); status and answer."""
        all_headers = {**self.headers, **(headers or {}), "Content-Length": str(length)}
        return self._exchange(method, path, chunks, all_headers, lambda resp: resp.read())

    def download(self, path: str, buf: memoryview) -> tuple[int, int]:
        """GET path, reading the body into buf chunk by chunk and discarding it."""

        def drain(resp: http.client.HTTPResponse) -> int:
            total = 0
            while n := resp.readinto(buf):
                total += n
            return total

        return self._exchange("GET", path, None, self.headers, drain)

    def _exchange(
        self, method: str, path: str, body: Iterable[bytes] | None, headers: dict[str, str],
        read: Callable[[http.client.HTTPResponse], T],
    ) -> tuple[int, T]:
        """One request without retry; the socket is dropped on any failure or a closing answer."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            answer = read(resp)
        except BaseException:
            self.close()
            raise
        self._last_used = time.monotonic()
        if resp.will_close:
            self.close()
        return resp.status, answer


def json_call(client: Client, method: str, path: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """Send a JSON body, decode the JSON answer."""
    status, data = client.request(
        method, path, json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data[:200]


def new_user(host: str, port: int) -> tuple[str, str]:
    """Register a throwaway user and log in; its name and access token."""
    client = Client(host, port, timeout=60.0)
    username = "bench-" + secrets.token_hex(6)
    password = secrets.token_urlsafe(18)
    creds = {"username": username, "password": password}
    try:
        status, answer = json_call(client, "POST", "/users/register", creds)
        if status != 201:
            raise SystemExit(f"bench: register answered {status}: {answer}")
        status, answer = json_call(client, "POST", "/users/login", creds)
        if status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
            raise SystemExit(f"bench: login answered {status}: {answer}")
    finally:
        client.close()
    return username, str(answer["access_token"])
