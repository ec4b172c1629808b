"""The Milvus vector store (``index.backend = "milvus"``), through ``pymilvus``.

``index.milvus_uri`` chooses the engine and nothing else changes: a file path (default
``index/milvus.db``) runs Milvus Lite inside this process; ``http://host:19530`` (with
``index.milvus_token``) a Milvus Standalone or Distributed server, which several processes
and machines share. Each row holds a passage's vector, its text and its metadata; BM25,
the fusion and the sentence re-score stay the project's (``retrieval.py``).

Rows are written as they are added; what the index *is* stays what the manifest (in the
index folder, written last) names: its collection and its articles. A process that opens
the index sees exactly those articles, whatever a writer has added since, so a killed
ingest leaves no half article behind: the rows of articles the manifest does not list are
ignored, and deleted by the next save after the manifest is written. Row ids come from the
passage ids, so an article added again (a resumed ingest) overwrites its rows instead of
doubling them. A rebuild writes a new collection; the manifest lists the one it replaces
and the final save of the build drops it (never a collection this folder did not name).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexSettings, mask_url
from ..errors import ConfigError, IndexCorruptError, RagError, StoreUnavailableError
from ..types import Chunk
from .stores import Manifest, read_manifest, write_manifest

LITE_FILE = "milvus.db"
# Rows per insert/delete/query call: well under Milvus's message size limit (64 MB).
BATCH = 512
# The most results one Milvus search returns.
MAX_LIMIT = 16_384
# Every read sees every write before it (a server's default, "Bounded", may not: a load right
# after another writer's save would miss rows and count as damage).
STRONG = "Strong"
_META = ("chunk_id", "number", "title", "date", "heading", "start", "end", "language")


def milvus_uri(cfg: IndexSettings, folder: Path) -> str:
    """The server address, or the Milvus Lite file (default ``<index folder>/milvus.db``)."""
    return cfg.milvus_uri or str(folder / LITE_FILE)


def row_id(chunk_id: str) -> int:
    """A stable 63-bit id per passage: re-adding a passage replaces its row."""
    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:8], "big") >> 1


def _lite_locked(path: str) -> bool:
    """Whether another process holds Milvus Lite's lock on this data folder."""
    try:
        with open(Path(path) / "LOCK", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


_QUIET = threading.Lock()


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence these loggers for a moment (noise with nothing for the user to do)."""
    with _QUIET:
        saved = [(lg, lg.level) for lg in map(logging.getLogger, loggers)]
        for lg, _ in saved:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for lg, level in saved:
                lg.setLevel(level)


def _connect(cfg: IndexSettings, folder: Path) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as err:
        raise ConfigError(
            'index.backend = "milvus" needs pymilvus (and milvus-lite for a local file): '
            "`.venv/bin/uv pip install -e '.[milvus]'`."
        ) from err
    uri = milvus_uri(cfg, folder)
    token = cfg.milvus_token.get_secret_value() if cfg.milvus_token else ""
    lite = "://" not in uri
    if lite:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    # Milvus Lite serves one process at a time: another writer (which holds the index's write
    # lock only until it returns, not until it exits) gets up to milvus_timeout_s to let go.
    deadline = time.monotonic() + cfg.milvus_timeout_s
    while True:
        try:
            with _quiet("milvus_lite.server_manager"):  # a failed start is a traceback there; ours says why
                return MilvusClient(uri=uri, token=token, timeout=cfg.milvus_timeout_s)
        except Exception as err:  # pymilvus raises its own classes, grpc's and OSError alike
            if lite and _lite_locked(uri):
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise StoreUnavailableError(
                    f"Milvus Lite cannot open {uri}: another process has it open (Milvus Lite serves "
                    "one process at a time: stop the other one, e.g. the chat page, or run a Milvus "
                    'server and set index.milvus_uri = "http://host:19530" so several processes share '
                    "it)."
                ) from err
            where = uri if lite else mask_url(uri)
            raise StoreUnavailableError(f"cannot open Milvus at {where} ({type(err).__name__}: {err}).") from err


@contextmanager
def _engine(collection: str) -> Iterator[None]:
    """The engine's failures (a server gone, a collection dropped) as one clear error."""
    try:
        yield
    except RagError:
        raise
    except Exception as err:
        raise StoreUnavailableError(f"Milvus collection {collection}: {type(err).__name__}: {err}") from err


def _literal(values: Iterable[str]) -> str:
    return json.dumps(sorted(values), ensure_ascii=False)  # a Milvus list of string literals


class Store:
    """Passages and vectors in one Milvus collection; position i is ``chunks[i]``."""

    def __init__(self, dim: int, cfg: IndexSettings, folder: Path, collection: str | None = None) -> None:
        self.dim = dim
        self.cfg = cfg
        self.client = _connect(cfg, folder)
        self.collection = collection or f"{cfg.milvus_collection}_{uuid.uuid4().hex[:12]}"
        self.chunks: list[Chunk] = []
        self._ids: list[int] = []
        self._position: dict[int, int] = {}
        # Articles dropped here, deleted from the collection at the next save (a process that
        # only reads never deletes what the index's writer still lists).
        self._dropped: set[str] = set()
        if collection is None:
            with _engine(self.collection):
                self._create()

    def __len__(self) -> int:
        return len(self.chunks)

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
        schema.add_field("text", DataType.VARCHAR, max_length=65_535)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        params = {"M": self.cfg.ann_m, "efConstruction": self.cfg.ann_ef_construction}
        index.add_index(
            "vector",
            index_type=self.cfg.milvus_index,
            metric_type="IP",
            params=params if self.cfg.milvus_index == "HNSW" else {},
        )
        self.client.create_collection(self.collection, schema=schema, index_params=index, consistency_level=STRONG)

    def _reindex(self) -> None:
        self._position = {rid: i for i, rid in enumerate(self._ids)}

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        rows = [
            {
                "id": row_id(c.chunk_id),
                "doc_id": c.doc_id,
                "text": c.text,
                "meta": {k: getattr(c, k) for k in _META},
                "vector": v.astype(np.float32).tolist(),
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]
        with _engine(self.collection):
            for i in range(0, len(rows), BATCH):
                self.client.upsert(self.collection, rows[i : i + BATCH])
        self._dropped -= {c.doc_id for c in chunks}
        for r in rows:
            self._position[r["id"]] = len(self._ids)
            self._ids.append(r["id"])
        self.chunks.extend(chunks)

    def remove(self, doc_ids: set[str]) -> None:
        keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in doc_ids]
        if len(keep) == len(self.chunks):
            return
        self._dropped |= {c.doc_id for c in self.chunks if c.doc_id in doc_ids}
        self.chunks = [self.chunks[i] for i in keep]
        self._ids = [self._ids[i] for i in keep]
        self._reindex()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        scores = np.full((len(queries), k), -np.inf, np.float32)
        positions = np.full((len(queries), k), -1, np.int64)
        if k == 0:
            return scores, positions
        # The collection may hold rows this process does not serve (a writer's newer articles,
        # or ones dropped here): asked for a few more, and for more again when they crowd out.
        limit = min(k + 16, MAX_LIMIT)
        rows: list[int] = list(range(len(queries)))
        while rows:
            with _engine(self.collection):
                hits = self.client.search(
                    self.collection,
                    data=[queries[r].astype(np.float32).tolist() for r in rows],
                    limit=limit,
                    search_params={"metric_type": "IP", "params": {"ef": max(self.cfg.ann_ef_search, limit)}},
                    consistency_level=STRONG,
                )
            short = []
            for r, found in zip(rows, hits, strict=True):
                known = [(h["distance"], self._position[h["id"]]) for h in found if h["id"] in self._position][:k]
                scores[r, : len(known)] = [s for s, _ in known]
                positions[r, : len(known)] = [p for _, p in known]
                if len(known) < k and len(found) >= limit and limit < MAX_LIMIT:
                    short.append(r)
            rows, limit = short, min(limit * 4, MAX_LIMIT)
        return scores, positions

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        ids = [self._ids[int(p)] for p in positions]
        found: dict[int, list[float]] = {}
        with _engine(self.collection):
            for i in range(0, len(ids), BATCH):
                rows = self.client.get(
                    self.collection, ids=ids[i : i + BATCH], output_fields=["vector"], consistency_level=STRONG
                )
                found.update((row["id"], row["vector"]) for row in rows)
        # A row another process's save removed meanwhile (the article is gone from the index
        # it serves now) scores nothing until this process opens that index.
        zero = [0.0] * self.dim
        return np.asarray([found.get(i, zero) for i in ids], dtype=np.float32).reshape(len(ids), self.dim)

    def snapshot(self) -> Store:
        # The same collection: rows the copy adds are not this store's (search keeps to its own ids).
        copy = Store.__new__(Store)
        copy.dim, copy.cfg, copy.client, copy.collection = self.dim, self.cfg, self.client, self.collection
        copy.chunks, copy._ids, copy._dropped = list(self.chunks), list(self._ids), set(self._dropped)
        copy._reindex()
        return copy

    def save(self, folder: Path, manifest: Manifest, final: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        before = read_manifest(folder)
        retired = [] if before is None or before.store != "milvus" else list(before.retired)
        if before is not None and before.collection and before.collection != self.collection:
            retired.append(before.collection)  # the build this one replaces
        with _engine(self.collection):
            self.client.flush(self.collection)
            manifest.chunk_count = len(self)
            manifest.checksums = {}
            manifest.collection = self.collection
            manifest.retired = [c for c in dict.fromkeys(retired) if c != self.collection]
            write_manifest(folder, manifest)  # from here on, this collection is the index
            # Then the rows no longer listed: a crash before this leaves rows that are ignored.
            dropped = sorted(self._dropped)
            for i in range(0, len(dropped), BATCH):
                self.client.delete(self.collection, filter=f"doc_id in {_literal(dropped[i : i + BATCH])}")
            self._dropped.clear()
            if final and manifest.retired:  # a build complete: the collection it replaced goes
                for name in manifest.retired:
                    self.client.drop_collection(name)
                manifest.retired = []
                write_manifest(folder, manifest)

    @classmethod
    def load(cls, folder: Path, manifest: Manifest, cfg: IndexSettings) -> Store:
        store = cls(manifest.dim, cfg, folder, collection=manifest.collection)
        with _engine(manifest.collection):
            if not manifest.collection or not store.client.has_collection(manifest.collection):
                raise IndexCorruptError(
                    f"the Milvus collection {manifest.collection or '(none)'} named by {folder} is not at "
                    f"{mask_url(milvus_uri(cfg, folder))}."
                )
            store.client.load_collection(manifest.collection)  # into the engine's memory (a restart releases it)
            order = {doc_id: i for i, doc_id in enumerate(manifest.documents)}
            kept: list[tuple[int, int, Chunk, int]] = []
            orphans: set[str] = set()
            # Milvus Lite lacks the timestamp call the iterator starts with (it falls back, loudly).
            with _quiet("pymilvus", "grpc._server"):
                iterator = store.client.query_iterator(
                    manifest.collection,
                    batch_size=BATCH * 4,
                    filter="id >= 0",
                    output_fields=["id", "doc_id", "text", "meta"],
                    consistency_level=STRONG,
                )
            try:
                while batch := iterator.next():
                    for row in batch:
                        doc_id = row["doc_id"]
                        if doc_id not in order:
                            orphans.add(doc_id)
                            continue
                        chunk = Chunk(doc_id=doc_id, text=row["text"], **row["meta"])
                        kept.append((order[doc_id], chunk.number, chunk, row["id"]))
            finally:
                iterator.close()
        kept.sort(key=lambda t: (t[0], t[1]))
        if len(kept) != manifest.chunk_count:
            raise IndexCorruptError(
                f"Milvus collection {manifest.collection} holds {len(kept)} passages of the indexed "
                f"articles, the manifest {manifest.chunk_count}."
            )
        store.chunks = [c for _, _, c, _ in kept]
        store._ids = [rid for _, _, _, rid in kept]
        store._reindex()
        store._dropped = orphans  # a killed writer's rows: gone at the next save
        return store
