"""Per-request plumbing: request ids, body limits, the current user, JSON bodies."""

from __future__ import annotations

import functools
import itertools
import os
import re
import secrets
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from apiflask import APIFlask
from flask import Response, current_app, g, request

from mos.app import Services
from mos.errors import InvalidJSON, TooLarge, Unauthorized, UnsupportedMediaType
from mos.stores.base import UserRecord

P = ParamSpec("P")
R = TypeVar("R")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-:]{1,128}")
# Upload routes stream the body themselves and enforce MOS_MAX_OBJECT_SIZE as they read.
STREAMING_ENDPOINTS = {"data.upload_multipart", "data.upload_raw"}


class _RequestIds:
    """Unique request ids without a system call: a random per-process prefix and a counter.

    uuid4() reads the kernel's random source on every request, which also hands the GIL to
    other threads; a request id must be unique, not secret.
    """

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count()
        # A forked worker must not repeat its parent's ids.
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = secrets.token_hex(6)

    def next(self) -> str:
        """The next id."""
        return f"{self._prefix}-{next(self._counter):x}"


new_request_id = _RequestIds().next


def services() -> Services:
    """The wired services of the running app."""
    return cast(Services, current_app.extensions["mos"])


def install_request_hooks(app: APIFlask) -> None:
    """Request ids on every response; the JSON body limit on every non-upload route."""

    @app.before_request
    def _before() -> None:
        # The WSGI environ directly: Werkzeug's header lookup raises and catches an exception
        # for every absent header, and each use of the `request` proxy costs a lookup.
        req = request._get_current_object()  # type: ignore[attr-defined]
        given = req.environ.get("HTTP_X_REQUEST_ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else new_request_id()
        if req.endpoint not in STREAMING_ENDPOINTS:
            # One byte over the limit, so that read_json_object can tell "over" from "at".
            req.max_content_length = services().settings.max_json_body + 1

    @app.after_request
    def _after(resp: Response) -> Response:
        resp.headers["X-Request-ID"] = g.get("request_id") or new_request_id()
        return resp


def current_user() -> UserRecord:
    """The authenticated caller; login_required has put it in g."""
    return cast(UserRecord, g.user)


def verified_user_id() -> str:
    """The user id of a valid Bearer access token on this request; 401 otherwise."""
    header = request.environ.get("HTTP_AUTHORIZATION")
    if not header:
        raise Unauthorized("An access token is required.", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return str(services().tokens.verify_access(token.strip())["sub"])


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Accept only a valid Bearer access token of a user who still exists."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = services().accounts.get(verified_user_id())
        if user is None:
            raise Unauthorized()
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def token_required(view: Callable[P, R]) -> Callable[P, R]:
    """Accept a valid Bearer access token and put its user id in g.user_id.

    Only for views whose first store call also proves the user still exists (downloads:
    ObjectService.open reads the user with the object and answers 401 if it is gone); every
    other view uses login_required.
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        g.user_id = verified_user_id()
        return view(*args, **kwargs)

    return wrapper


def json_body(*media_types: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a JSON object body of one of the media types, within the size limit."""
    accepted = media_types or ("application/json",)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            g.json_body = read_json_object(accepted)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def read_json_object(accepted: tuple[str, ...]) -> dict[str, Any]:
    """Parse the body as a JSON object; 415 for another media type, 400 if malformed."""
    if request.mimetype not in accepted:
        raise UnsupportedMediaType(f"The body must be declared as {' or '.join(accepted)}.")
    limit = services().settings.max_json_body
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge()
    # A chunked body is cut at max_content_length without an error: measure what came.
    if len(request.get_data(cache=True)) > limit:
        raise TooLarge()
    data = request.get_json(force=True, silent=True, cache=True)
    if not isinstance(data, dict):
        raise InvalidJSON()
    return data
