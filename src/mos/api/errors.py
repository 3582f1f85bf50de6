"""One error handler: every error, Werkzeug's included, becomes API.md's JSON shape."""

from __future__ import annotations

import logging
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError, _ValidationError
from flask import Response, g, jsonify
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from mos.errors import MosError

log = logging.getLogger("mos")

_CODES = {
    400: "bad_request",
    401: "invalid_token",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}
_MESSAGES = {
    404: "There is no such resource.",
    405: "This method is not allowed on this resource.",
    413: "The request body is larger than allowed.",
}


def error_response(
    status: int, message: str, code: str, headers: Any = None
) -> Response:
    """The JSON error body of API.md with its status and headers."""
    resp = jsonify({"error": message, "code": code})
    resp.status_code = status
    for name, value in Headers(headers or {}).items():
        resp.headers[name] = value
    return resp


def _from_mos(exc: MosError) -> Response:
    return error_response(exc.status, exc.message, exc.code, exc.headers)


def _from_werkzeug(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type",)}
    message = _MESSAGES.get(status) or (exc.description or exc.name)
    return error_response(status, message, _CODES.get(status, "http_error"), headers)


def _from_apiflask(exc: HTTPError) -> Response:
    if isinstance(exc, _ValidationError):
        detail: Any = exc.detail
        return error_response(
            400, f"The request body is not valid: {detail}", "invalid_json", exc.headers
        )
    code = (exc.extra_data or {}).get("code") or _CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, exc.message or "Error", code, exc.headers)


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected failure rid=%s", g.get("request_id"))
    return error_response(500, "The server failed to handle this request.", "internal_error")


def install_error_handlers(app: APIFlask) -> None:
    """Register the handlers; APIFlask's error processor covers Werkzeug's HTTP errors."""

    @app.error_processor
    def _processor(exc: HTTPError) -> Response:
        return _from_apiflask(exc)

    app.register_error_handler(MosError, _from_mos)
    app.register_error_handler(HTTPException, _from_werkzeug)
    app.register_error_handler(Exception, _unexpected)
