"""Users blueprint: register and log in (seed paths)."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint, Schema
from apiflask.fields import String
from marshmallow import EXCLUDE

from mos.api.requests import json_body, services

bp = APIBlueprint("users", __name__, url_prefix="/users", tag="Users")


class Credentials(Schema):
    """A username and a password."""

    class Meta:
        unknown = EXCLUDE

    username = String(required=True)
    password = String(required=True)


class Registered(Schema):
    """The answer to a registration."""

    message = String()
    username = String()


@bp.post("/register")
@json_body()
@bp.input(Credentials, arg_name="body")
@bp.output(Registered, status_code=201)
@bp.doc(summary="Create an account", responses=[400, 409, 413, 415])
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Create a user."""
    user = services().accounts.register(body["username"], body["password"])
    return {"message": "User created", "username": user.username}


@bp.post("/login")
@json_body()
@bp.input(Credentials, arg_name="body")
@bp.doc(summary="Log in for an access token", responses=[400, 401, 413, 415])
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Exchange a username and password for an access token."""
    svc = services()
    user = svc.accounts.authenticate(body["username"], body["password"])
    token = svc.tokens.issue_access(user.id)
    return {
        "jwt_token": token,
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": svc.tokens.ttl,
    }
