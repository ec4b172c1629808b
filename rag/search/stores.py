"""The vector-store contract, what an index was built from, and the registry of store names.

A store holds the passages (``Chunk``) and their L2-normalised vectors and finds
the nearest by inner product (= cosine). It persists without pickle: each file
is written to a temporary file and renamed, the manifest last, and the manifest
checksums the files so a torn write is detected at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import IndexSettings
from ..errors import IndexCorruptError, IndexWriteError
from ..types import Chunk
from .store_names import DEFAULT_STORE, STORE_MODULES

FORMAT_VERSION = 3  # 3: the manifest checksums each store file by name
MANIFEST = "manifest.json"


class VectorStore(Protocol):
    """What the indexer and the retriever need of a store (``Store(dim, cfg, folder)``,
    ``Store.load(folder, manifest, cfg)`` build one; ``store_names.STORES`` names them).
    Changes reach disk at ``save``; ``remove`` in a process that never saves changes only
    what that process serves."""

    dim: int
    chunks: list[Chunk]

    def __len__(self) -> int: ...

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Append passages with their vectors (one row each)."""

    def remove(self, doc_ids: set[str]) -> None:
        """Drop every passage of these documents."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions), each (len(queries), k'), best first; k' = min(k, len(self))."""

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        """The stored vectors of these passages (for exact scores of a few candidates)."""

    def save(self, folder: Path, manifest: Manifest, final: bool = True) -> None:
        """Write the store and then ``manifest`` (with the files' checksums) into ``folder``;
        ``final=False``: a checkpoint of a longer write (a replaced build is kept meanwhile)."""

    def snapshot(self) -> VectorStore:
        """A copy to change (add, remove, save) while this one goes on serving searches."""


def new_store(name: str, dim: int, folder: Path, cfg: IndexSettings | None = None) -> VectorStore:
    """An empty store ``name`` for the index folder ``folder`` (``cfg``: its settings; defaults when None)."""
    return import_module(STORE_MODULES[name]).Store(dim, cfg or IndexSettings(), folder)  # type: ignore[no-any-return]


def load_store(name: str, folder: Path, manifest: Manifest, cfg: IndexSettings | None = None) -> VectorStore:
    store = import_module(STORE_MODULES[name]).Store.load(folder, manifest, cfg or IndexSettings())
    return store  # type: ignore[no-any-return]


@dataclass
class Manifest:
    """What an index was built from; any difference means it is stale."""

    embedding_model: str
    dim: int
    chunking: dict[str, Any]
    documents: dict[str, str] = field(default_factory=dict)  # doc_id -> source
    # doc_id -> language: the store is opened without detecting languages again.
    languages: dict[str, str] = field(default_factory=dict)
    chunk_count: int = 0
    # file name -> sha256 of what the store wrote
    checksums: dict[str, str] = field(default_factory=dict)
    store: str = DEFAULT_STORE
    # A store kept outside the folder (Milvus): the collection holding this index, and the
    # ones it replaces (dropped once the build is complete).
    collection: str = ""
    retired: list[str] = field(default_factory=list)
    # New at every save: whether the index is still the one a process read (mtimes are coarse).
    generation: str = ""
    format: int = FORMAT_VERSION

    def stale_reason(self, other: Manifest) -> str | None:
        """Why an index built as ``self`` can't serve settings ``other``."""
        if self.format != other.format:
            return "index format changed"
        if self.store != other.store:
            return f"vector store changed ({self.store} -> {other.store})"
        if self.embedding_model != other.embedding_model or self.dim != other.dim:
            return f"embedding model changed ({self.embedding_model} -> {other.embedding_model})"
        if self.chunking != other.chunking:
            return "chunking settings changed"
        if set(self.documents) != set(other.documents):
            return "documents changed"
        return None


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("format") != FORMAT_VERSION:  # an older index: rebuilt once, as stale
            return Manifest(embedding_model="", dim=0, chunking={}, format=int(data.get("format", 0)))
        return Manifest(**{f.name: data[f.name] for f in fields(Manifest) if f.name in data})
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise IndexCorruptError(f"{path}: unreadable manifest ({err}).") from err


def write_manifest(folder: Path, manifest: Manifest) -> None:
    manifest.generation = uuid.uuid4().hex
    atomic_write(folder / MANIFEST, json.dumps(manifest.__dict__, indent=2).encode())


def manifest_stamp(folder: Path) -> tuple[int, int] | None:
    """A cheap mark of the saved index (None: none): each save writes a new file, so another
    inode or time means another save."""
    try:
        st = (folder / MANIFEST).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file, so a failure leaves the old file whole (and no debris)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise IndexWriteError(
            f"cannot save the index in {path.parent} ({err.strerror or err}); the articles in the "
            "store are kept, and the index is brought up to date at the next start or added article."
        ) from err


def write_checked(folder: Path, name: str, data: bytes, manifest: Manifest) -> None:
    """Write one store file and record its checksum in ``manifest`` (saved after all files)."""
    manifest.checksums[name] = hashlib.sha256(data).hexdigest()
    atomic_write(folder / name, data)


def read_checked(folder: Path, name: str, manifest: Manifest) -> bytes:
    """A store file's bytes, if they are what the manifest recorded."""
    path = folder / name
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.checksums.get(name):
        raise IndexCorruptError(f"{path}: checksum does not match the manifest.")
    return data


def chunks_bytes(chunks: Sequence[Chunk]) -> bytes:
    return "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in chunks).encode("utf-8")


def parse_chunks(data: bytes) -> list[Chunk]:
    # Lines end at "\n" only: chunk text may hold U+2028 or U+0085, which splitlines() cuts at.
    return [Chunk(**json.loads(line)) for line in data.decode("utf-8").split("\n") if line]
