"""MongoDB metadata with the file-system blob store: the combination works end to end."""

from __future__ import annotations

from pathlib import Path

from mos.app import create_app
from mos.config import load_settings
from mos.services.objects import INLINE_MAX

BODY = b"on disk " * (INLINE_MAX // 8 + 1)  # over INLINE_MAX: bytes in a blob file


def test_mongodb_metadata_with_blobs_on_disk(tmp_path: Path, mongo_url: str) -> None:
    """Upload, read, list, patch and delete with rows in MongoDB and bytes on disk."""
    settings = load_settings({
        "MOS_ARGON2_TIME_COST": "1", "MOS_ARGON2_MEMORY_KIB": "256", "MOS_ARGON2_PARALLELISM": "1",
        "MOS_DATA_DIR": str(tmp_path / "data"),
        "MOS_METADATA_URL": mongo_url, "MOS_BLOB_STORE": "filesystem",
    })
    app = create_app(settings)
    try:
        client = app.test_client()
        creds = {"username": "mixer", "password": "password1"}
        assert client.post("/users/register", json=creds).status_code == 201
        token = client.post("/users/login", json=creds).get_json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        put = client.put("/data/file/mix/a.txt", data=BODY, headers=auth)
        assert put.status_code == 201, put.get_json()
        blobs = list((tmp_path / "data" / "blobs").rglob("*"))
        assert [p for p in blobs if p.is_file()], "the bytes are not on disk"
        assert client.get("/data/file/mix/a.txt", headers=auth).data == BODY
        assert client.get("/data/user_file", headers=auth).get_json()["file_identifiers"] == [
            "mix/a.txt"]
        patched = client.patch("/data/metadata/mix/a.txt", json={"k": "v"}, headers=auth)
        assert patched.get_json()["metadata"] == {"k": "v"}
        small = client.put("/data/file/mix/small", data=b"in the row", headers=auth)
        assert small.status_code == 201
        assert client.get("/data/file/mix/small", headers=auth).data == b"in the row"
        assert client.delete("/data/file/mix/small", headers=auth).status_code == 200
        assert client.delete("/data/file/mix/a.txt", headers=auth).status_code == 200
        assert not [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()]
    finally:
        app.extensions["mos"].close()
