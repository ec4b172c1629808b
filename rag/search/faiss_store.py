"""The FAISS vector store: exact inner-product search (``IndexFlatIP``) over normalised vectors.

On disk (``index/``): ``vectors.faiss`` (FAISS's own binary format, no pickle),
``chunks.jsonl`` (the passages, plain JSON) and ``manifest.json`` (written last,
with both files' checksums).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from ..errors import IndexCorruptError
from ..types import Chunk
from .stores import Manifest, chunks_bytes, parse_chunks, read_checked, write_checked, write_manifest

VECTORS = "vectors.faiss"
CHUNKS = "chunks.jsonl"


class Store:
    """Passages and their vectors in one FAISS index; position i of the index is ``chunks[i]``."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index = faiss.IndexFlatIP(dim)
        self.chunks: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.chunks)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if len(chunks):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.chunks.extend(chunks)

    def remove(self, doc_ids: set[str]) -> None:
        drop = [i for i, c in enumerate(self.chunks) if c.doc_id in doc_ids]
        if drop:
            # A flat index closes the gaps in order, as the list comprehension below does.
            self.index.remove_ids(np.asarray(drop, dtype=np.int64))
            self.chunks = [c for c in self.chunks if c.doc_id not in doc_ids]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)  # type: ignore[no-any-return]

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        if not len(positions):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.index.reconstruct(int(p)) for p in positions])

    def save(self, folder: Path, manifest: Manifest) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        manifest.chunk_count = len(self)
        # Both checksummed: a save cut short after the vectors (written first) must not
        # pair the old chunks with new vectors when the passage count happens to match.
        write_checked(folder, VECTORS, faiss.serialize_index(self.index).tobytes(), manifest)
        write_checked(folder, CHUNKS, chunks_bytes(self.chunks), manifest)
        write_manifest(folder, manifest)

    @classmethod
    def load(cls, folder: Path, manifest: Manifest) -> Store:
        try:
            chunks = parse_chunks(read_checked(folder, CHUNKS, manifest))
            vectors = read_checked(folder, VECTORS, manifest)
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
