"""HTTP layer: blueprints, the one error handler, request ids."""

from __future__ import annotations

from apiflask import APIFlask

from mos.api import data, ops, users
from mos.api.errors import install_error_handlers
from mos.api.requests import install_request_hooks


def register_api(app: APIFlask) -> None:
    """Attach hooks, error handlers and every blueprint to the app."""
    app.url_map.converters["ident"] = data.IdentifierConverter
    install_request_hooks(app)
    install_error_handlers(app)
    app.security_schemes = {
        "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    app.register_blueprint(users.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(ops.bp)
