"""The FAISS vector store: inner-product search over normalised vectors, exact
(``IndexFlatIP``) while the index is small and approximate (``IndexHNSWFlat``) from
``index.ann_from`` passages on; the vectors themselves are kept exactly in both.

On disk (``index/``): ``vectors.faiss`` (FAISS's own binary format, no pickle),
``chunks.jsonl`` (the passages, plain JSON) and ``manifest.json`` (written last,
with every file's checksum). Passages added since the last save are appended as a
segment (``appended-<n>.npy`` + ``.jsonl``, no pickle either), so adding an article to
a large index writes that article, not the index; a removal, a change of index kind or
too many segments rewrites the whole. Changing the ANN settings needs no new embedding:
the index is converted when it is opened.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from ..config import IndexSettings
from ..errors import IndexCorruptError
from ..types import Chunk
from .stores import Manifest, chunks_bytes, parse_chunks, read_checked, write_checked, write_manifest

VECTORS = "vectors.faiss"
CHUNKS = "chunks.jsonl"
SEGMENT = re.compile(r"^appended-(\d+)\.(npy|jsonl)$")
# Segments kept before the next save rewrites the whole: each costs a file read at load,
# and a large one saves little over a rewrite.
MAX_SEGMENTS = 16


def _segments(names: Iterable[str]) -> list[int]:
    """The numbers of the appended segments among these file names, in order."""
    return sorted({int(m[1]) for name in names if (m := SEGMENT.match(name))})


class Store:
    """Passages and their vectors in one FAISS index; position i of the index is ``chunks[i]``."""

    def __init__(self, dim: int, cfg: IndexSettings, folder: Path | None = None) -> None:
        self.dim = dim
        self.cfg = cfg
        self.index: faiss.Index = faiss.IndexFlatIP(dim)
        self.chunks: list[Chunk] = []
        # Opened as the other kind than saved (ann_from changed): the caller saves it once.
        self.converted = False
        # The files (name -> sha256) holding the first ``_saved`` passages as last saved or
        # loaded; -1 once they no longer describe a prefix of this store (a removal, a new kind).
        self._on_disk: dict[str, str] = {}
        self._saved = -1

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexHNSWFlat)

    def _fit(self, vectors: np.ndarray | None = None) -> None:
        """The index of the right kind for the store's size: exact, or HNSW from ``ann_from``
        passages on (rebuilt from ``vectors``, default the stored ones)."""
        want_ann = len(self) >= max(self.cfg.ann_from, 1)
        if want_ann == self.approximate and vectors is None:
            return
        if vectors is None:
            vectors = self.index.reconstruct_n(0, self.index.ntotal) if self.index.ntotal else self._no_vectors()
        if want_ann:
            index = faiss.IndexHNSWFlat(self.dim, self.cfg.ann_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.cfg.ann_ef_construction
            index.hnsw.efSearch = self.cfg.ann_ef_search
        else:
            index = faiss.IndexFlatIP(self.dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.index = index
        self._saved = -1

    def _no_vectors(self) -> np.ndarray:
        return np.zeros((0, self.dim), np.float32)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if len(chunks):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))  # an HNSW graph grows in place
            self.chunks.extend(chunks)
            self._fit()

    def remove(self, doc_ids: set[str]) -> None:
        drop = [i for i, c in enumerate(self.chunks) if c.doc_id in doc_ids]
        if not drop:
            return
        if self.approximate:  # an HNSW graph cannot forget a node: rebuilt from the vectors kept
            keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in doc_ids]
            vectors = self.index.reconstruct_n(0, self.index.ntotal)[keep]
            self.chunks = [self.chunks[i] for i in keep]
            self._fit(vectors)
            return
        # A flat index closes the gaps in order, as the list comprehension below does.
        self.index.remove_ids(np.asarray(drop, dtype=np.int64))
        self.chunks = [c for c in self.chunks if c.doc_id not in doc_ids]
        self._saved = -1
        self._fit()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)  # type: ignore[no-any-return]

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        if not len(positions):
            return self._no_vectors()
        return np.stack([self.index.reconstruct(int(p)) for p in positions])

    def snapshot(self) -> Store:
        copy = Store(self.dim, self.cfg)
        copy.index = faiss.clone_index(self.index)  # the vectors' bytes, ~1.5 KB a passage: milliseconds
        copy.chunks = list(self.chunks)
        copy._on_disk, copy._saved = dict(self._on_disk), self._saved
        return copy

    def save(self, folder: Path, manifest: Manifest, final: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        manifest.chunk_count = len(self)
        segments = _segments(self._on_disk)
        new = len(self) - self._saved
        if self._saved >= 0 and len(segments) < MAX_SEGMENTS and new <= max(self._saved, 1):
            manifest.checksums = dict(self._on_disk)
            if new:  # only what was added since: the article, not the index
                name = f"appended-{(segments[-1] if segments else 0) + 1}"
                buffer = io.BytesIO()
                np.save(buffer, self.index.reconstruct_n(self._saved, new), allow_pickle=False)
                write_checked(folder, f"{name}.npy", buffer.getvalue(), manifest)
                write_checked(folder, f"{name}.jsonl", chunks_bytes(self.chunks[self._saved :]), manifest)
            write_manifest(folder, manifest)
        else:
            manifest.checksums = {}
            # Both checksummed: a save cut short after the vectors (written first) must not
            # pair the old chunks with new vectors when the passage count happens to match.
            write_checked(folder, VECTORS, faiss.serialize_index(self.index).tobytes(), manifest)
            write_checked(folder, CHUNKS, chunks_bytes(self.chunks), manifest)
            write_manifest(folder, manifest)
            for path in folder.iterdir():  # segments now inside the whole
                if SEGMENT.match(path.name):
                    path.unlink(missing_ok=True)
        self._on_disk, self._saved = dict(manifest.checksums), len(self)
        self.converted = False

    @classmethod
    def load(cls, folder: Path, manifest: Manifest, cfg: IndexSettings) -> Store:
        try:
            chunks = parse_chunks(read_checked(folder, CHUNKS, manifest))
            vectors = read_checked(folder, VECTORS, manifest)
            index = faiss.deserialize_index(np.frombuffer(vectors, dtype=np.uint8))
            for n in _segments(manifest.checksums):
                added = np.load(io.BytesIO(read_checked(folder, f"appended-{n}.npy", manifest)), allow_pickle=False)
                more = parse_chunks(read_checked(folder, f"appended-{n}.jsonl", manifest))
                if len(added) != len(more) or added.ndim != 2 or added.shape[1] != index.d:
                    raise IndexCorruptError(f"{folder}: segment {n} holds {len(added)} vectors, {len(more)} passages.")
                index.add(np.ascontiguousarray(added, dtype=np.float32))
                chunks += more
        except IndexCorruptError:
            raise
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            raise IndexCorruptError(f"{folder}: the index files are damaged ({err}).") from err
        if index.ntotal != len(chunks) or index.d != manifest.dim or len(chunks) != manifest.chunk_count:
            raise IndexCorruptError(f"{folder}: vectors and chunks disagree ({index.ntotal} vs {len(chunks)}).")
        store = cls(manifest.dim, cfg)
        store.index = index
        store.chunks = chunks
        if store.approximate:  # the search setting of this process, not of the one that saved it
            store.index.hnsw.efSearch = cfg.ann_ef_search
        kind = store.approximate
        store._fit()
        store.converted = kind != store.approximate
        if not store.converted:
            store._on_disk, store._saved = dict(manifest.checksums), len(chunks)
        return store
