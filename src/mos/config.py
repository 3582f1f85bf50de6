"""Settings: one frozen object built from flags and the MOS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mos.services.objects import INLINE_MAX

GIB = 1024**3
# A row (or a MongoDB document, 16 MiB at most) stays small; larger objects stream to blobs.
MAX_INLINE = 1024 * 1024


class ConfigError(ValueError):
    """A setting is missing or wrong; the message is one line for a person."""


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know, read once at start."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    threads: int = 8
    data_dir: Path = Path("./data")
    metadata_url: str = ""
    blob_store: str = "filesystem"
    jwt_secret: str | None = None
    access_token_ttl: int = 3600
    max_object_size: int = 5 * GIB
    max_json_body: int = 1024 * 1024
    login_max_failures: int = 10
    # Seconds a client may stay silent in the middle of a request before it is cut off.
    client_timeout: float = 60.0
    # How long GridFS keeps a deleted or replaced blob for downloads already reading it.
    gridfs_delete_grace: float = 3600.0
    # Objects up to this many bytes live in their metadata row (one commit stores them);
    # 0 sends every object to the blob store.
    inline_max: int = INLINE_MAX
    # argon2id cost; the defaults are RFC 9106's second recommended profile.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    @property
    def resolved_metadata_url(self) -> str:
        """The metadata URL, defaulting to the SQLite file in the data dir."""
        if self.metadata_url:
            return self.metadata_url
        return f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (flags win over the environment)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return _validated(replace(self, **given))


_ENV: dict[str, tuple[str, type]] = {
    "MOS_HOST": ("host", str),
    "MOS_PORT": ("port", int),
    "MOS_WORKERS": ("workers", int),
    "MOS_THREADS": ("threads", int),
    "MOS_DATA_DIR": ("data_dir", Path),
    "MOS_METADATA_URL": ("metadata_url", str),
    "MOS_BLOB_STORE": ("blob_store", str),
    "MOS_JWT_SECRET": ("jwt_secret", str),
    "MOS_ACCESS_TOKEN_TTL": ("access_token_ttl", int),
    "MOS_MAX_OBJECT_SIZE": ("max_object_size", int),
    "MOS_LOGIN_MAX_FAILURES": ("login_max_failures", int),
    "MOS_CLIENT_TIMEOUT": ("client_timeout", float),
    "MOS_GRIDFS_DELETE_GRACE": ("gridfs_delete_grace", float),
    "MOS_INLINE_MAX": ("inline_max", int),
    "MOS_ARGON2_TIME_COST": ("argon2_time_cost", int),
    "MOS_ARGON2_MEMORY_KIB": ("argon2_memory_kib", int),
    "MOS_ARGON2_PARALLELISM": ("argon2_parallelism", int),
}


def load_settings(environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Build Settings from the environment, then flags given on the command line."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var, (name, kind) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from None
    values.update({k: v for k, v in flags.items() if v is not None})
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    return _validated(Settings(**values))


def _validated(s: Settings) -> Settings:
    """Reject settings that cannot work, with one line saying which and why."""
    if not 0 < s.port < 65536:
        raise ConfigError(f"port {s.port} is outside 1-65535")
    for name in ("workers", "threads", "access_token_ttl", "max_object_size",
                 "login_max_failures", "argon2_time_cost", "argon2_parallelism"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name} must be at least 1, not {getattr(s, name)}")
    if s.client_timeout <= 0:
        raise ConfigError("MOS_CLIENT_TIMEOUT must be a positive number of seconds")
    if s.gridfs_delete_grace < 0:
        raise ConfigError("MOS_GRIDFS_DELETE_GRACE must not be negative")
    if not 0 <= s.inline_max <= MAX_INLINE:
        raise ConfigError(f"MOS_INLINE_MAX must be between 0 and {MAX_INLINE} bytes")
    if s.argon2_memory_kib < 8 * s.argon2_parallelism:
        raise ConfigError("argon2 memory must be at least 8 KiB per lane")
    scheme = s.resolved_metadata_url.split(":", 1)[0]
    if scheme not in ("sqlite", "mongodb", "mongodb+srv"):
        raise ConfigError(
            f"MOS_METADATA_URL has unknown scheme {scheme!r}: use sqlite:/// or mongodb://"
        )
    if s.blob_store not in ("filesystem", "gridfs"):
        raise ConfigError(f"MOS_BLOB_STORE={s.blob_store!r} is unknown: use filesystem or gridfs")
    if s.jwt_secret is not None and len(s.jwt_secret.encode()) < 32:
        raise ConfigError("MOS_JWT_SECRET must be at least 32 bytes long")
    return s
