"""Settings from the environment and flags; bad settings fail with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mos.config import ConfigError, load_settings


def test_defaults() -> None:
    """API.md's defaults."""
    s = load_settings({})
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 5000, Path("./data"))
    assert s.access_token_ttl == 3600 and s.max_object_size == 5 * 1024**3
    assert s.login_max_failures == 10 and s.blob_store == "filesystem"
    assert s.resolved_metadata_url.startswith("sqlite:///") and s.workers >= 1
    assert s.inline_max == 64 * 1024
    assert load_settings({"MOS_INLINE_MAX": "0"}).inline_max == 0
    assert load_settings({"MOS_INLINE_MAX": str(1024 * 1024)}).inline_max == 1024 * 1024


def test_environment_and_flags() -> None:
    """Variables are read; flags win."""
    s = load_settings({"MOS_PORT": "6000", "MOS_DATA_DIR": "/tmp/x", "MOS_HOST": "0.0.0.0"},
                      port=7000)
    assert (s.port, s.data_dir, s.host) == (7000, Path("/tmp/x"), "0.0.0.0")
    assert s.resolved_metadata_url == "sqlite:////tmp/x/metadata.db"


@pytest.mark.parametrize(
    "env",
    [
        {"MOS_PORT": "abc"},
        {"MOS_PORT": "70000"},
        {"MOS_WORKERS": "0"},
        {"MOS_METADATA_URL": "postgres://db"},
        {"MOS_BLOB_STORE": "s3"},
        {"MOS_JWT_SECRET": "short"},
        {"MOS_MAX_OBJECT_SIZE": "-1"},
        {"MOS_INLINE_MAX": "-1"},
        {"MOS_INLINE_MAX": str(1024 * 1024 + 1)},
        {"MOS_INLINE_MAX": "64k"},
    ],
)
def test_bad_settings(env: dict[str, str]) -> None:
    """Each bad setting is a ConfigError whose message is one line naming the problem."""
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert "\n" not in str(err.value) and str(err.value)
