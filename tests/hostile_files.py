"""Files a careful user or an attacker hands draftnas: an image that decodes to gigabytes, a torch
file whose pickle runs code, a directory that cannot be written (even by root)."""

import struct
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


def decompression_bomb(path: Path, side: int = 20000) -> Path:
    """A PNG whose header says side x side pixels (400 megapixels by default) and holds almost no
    data: PIL refuses it on open, before decoding anything."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


class _RunsCode:
    """Unpickling this writes `marker`: what a hostile checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def pickle_payload(path: Path, marker: Path) -> Path:
    torch.save({"step": 1, "payload": _RunsCode(marker)}, path)
    return path


@contextmanager
def read_only_directory(path: Path) -> Iterator[Path]:
    """`path` made unwritable: mode 0o555, and for root (who ignores modes) the immutable flag;
    skips the test where neither holds."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    immutable = False
    try:
        if _writable(path):
            try:
                immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True,
                                           check=False).returncode == 0
            except FileNotFoundError:  # no chattr
                immutable = False
            if not immutable or _writable(path):
                pytest.skip("cannot make a directory read-only here")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o755)


def _writable(directory: Path) -> bool:
    probe = directory / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True
