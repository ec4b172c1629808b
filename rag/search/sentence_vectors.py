"""Sentence vectors of the indexed passages, embedded at ingest and saved beside the index.

The retriever re-scores its best candidates by their best-matching sentence, and the
citation check compares each claim with the retrieved passages' sentences: both need a
vector per sentence. Embedding them at question time was most of a search at archive size
(the sentences of ten candidates: ~360 ms of 390 on two cores); embedded once with the
passages, a search reads them.

They are a cache, not the index: keyed by the passage's text (sentence vectors depend on
nothing else, for one model), so a rebuild or a new chunking finds those it still can,
and a missing or damaged file only means computing them again at question time. On disk,
``sentences/`` holds append-only segments (``seg-<n>.npz``: text keys, sentence counts,
float32 vectors; plain arrays, no pickle) and ``segments.json`` (the model, the segments'
checksums), written last; many segments are folded into one, leaving out passages no
longer indexed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexWriteError
from ..text.sentences import sentence_spans
from ..types import Chunk
from .stores import atomic_write

log = logging.getLogger(__name__)

FOLDER = "sentences"
LIST = "segments.json"
# Segments kept before a save folds them into one (each costs a file read at start).
MAX_SEGMENTS = 16
Spans = list[tuple[int, int]]


def text_key(text: str) -> bytes:
    """What a passage's sentence vectors are filed under: its text (16 bytes of its sha256)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class SentenceVectors:
    """Per passage text: the vectors (passage prompt) of its ``sentence_spans`` sentences.

    ``folder``: the index folder (None: in memory only). Thread-safe: the page's searches
    read while an upload adds."""

    def __init__(self, folder: Path | None, model_id: str, dim: int) -> None:
        self.folder = None if folder is None else folder / FOLDER
        self.model_id = model_id
        self.dim = dim
        self._lock = threading.Lock()
        self._rows: dict[bytes, np.ndarray] = {}
        self._new: list[bytes] = []  # keys not saved yet, in order of addition
        self._segments: dict[str, str] = {}  # saved segment file -> sha256
        if self.folder is not None:
            self._load()

    def __len__(self) -> int:
        return len(self._rows)

    # reading ----------------------------------------------------------------
    def get(self, chunks: Sequence[Chunk]) -> dict[str, tuple[Spans, np.ndarray]]:
        """(spans, vectors) of those of ``chunks`` whose sentences are here, by chunk id."""
        found: dict[str, tuple[Spans, np.ndarray]] = {}
        with self._lock:
            rows = [(c, self._rows.get(text_key(c.text))) for c in chunks]
        for chunk, vectors in rows:
            if vectors is None:
                continue
            spans = sentence_spans(chunk.text)
            if len(spans) == len(vectors):  # else split otherwise since: computed again
                found[chunk.chunk_id] = (spans, vectors)
        return found

    def missing(self, chunks: Iterable[Chunk]) -> list[Chunk]:
        with self._lock:
            return [c for c in chunks if text_key(c.text) not in self._rows]

    # writing ----------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: Sequence[np.ndarray]) -> None:
        """File each passage's sentence vectors (rows in ``sentence_spans`` order)."""
        with self._lock:
            for chunk, rows in zip(chunks, vectors, strict=True):
                key = text_key(chunk.text)
                if key not in self._rows:
                    self._rows[key] = np.asarray(rows, dtype=np.float32)
                    self._new.append(key)

    def embed(self, chunks: Sequence[Chunk], encode: Callable[[list[str]], np.ndarray]) -> None:
        """Embed and file the sentences of those of ``chunks`` not filed yet."""
        todo = list({c.text: c for c in self.missing(chunks)}.values())
        if not todo:
            return
        spans = [sentence_spans(c.text) for c in todo]
        flat = [c.text[s:e] for c, sp in zip(todo, spans, strict=True) for s, e in sp]
        vectors = encode(flat) if flat else np.zeros((0, self.dim), np.float32)
        bounds = np.cumsum([0, *(len(sp) for sp in spans)])
        self.add(todo, [vectors[a:b] for a, b in itertools.pairwise(bounds)])

    def save(self, keep: Iterable[Chunk]) -> None:
        """Write what was added since the last save as a segment; with many segments, write
        one holding only the passages of ``keep`` (the index's). A failure is logged: the
        vectors are computed again when needed."""
        if self.folder is None:
            return
        try:
            self._save(keep)
        except (OSError, IndexWriteError) as err:
            log.warning("could not save sentence vectors in %s (%s); they are computed when needed", self.folder, err)

    def _save(self, keep: Iterable[Chunk]) -> None:
        """Called under the index's write lock (``sync_index``): no other process saves meanwhile."""
        assert self.folder is not None
        if not self._new:
            return
        self._load()  # segments another process saved since: the listing keeps naming them
        folder = self.folder
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            # A new name, never a file that exists: a save cut short leaves the listed files whole.
            on_disk = [name for p in folder.glob("seg-*.npz") if (name := p.name)[4:-4].isdigit()]
            number = max((int(name[4:-4]) for name in [*self._segments, *on_disk]), default=0) + 1
            if len(self._segments) + 1 > MAX_SEGMENTS:  # fold: one segment of the indexed passages
                wanted = {text_key(c.text) for c in keep}
                rows = {k: v for k, v in self._rows.items() if k in wanted}
                keys, segments, old = list(rows), {}, list(self._segments)
            else:
                rows, segments, old = self._rows, dict(self._segments), []
                keys = [k for k in self._new if k in rows]
            name = f"seg-{number}.npz"
            data = _segment_bytes(keys, [rows[k] for k in keys], self.dim)
            atomic_write(folder / name, data)
            segments[name] = hashlib.sha256(data).hexdigest()
            listing = {"model": self.model_id, "dim": self.dim, "segments": segments}
            atomic_write(folder / LIST, json.dumps(listing, indent=1).encode())
            self._rows, self._segments, self._new = rows, segments, []
        for stale in old:  # folded into the new one, which the listing now names instead
            (folder / stale).unlink(missing_ok=True)

    def refresh(self) -> None:
        """Read the segments another process saved since (``rag ingest`` beside the page)."""
        if self.folder is not None:
            self._load()

    def _load(self) -> None:
        assert self.folder is not None
        try:
            listing = json.loads((self.folder / LIST).read_text("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            log.warning("%s is unreadable (%s): sentence vectors are computed again", self.folder / LIST, err)
            return
        if listing.get("model") != self.model_id or listing.get("dim") != self.dim:
            return  # another model's: replaced as this one's are saved
        listed = {str(k): str(v) for k, v in dict(listing.get("segments", {})).items()}
        with self._lock:
            known = dict(self._segments)
        if any(known.get(name, digest) != digest for name, digest in listed.items()):
            return  # a segment name reused: another writer's fold; read at the next start
        # Those another writer folded away are no longer listed; their rows stay in memory.
        segments, rows = {n: d for n, d in known.items() if n in listed}, {}
        for name, digest in listed.items():
            if name in known:
                continue
            try:
                data = (self.folder / str(name)).read_bytes()
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ValueError("checksum does not match")
                keys, counts, vectors = _parse_segment(data, self.dim)
            except (OSError, ValueError, KeyError) as err:
                log.warning("%s is damaged (%s): its sentence vectors are computed again", self.folder / name, err)
                continue
            starts = np.concatenate([[0], np.cumsum(counts)])
            for key, (a, b) in zip(keys, itertools.pairwise(starts), strict=True):
                rows[bytes(key)] = vectors[a:b]
            segments[name] = digest
        with self._lock:
            for key, vectors in rows.items():
                self._rows.setdefault(key, vectors)
            self._segments = segments


def _segment_bytes(keys: list[bytes], rows: list[np.ndarray], dim: int) -> bytes:
    buffer = io.BytesIO()
    vectors = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
    np.savez(
        buffer,
        keys=np.asarray(keys, dtype="S16"),
        counts=np.asarray([len(r) for r in rows], dtype=np.int32),
        vectors=vectors.astype(np.float32),
    )
    return buffer.getvalue()


def _parse_segment(data: bytes, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        keys, counts, vectors = npz["keys"], npz["counts"], npz["vectors"]
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(counts) or counts.sum() != len(vectors):
        raise ValueError(f"{len(keys)} keys, {int(counts.sum())} sentences, vectors {vectors.shape}")
    return keys, counts, vectors
