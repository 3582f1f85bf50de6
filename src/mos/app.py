"""create_app(settings): builds the stores and services and registers the blueprints."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from apiflask import APIFlask
from argon2 import PasswordHasher, Type
from pymongo.errors import ConfigurationError, InvalidURI

from mos import __version__
from mos.config import ConfigError, Settings
from mos.errors import Unavailable
from mos.services.accounts import AccountService
from mos.services.objects import ObjectService
from mos.services.tokens import TokenService, load_or_create_secret
from mos.stores.base import BlobStore, MetadataStore
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.gridfs import GridFSBlobStore
from mos.stores.mongo import MongoMetadataStore
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

    def close(self) -> None:
        """Release the stores' connections."""
        self.blobs.close()
        self.meta.close()


def open_stores(settings: Settings, prepare: bool = True) -> tuple[MetadataStore, BlobStore]:
    """The stores the settings select; ConfigError for a choice that cannot work.

    prepare creates indexes and checks that the stores answer. `mos serve` does it once in
    the master, so that a bad setting stops it at once; workers skip it, so that a worker
    started while MongoDB is briefly away still boots and recovers when it is back.
    """
    url = settings.resolved_metadata_url
    try:
        # Password hashes and everyone's metadata live here: private to the service's user.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if url.startswith("sqlite:"):
            if settings.blob_store == "gridfs":
                raise ConfigError("MOS_BLOB_STORE=gridfs needs MOS_METADATA_URL=mongodb://…")
            meta: MetadataStore = SQLiteMetadataStore.from_url(url)
            blobs: BlobStore = FileSystemBlobStore(settings.data_dir)
        else:
            mongo = MongoMetadataStore.from_url(url)
            meta = mongo
            if settings.blob_store == "gridfs":
                blobs = GridFSBlobStore(mongo.database, settings.gridfs_delete_grace)
            else:
                blobs = FileSystemBlobStore(settings.data_dir)
        if prepare:
            meta.prepare()
            blobs.prepare()
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(f"data dir {settings.data_dir} is not usable: {exc.strerror}") from exc
    except (sqlite3.Error, RuntimeError) as exc:
        raise ConfigError(f"metadata database {_location(url)} is not usable: {exc}") from exc
    except (ValueError, InvalidURI, ConfigurationError) as exc:
        raise ConfigError(f"MOS_METADATA_URL is not valid: {exc}") from exc
    except Unavailable as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        raise ConfigError(f"{exc.message}: {_location(url)}{detail}") from exc
    return meta, blobs


def _location(url: str) -> str:
    """The URL without credentials, for messages."""
    return re.sub(r"//[^@/]*@", "//", url)


def build_services(settings: Settings, prepare: bool = True) -> Services:
    """Wire stores into services."""
    meta, blobs = open_stores(settings, prepare)
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
        objects=ObjectService(meta, blobs, settings.max_object_size,
                              inline_max=settings.inline_max),
    )


def create_app(settings: Settings, prepare: bool = True) -> APIFlask:
    """The Flask application for these settings."""
    from mos.api import register_api

    app = APIFlask("mos", title="min-object-storage", version=__version__, docs_ui="redoc")
    # API.md: a//b and dir/ are identifiers of their own; never merge or redirect slashes.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400
    app.config["MAX_CONTENT_LENGTH"] = None
    app.extensions["mos"] = build_services(settings, prepare)
    register_api(app)
    return app
