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
ignored and deleted by the next save. Row ids come from the passage ids, so an article
added again (a resumed ingest) overwrites its rows instead of doubling them. A rebuild
writes a new collection and drops the old one only once its manifest is saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexSettings, mask_url
from ..errors import ConfigError, IndexCorruptError, StoreUnavailableError
from ..types import Chunk
from .stores import Manifest, write_manifest

log = logging.getLogger(__name__)

LITE_FILE = "milvus.db"
# Rows per insert/delete/query call: well under Milvus's message size limit (64 MB).
BATCH = 512
_META = ("chunk_id", "number", "title", "date", "heading", "start", "end", "language")


def milvus_uri(cfg: IndexSettings, folder: Path) -> str:
    """The server address, or the Milvus Lite file (default ``<index folder>/milvus.db``)."""
    uri = cfg.milvus_uri or str(folder / LITE_FILE)
    return uri if "://" in uri else str(Path(uri).resolve())


def row_id(chunk_id: str) -> int:
    """A stable 63-bit id per passage: re-adding a passage replaces its row."""
    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:8], "big") >> 1


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
    deadline = time.monotonic() + (cfg.milvus_timeout_s if lite else 0)
    with _quiet("milvus_lite.server_manager"):  # its failed start is a traceback in the log; ours says why
        while True:
            try:
                return MilvusClient(uri=uri, token=token, timeout=cfg.milvus_timeout_s)
            except Exception as err:  # pymilvus raises its own classes, grpc's and OSError alike
                if lite and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                if lite:
                    raise StoreUnavailableError(
                        f"Milvus Lite cannot open {uri}: another process has it open (Milvus Lite serves "
                        "one process at a time: stop the other one, e.g. the chat page, or run a Milvus "
                        'server and set index.milvus_uri = "http://host:19530" so several processes share '
                        "it)."
                    ) from err
                raise StoreUnavailableError(
                    f"cannot reach Milvus at {mask_url(uri)} ({type(err).__name__})."
                ) from err


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence these loggers for a moment (noise with nothing for the user to do)."""
    saved = [(lg, lg.level) for lg in map(logging.getLogger, loggers)]
    for lg, _ in saved:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


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
        self.client.create_collection(self.collection, schema=schema, index_params=index)

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
        for i in range(0, len(rows), BATCH):
            self.client.upsert(self.collection, rows[i : i + BATCH])
        self._dropped -= {c.doc_id for c in chunks}
        self.chunks.extend(chunks)
        self._ids.extend(r["id"] for r in rows)
        self._reindex()

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
        limit = k + 16
        rows: list[int] = list(range(len(queries)))
        while rows:
            hits = self.client.search(
                self.collection,
                data=[queries[r].astype(np.float32).tolist() for r in rows],
                limit=min(limit, 16_384),
                search_params={"metric_type": "IP", "params": {"ef": max(self.cfg.ann_ef_search, limit)}},
            )
            short = []
            for r, found in zip(rows, hits, strict=True):
                known = [(h["distance"], self._position[h["id"]]) for h in found if h["id"] in self._position]
                known = known[:k]
                scores[r, : len(known)] = [s for s, _ in known]
                positions[r, : len(known)] = [p for _, p in known]
                if len(known) < k and len(found) >= limit and limit < 16_384:
                    short.append(r)
            rows, limit = short, limit * 4
        return scores, positions

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        if not len(positions):
            return np.zeros((0, self.dim), np.float32)
        ids = [self._ids[int(p)] for p in positions]
        found: dict[int, list[float]] = {}
        for i in range(0, len(ids), BATCH):
            for row in self.client.get(self.collection, ids=ids[i : i + BATCH], output_fields=["vector"]):
                found[row["id"]] = row["vector"]
        try:
            return np.asarray([found[i] for i in ids], dtype=np.float32)
        except KeyError as err:
            raise IndexCorruptError(f"Milvus collection {self.collection}: a passage lost its row.") from err

    def snapshot(self) -> Store:
        # The same collection: rows the copy adds are not this store's (search keeps to its own ids).
        copy = Store.__new__(Store)
        copy.dim, copy.cfg, copy.client, copy.collection = self.dim, self.cfg, self.client, self.collection
        copy.chunks, copy._ids, copy._dropped = list(self.chunks), list(self._ids), set(self._dropped)
        copy._reindex()
        return copy

    def save(self, folder: Path, manifest: Manifest) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        dropped = sorted(self._dropped)
        for i in range(0, len(dropped), BATCH):
            self.client.delete(self.collection, filter=f"doc_id in {_literal(dropped[i : i + BATCH])}")
        self._dropped.clear()
        self.client.flush(self.collection)
        manifest.chunk_count = len(self)
        manifest.checksums = {}
        manifest.collection = self.collection
        write_manifest(folder, manifest)  # from here on, this collection is the index
        prefix = f"{self.cfg.milvus_collection}_"
        for name in self.client.list_collections():
            if name.startswith(prefix) and name != self.collection:
                self.client.drop_collection(name)  # an earlier build's

    @classmethod
    def load(cls, folder: Path, manifest: Manifest, cfg: IndexSettings) -> Store:
        store = cls(manifest.dim, cfg, folder, collection=manifest.collection)
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
