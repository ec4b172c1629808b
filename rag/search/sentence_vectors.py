"""Sentence vectors of the indexed passages, embedded at ingest and saved beside the index.

The retriever re-scores its best candidates by their best-matching sentence, and the
citation check compares each claim with the retrieved passages' sentences: both need a
vector per sentence. Embedding them at question time was most of a search at archive size
(the sentences of ten candidates); embedded once with the passages, a search reads them.

They are a cache, not the index: keyed by the passage's text and where its sentences
start and end (the vectors depend on nothing else, for one model), so a rebuild or a new
chunking finds those it still can, a new sentence splitter misses them, and a missing or
damaged file only means computing them again at question time. On disk, ``sentences/``
holds append-only segments (``seg-<n>.npz``: keys, sentence counts, float32 vectors; plain
arrays, no pickle) and ``segments.json`` (the model, the segments' checksums), written
last; many segments are folded into one, leaving out passages no longer indexed (and any
file the listing does not name).
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

from ..text.sentences import sentence_spans
from ..types import Chunk
from .stores import atomic_write

log = logging.getLogger(__name__)

FOLDER = "sentences"
LIST = "segments.json"
# Segments kept before a save folds them into one (each costs a file read at start).
MAX_SEGMENTS = 16
# Passages whose vectors are held unsaved at most (~70 MB): the cap of a process that never saves.
MAX_UNSAVED = 20_000
# Sentences per call of the model: an upload's sentences leave room for a question's.
ENCODE_BATCH = 64
KEY_BYTES = 16
Spans = list[tuple[int, int]]


def _key(text: str, spans: Spans) -> bytes:
    """What a passage's sentence vectors are filed under (16 bytes of a sha256): its text and
    its sentences' bounds, so vectors of another split are never taken for these."""
    bounds = ",".join(f"{s}-{e}" for s, e in spans)
    return hashlib.sha256(f"{bounds}\0{text}".encode()).digest()[:KEY_BYTES]


