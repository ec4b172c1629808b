"""FAISS inner-product index over normalised vectors, persisted without pickle.

On disk (``index/``): ``vectors.faiss`` (FAISS's own binary format),
``chunks.jsonl`` (the docstore, plain JSON) and ``manifest.json`` (what the
index was built from). Each file is written to a temp file and renamed, the
manifest last; it records counts and a checksum so a torn write is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .errors import IndexCorruptError, IndexWriteError
from .types import Chunk

FORMAT_VERSION = 2  # 2: the manifest checksums the vectors too
VECTORS = "vectors.faiss"
CHUNKS = "chunks.jsonl"
MANIFEST = "manifest.json"


def _atomic_write(path: Path, data: bytes) -> None:
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


def _read_checked(path: Path, sha256: str) -> bytes:
    """The file's bytes, if they are what the manifest recorded."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IndexCorruptError(f"{path}: checksum does not match the manifest.")
    return data


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
    chunks_sha256: str = ""
    vectors_sha256: str = ""
    format: int = FORMAT_VERSION

    def stale_reason(self, other: Manifest) -> str | None:
        """Why an index built as ``self`` can't serve settings ``other``."""
        if self.format != other.format:
            return "index format changed"
        if self.embedding_model != other.embedding_model or self.dim != other.dim:
            return f"embedding model changed ({self.embedding_model} -> {other.embedding_model})"
        if self.chunking != other.chunking:
            return "chunking settings changed"
        if set(self.documents) != set(other.documents):
            return "documents changed"
        return None


class VectorStore:
    """Chunks and their vectors, searchable by inner product."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index = faiss.IndexFlatIP(dim)
        self.chunks: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.chunks)

    def add(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if len(chunks):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.chunks.extend(chunks)

    def vectors(self) -> np.ndarray:
        if not len(self):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_n(0, len(self))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(position, cosine) of the k nearest chunks, best first."""
        if not len(self):
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1)), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # persistence -----------------------------------------------------------
    def save(self, folder: Path, manifest: Manifest) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in self.chunks)
        data = lines.encode("utf-8")
        manifest.chunk_count = len(self)
        manifest.chunks_sha256 = hashlib.sha256(data).hexdigest()
        # Both checksummed: a save cut short after the vectors (written first) must not
        # pair the old chunks with new vectors when the passage count happens to match.
        vectors = faiss.serialize_index(self.index).tobytes()
        manifest.vectors_sha256 = hashlib.sha256(vectors).hexdigest()
        _atomic_write(folder / VECTORS, vectors)
        _atomic_write(folder / CHUNKS, data)
        self.write_manifest(folder, manifest)

    @staticmethod
    def write_manifest(folder: Path, manifest: Manifest) -> None:
        _atomic_write(folder / MANIFEST, json.dumps(manifest.__dict__, indent=2).encode())

    @staticmethod
    def read_manifest(folder: Path) -> Manifest | None:
        path = folder / MANIFEST
        if not path.exists():
            return None
        try:
            return Manifest(**json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, TypeError) as err:
            raise IndexCorruptError(f"{path}: unreadable manifest ({err}).") from err

    @classmethod
    def load(cls, folder: Path, manifest: Manifest) -> VectorStore:
        try:
            data = _read_checked(folder / CHUNKS, manifest.chunks_sha256)
            # Lines end at "\n" only: chunk text may hold U+2028 or U+0085, which splitlines() cuts at.
            chunks = [Chunk(**json.loads(line)) for line in data.decode("utf-8").split("\n") if line]
            vectors = _read_checked(folder / VECTORS, manifest.vectors_sha256)
            index = faiss.deserialize_index(np.frombuffer(vectors, dtype=np.uint8))
        except IndexCorruptError:
            raise
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            raise IndexCorruptError(f"{folder}: the index files are damaged ({err}).") from err
        if index.ntotal != len(chunks) or index.d != manifest.dim or len(chunks) != manifest.chunk_count:
            raise IndexCorruptError(f"{folder}: vectors and chunks disagree ({index.ntotal} vs {len(chunks)}).")
        store = cls(manifest.dim)
        store.index = index
        store.chunks = chunks
        return store
