"""The capture's sha256 in the report is the file's, however its reads are cut."""

from __future__ import annotations

import hashlib
import os

from pcapdiag.io import hashing as api


def test_sha256_of_a_file_longer_than_one_read(tmp_path) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(api._HASH_CHUNK + 12345)
    path.write_bytes(data)
    assert api.file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert api.file_sha256(str(empty)) == hashlib.sha256(b"").hexdigest()
