"""Operations blueprint: liveness and readiness."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint

from mos.api.requests import services
from mos.errors import Unavailable

bp = APIBlueprint("ops", __name__, tag="Operations")


@bp.get("/healthz")
@bp.doc(summary="Liveness")
def healthz() -> dict[str, Any]:
    """The process serves."""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.doc(summary="Readiness", responses=[503])
def readyz() -> dict[str, Any]:
    """Both stores answer."""
    svc = services()
    try:
        svc.meta.ping()
        svc.blobs.ping()
    except Unavailable as exc:
        raise Unavailable(f"Not ready: {exc.message}", code="not_ready") from exc
    return {"status": "ready"}