class SentenceVectors:
    """Per passage: the vectors (passage prompt) of its ``sentence_spans`` sentences.

    ``folder``: the index folder (None: in memory only). Thread-safe: the page's searches
    read while an upload adds. Holds every vector it has read or computed (about 7.5 KB a
    passage with a 384-d model)."""

    def __init__(self, folder: Path | None, model_id: str, dim: int) -> None:
        self.folder = None if folder is None else folder / FOLDER
        self.model_id = model_id
        self.dim = dim
        self._lock = threading.Lock()
        self._rows: dict[bytes, np.ndarray] = {}
        self._new: dict[bytes, None] = {}  # keys not saved yet, oldest first
        self._segments: dict[str, str] = {}  # saved segment file -> sha256
        if self.folder is not None:
            self._load()

    def lookup(
        self, chunks: Sequence[Chunk], encode: Callable[[list[str]], np.ndarray]
    ) -> list[tuple[Spans, np.ndarray]]:
        """(spans, vectors) of each of ``chunks``: those filed, the others embedded (``encode``,
        a few dozen sentences per call, so other callers of the model get their turn) and filed."""
        spans = [sentence_spans(c.text) for c in chunks]
        keys = [_key(c.text, sp) for c, sp in zip(chunks, spans, strict=True)]
        with self._lock:
            found = {k: self._rows[k] for k in keys if k in self._rows}
        todo: dict[bytes, tuple[Chunk, Spans]] = {}
        for key, chunk, sp in zip(keys, chunks, spans, strict=True):
            if key not in found:
                todo.setdefault(key, (chunk, sp))
        if todo:
            flat = [c.text[s:e] for c, sp in todo.values() for s, e in sp]
            parts = [encode(flat[i : i + ENCODE_BATCH]) for i in range(0, len(flat), ENCODE_BATCH)]
            vectors = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
            bounds = itertools.pairwise(np.cumsum([0, *(len(sp) for _, sp in todo.values())]))
            computed = {k: np.asarray(vectors[a:b], dtype=np.float32) for k, (a, b) in zip(todo, bounds, strict=True)}
            with self._lock:
                for key, rows in computed.items():
                    if key not in self._rows:
                        self._rows[key] = rows
                        self._new[key] = None
                # Not saved by this process (a page over an index saved without them, or another
                # machine's): kept as a bounded cache, the oldest dropped.
                for key in list(itertools.islice(self._new, max(0, len(self._new) - MAX_UNSAVED))):
                    del self._new[key]
                    self._rows.pop(key, None)
            found.update(computed)
        # Answered from this call's own copies: a fold may drop rows meanwhile.
        return [(sp, found[k]) for k, sp in zip(keys, spans, strict=True)]

    def missing(self, chunks: Iterable[Chunk]) -> list[Chunk]:
        """Those of ``chunks`` whose sentence vectors are not filed."""
        keyed = [(c, _key(c.text, sentence_spans(c.text))) for c in chunks]
        with self._lock:
            return [c for c, key in keyed if key not in self._rows]

    # saving -----------------------------------------------------------------
    def save(self, keep: Iterable[Chunk]) -> None:
        """Write what was added since the last save as a segment; with many segments, write
        one holding only the passages of ``keep`` (the index's). Called under the index's
        write lock (``sync_index``), so no other process saves meanwhile. A failure is logged:
        the vectors are computed again when needed."""
        if self.folder is None:
            return
        try:
            self._save(keep)
        except Exception as err:  # a cache: never an error for the user (disk full, MemoryError…)
            log.warning("could not save sentence vectors in %s (%s); they are computed when needed", self.folder, err)

    def _save(self, keep: Iterable[Chunk]) -> None:
        assert self.folder is not None
        folder = self.folder
        if not self._new:
            return
        self._load()  # segments another process saved since: the listing keeps naming them
        folder.mkdir(parents=True, exist_ok=True)
        fold = len(self._segments) + 1 > MAX_SEGMENTS
        # Only a fold needs the index's passages (keyed: their sentences split; seconds at 70,000).
        wanted = {_key(c.text, sentence_spans(c.text)) for c in keep} if fold else set()
        with self._lock:
            # A new name, never a file that exists: a save cut short leaves the listed files whole.
            on_disk = [p.name for p in folder.glob("seg-*.npz") if p.name[4:-4].isdigit()]
            number = max((int(n[4:-4]) for n in [*self._segments, *on_disk]), default=0) + 1
            keys = [k for k in self._rows if k in wanted] if fold else [k for k in self._new if k in self._rows]
            rows = [self._rows[k] for k in keys]
            segments = {} if fold else dict(self._segments)
            pending, self._new = self._new, {}
        try:  # written outside the lock: searches go on reading meanwhile
            name = f"seg-{number}.npz"
            data = _segment_bytes(keys, rows, self.dim)
            atomic_write(folder / name, data)
            segments[name] = hashlib.sha256(data).hexdigest()
            listing = {"model": self.model_id, "dim": self.dim, "segments": segments}
            atomic_write(folder / LIST, json.dumps(listing, indent=1).encode())
        except BaseException:
            with self._lock:
                self._new = pending | self._new
            raise
        with self._lock:
            self._segments = segments
            if fold:  # rows of passages no longer indexed go, those added meanwhile stay
                since = set(self._new)
                self._rows = {k: v for k, v in self._rows.items() if k in wanted or k in since}
        if fold:  # folded into the new one; and files no listing names (another model's, damaged)
            for path in folder.glob("seg-*.npz"):
                if path.name not in segments:
                    path.unlink(missing_ok=True)

    # loading ----------------------------------------------------------------
    def refresh(self) -> None:
        """Read the segments another process saved since (``rag ingest`` beside the page)."""
        if self.folder is not None:
            self._load()

    def _load(self) -> None:
        assert self.folder is not None
        path = self.folder / LIST
        try:
            listing = json.loads(path.read_text("utf-8"))
            listed = {str(k): str(v) for k, v in listing["segments"].items()}
            same_model = listing.get("model") == self.model_id and listing.get("dim") == self.dim
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            log.warning("%s is unreadable (%s): sentence vectors are computed again", path, err)
            return
        if not same_model:
            log.info("%s holds another model's sentence vectors: they are embedded again", self.folder)
            return
        with self._lock:
            known = dict(self._segments)
        # Those another writer folded away are no longer listed; their rows stay in memory.
        segments, rows = {n: d for n, d in known.items() if n in listed}, {}
        for name, digest in listed.items():
            if name in known:
                continue
            try:
                data = (self.folder / name).read_bytes()
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ValueError("checksum does not match")
                keys, counts, vectors = _parse_segment(data, self.dim)
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("%s is damaged (%s): its sentence vectors are computed again", self.folder / name, err)
                continue
            starts = np.concatenate([[0], np.cumsum(counts)])
            with self._lock:
                fresh = [i for i, key in enumerate(keys) if key not in self._rows and key not in rows]
            # A fold repeats rows already held: copy the new ones, or they would keep the whole array.
            whole = len(fresh) == len(keys)
            for i in fresh:
                part = vectors[starts[i] : starts[i + 1]]
                rows[keys[i]] = part if whole else part.copy()
            segments[name] = digest
        with self._lock:
            for key, value in rows.items():
                self._rows.setdefault(key, value)
            self._segments = segments


def _segment_bytes(keys: list[bytes], rows: list[np.ndarray], dim: int) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES),
        counts=np.asarray([len(r) for r in rows], dtype=np.int64),
        vectors=(np.concatenate(rows) if rows else np.zeros((0, dim))).astype(np.float32),
    )
    return buffer.getvalue()


def _parse_segment(data: bytes, dim: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        keys, counts, vectors = npz["keys"], npz["counts"], npz["vectors"]
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
        raise ValueError(f"keys of shape {keys.shape}, type {keys.dtype}")
    if counts.dtype.kind not in "iu" or counts.ndim != 1 or len(counts) != len(keys) or (counts < 0).any():
        raise ValueError(f"counts of shape {counts.shape}, type {counts.dtype}")
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dim or counts.sum() != len(vectors):
        raise ValueError(f"{len(keys)} keys, {int(counts.sum())} sentences, vectors {vectors.shape}")
    return [row.tobytes() for row in keys], counts, vectors
