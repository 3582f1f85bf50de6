"""create_app(settings): builds the stores and services and registers the blueprints."""

from __future__ import annotations

from dataclasses import dataclass

from apiflask import APIFlask
from argon2 import PasswordHasher, Type

from mos import __version__
from mos.config import ConfigError, Settings
from mos.services.accounts import AccountService
from mos.services.objects import ObjectService
from mos.services.tokens import TokenService, load_or_create_secret
from mos.stores.base import BlobStore, MetadataStore
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore


@dataclass(frozen=True)
class Services:
    """What the API layer calls; kept in app.extensions['mos']."""

    settings: Settings
    meta: MetadataStore
    blobs: BlobStore
    accounts: AccountService
    tokens: TokenService
    objects: ObjectService


def open_stores(settings: Settings) -> tuple[MetadataStore, BlobStore]:
    """The stores the settings select; ConfigError for a choice that cannot work."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_metadata_url
        if url.startswith("sqlite:"):
            meta: MetadataStore = SQLiteMetadataStore.from_url(url)
        else:
            raise ConfigError("MongoDB metadata is not available in this version of mos yet")
        if settings.blob_store != "filesystem":
            raise ConfigError("GridFS blobs are not available in this version of mos yet")
        blobs: BlobStore = FileSystemBlobStore(settings.data_dir)
        blobs.ping()
    except OSError as exc:
        raise ConfigError(f"data dir {settings.data_dir} is not usable: {exc.strerror}") from exc
    return meta, blobs


def build_services(settings: Settings) -> Services:
    """Wire stores into services."""
    meta, blobs = open_stores(settings)
    if settings.jwt_secret:
        secret = settings.jwt_secret.encode()
    else:
        try:
            secret = load_or_create_secret(settings.data_dir / "jwt_secret")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read or create the JWT secret: {exc}") from exc
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    return Services(
        settings=settings,
        meta=meta,
        blobs=blobs,
        accounts=AccountService(meta, hasher),
        tokens=TokenService(secret, settings.access_token_ttl),
        objects=ObjectService(meta, blobs, settings.max_object_size),
    )


def create_app(settings: Settings) -> APIFlask:
    """The Flask application for these settings."""
    from mos.api import register_api

    app = APIFlask("mos", title="min-object-storage", version=__version__, docs_ui="redoc")
    # API.md: a//b and dir/ are identifiers of their own; never merge or redirect slashes.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400
    app.config["MAX_CONTENT_LENGTH"] = None
    app.extensions["mos"] = build_services(settings)
    register_api(app)
    return app
