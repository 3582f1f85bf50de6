"""Typed errors: each carries its HTTP status and machine code, so services stay HTTP-free."""

from __future__ import annotations


class MosError(Exception):
    """Base of every error the service answers on purpose."""

    status = 500
    code = "internal_error"
    message = "The server failed to handle this request."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if code:
            self.code = code
        self.headers: dict[str, str] = {}
        # What a log or an operator may see, never a client (driver messages name hosts).
        self.detail = ""


class BadRequest(MosError):
    """The request is malformed or breaks a rule of the API."""

    status = 400
    code = "bad_request"
    message = "The request is not valid."


class InvalidJSON(BadRequest):
    """The JSON body is malformed, or fields are missing or of the wrong type."""

    code = "invalid_json"
    message = "The request body is not valid JSON of the expected shape."


class InvalidIdentifier(BadRequest):
    """A file identifier breaks the naming rules."""

    code = "invalid_identifier"


class InvalidMetadata(BadRequest):
    """User metadata breaks the limits."""

    code = "invalid_metadata"


class Unauthorized(MosError):
    """No valid credentials; the client should authenticate."""

    status = 401
    code = "invalid_token"
    message = "The access token is missing, malformed, expired or not valid."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers["WWW-Authenticate"] = 'Bearer realm="mos"'


class InvalidCredentials(MosError):
    """Unknown user or wrong password; deliberately indistinguishable."""

    status = 401
    code = "invalid_credentials"
    message = "The username or password is wrong."


class NotFound(MosError):
    """No such thing, or the caller may not see it."""

    status = 404
    code = "not_found"
    message = "There is no such object."


class Conflict(MosError):
    """The thing already exists."""

    status = 409
    code = "conflict"


class PreconditionFailed(MosError):
    """An If-Match / If-None-Match / If-Unmodified-Since condition did not hold."""

    status = 412
    code = "precondition_failed"
    message = "A precondition given in the request headers did not hold."


class TooLarge(MosError):
    """A body, object or field is larger than allowed."""

    status = 413
    code = "too_large"
    message = "The request body is larger than allowed."

    @classmethod
    def over(cls, limit: int) -> TooLarge:
        """The error for an object past the size limit."""
        return cls(f"The object is larger than the limit of {limit} bytes.")


class UnsupportedMediaType(MosError):
    """The body's declared content type is not one this endpoint accepts."""

    status = 415
    code = "unsupported_media_type"


class RangeNotSatisfiable(MosError):
    """A Range header asked for bytes the object does not have."""

    status = 416
    code = "range_not_satisfiable"
    message = "The requested range is not satisfiable."

    def __init__(self, size: int) -> None:
        super().__init__()
        self.headers["Content-Range"] = f"bytes */{size}"


class Unavailable(MosError):
    """A store does not answer; the client may retry shortly."""

    status = 503
    code = "unavailable"
    message = "The service is temporarily unavailable; retry shortly."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers["Retry-After"] = "5"


class InsufficientStorage(MosError):
    """The disk is full."""

    status = 507
    code = "insufficient_storage"
    message = "The server has no space left to store this object."
