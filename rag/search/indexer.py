"""Keeping ``index/`` in step with ``docs_store/``: detect staleness, embed what is new."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import Settings
from ..corpus.chunking import CHUNKER_VERSION, chunk_document, indexed_text
from ..corpus.documents import DocumentCache, read_article, store_files
from ..errors import DocumentError, IndexCorruptError, StoreUnavailableError
from ..types import Chunk, Document
from .embedding import Encoder
from .sentence_vectors import SentenceVectors
from .stores import Manifest, VectorStore, load_store, manifest_stamp, new_store, read_manifest, write_manifest

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What an index sync did, for the CLI and UI to show."""

    action: str  # "loaded" | "updated" | "rebuilt"
    reason: str | None = None
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    skipped: list[str] = field(default_factory=list)
    # The saved index's generation (manifest) this store is: a later sync may update it in place;
    # and the manifest file's mark then, read under the lock (a later change = another writer).
    generation: str | None = None
    stamp: tuple[int, int] | None = None


def indexed_manifest(settings: Settings) -> Manifest:
    """What the index was built from (empty when there is no readable index): a cache of
    each document's file and language, by content id."""
    try:
        manifest = read_manifest(settings.index_dir)
    except IndexCorruptError:
        manifest = None
    return manifest or _empty_manifest()


def _empty_manifest() -> Manifest:
    return Manifest(embedding_model="", dim=0, chunking={})


def load_documents(
    settings: Settings, manifest: Manifest | None = None, cache: DocumentCache | None = None
) -> tuple[list[Document], list[str]]:
    """All readable articles of the store, deduplicated by content id; languages come
    from ``manifest`` (read from the index when not given) where it knows them. With a
    ``cache``, files unchanged since it last read them are not read again."""
    docs: dict[str, Document] = {}
    skipped: list[str] = []
    known = (manifest or indexed_manifest(settings)).languages
    files = store_files(settings.docs_dir)
    read = cache.read if cache is not None else read_article
    if cache is not None:
        cache.keep_only(files)
    for path in files:
        try:
            doc = read(path, settings.max_document_bytes, known)
        except DocumentError as err:  # a file put there by hand; the rest still works
            skipped.append(str(err))
            log.warning("skipping %s", err)
            continue
        docs.setdefault(doc.doc_id, doc)
    return list(docs.values()), skipped


def expected_manifest(settings: Settings, embedder: Encoder, docs: list[Document]) -> Manifest:
    return Manifest(
        embedding_model=embedder.model_id,
        dim=embedder.dim,
        chunking={**settings.chunking.model_dump(), "chunker_version": CHUNKER_VERSION},
        documents={d.doc_id: d.source for d in docs},
        languages={d.doc_id: d.language for d in docs},
        store=settings.index.backend,
    )


# Passages embedded per call: the model is free between calls, so questions asked during a
# long ingest are embedded (and answered) without waiting for the whole article.
EMBED_BATCH = 64


def embed_chunks(embedder: Encoder, chunks: list[Chunk], bar: tqdm | None = None) -> np.ndarray:
    texts = [indexed_text(c) for c in chunks]
    parts = []
    for i in range(0, len(texts), EMBED_BATCH):
        parts.append(embedder.encode_passages(texts[i : i + EMBED_BATCH]))
        if bar is not None:
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def _progress_bar(docs: int, passages: int, enabled: bool) -> tqdm:
    """Articles and passages done, passages/s and time left (shown for more than one batch)."""
    return tqdm(
        total=passages,
        unit="passage",
        desc=f"Embedding {docs:,} article{'s' if docs != 1 else ''}",
        disable=not enabled or passages <= EMBED_BATCH,
        dynamic_ncols=True,
    )


def add_documents(
    store: VectorStore,
    docs: list[Document],
    settings: Settings,
    embedder: Encoder,
    progress: bool,
    checkpoint: Callable[[set[str]], None] = lambda done: None,
    sentences: SentenceVectors | None = None,
) -> int:
    """Embed the passages of ``docs`` and add them to ``store``, a few articles at a time (an
    article is added whole or not at all); every ``index.checkpoint_s`` seconds ``checkpoint``
    is called with the articles in the store so far. With ``sentences``, each passage's
    sentences are embedded too (for the search's re-score and the citation check). Returns
    the passages embedded."""
    chunked = [(d.doc_id, chunk_document(d, settings.chunking)) for d in docs]
    total = sum(len(chunks) for _, chunks in chunked)
    done = {c.doc_id for c in store.chunks}
    last_save = time.monotonic()
    period = settings.index.checkpoint_s
    group: list[Chunk] = []
    group_docs: list[str] = []
    with _progress_bar(len(docs), total, progress) as bar:
        for i, (doc_id, chunks) in enumerate(chunked):
            group += chunks
            group_docs.append(doc_id)
            if len(group) < EMBED_BATCH and i + 1 < len(chunked):
                continue
            vectors = embed_chunks(embedder, group, bar)
            if sentences is not None:
                sentences.lookup(group, embedder.encode_passages)
            store.add(group, vectors)
            done.update(group_docs)
            bar.set_postfix_str(f"{len(done):,} articles in the index", refresh=False)
            group, group_docs = [], []
            if i + 1 < len(chunked) and time.monotonic() - last_save >= period:
                started = time.monotonic()
                checkpoint(done)
                last_save = time.monotonic()
                # A save may rewrite the whole index (FAISS folds its segments in from time to
                # time): as it grows, save less often (at most a tenth of the time goes to checkpoints).
                period = max(settings.index.checkpoint_s, 10 * (last_save - started))
    return total


def _fill_sentences(store: VectorStore, sentences: SentenceVectors, embedder: Encoder, progress: bool) -> None:
    """Embed and save the sentence vectors the index's passages lack, a batch at a time."""
    todo = sentences.missing(store.chunks)
    if not todo:
        return
    bar = tqdm(total=len(todo), unit="passage", desc="Embedding the passages' sentences", dynamic_ncols=True,
               disable=not progress or len(todo) <= EMBED_BATCH)
    with bar:
        for i in range(0, len(todo), EMBED_BATCH):
            sentences.lookup(todo[i : i + EMBED_BATCH], embedder.encode_passages)
            bar.update(len(todo[i : i + EMBED_BATCH]))
    sentences.save(store.chunks)


class IndexBusy(Exception):
    """Another process is writing the index (``sync_index(wait=False)``)."""


@contextmanager
def _folder_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """One writer of an index folder at a time, across processes (a CLI ingest beside the page)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".write.lock", "a")  # noqa: SIM115 - held for the whole block
    except OSError:
        # A read-only index folder (a shared, prepared index): it can be read without the lock;
        # a rebuild would then fail to save with its own clear IndexWriteError.
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as err:
            raise IndexBusy(str(folder)) from err
        yield
    finally:
        handle.close()  # releases the lock


def sync_index(
    settings: Settings,
    embedder: Encoder,
    *,
    rebuild: bool = False,
    progress: bool = True,
    wait: bool = True,
    current: tuple[VectorStore, str | None] | None = None,
    documents: DocumentCache | None = None,
    sentences: SentenceVectors | None = None,
    fill_sentences: bool = False,
) -> tuple[VectorStore, SyncReport]:
    """Load the index if current, update it for new/removed documents, or rebuild it.
    ``wait=False`` raises IndexBusy at once when another process is writing it. ``current``:
    the store this process serves and the generation it is (``SyncReport.generation``); when
    the index was not saved since, a copy of it is updated instead of reading the index again.
    ``documents``: the articles read before (only changed files are read again).
    ``sentences``: where the new passages' sentence vectors go (saved with the index);
    ``fill_sentences``: also embed those of passages indexed without them (an index from
    before ``index.sentence_vectors``)."""
    with _folder_lock(settings.index_dir, wait):
        store, report = _sync(settings, embedder, rebuild, progress, current, documents, sentences)
        if fill_sentences and sentences is not None:
            _fill_sentences(store, sentences, embedder, progress)
        report.stamp = manifest_stamp(settings.index_dir)
        return store, report


def open_index(settings: Settings, embedder: Encoder, documents: DocumentCache | None = None) -> VectorStore | None:
    """The index as last saved, opened without the write lock and without embedding anything
    (for a process that serves questions while another one writes): articles removed from
    the store since are left out, articles not embedded yet are not searchable until the
    writer (or `rag index`) adds them. None when there is no usable saved index (none, another
    model or chunking, or caught mid-write: the files and the manifest disagree)."""
    folder = settings.index_dir
    try:
        have = read_manifest(folder)
        if have is None:
            return None
        docs, _ = load_documents(settings, have, documents)
        reason = have.stale_reason(expected_manifest(settings, embedder, docs))
        if reason not in (None, "documents changed"):
            return None
        store = load_store(have.store, folder, have, settings.index)
    except (IndexCorruptError, StoreUnavailableError, OSError):
        return None
    store.remove({c.doc_id for c in store.chunks} - {d.doc_id for d in docs})  # in memory only
    return store


def _sync(
    settings: Settings,
    embedder: Encoder,
    rebuild: bool,
    progress: bool,
    current: tuple[VectorStore, str | None] | None = None,
    documents: DocumentCache | None = None,
    sentences: SentenceVectors | None = None,
) -> tuple[VectorStore, SyncReport]:
    folder = settings.index_dir
    have: Manifest | None = None
    damaged: IndexCorruptError | None = None
    try:
        have = read_manifest(folder)
    except IndexCorruptError as err:
        damaged = err
    docs, skipped = load_documents(settings, have or _empty_manifest(), documents)
    want = expected_manifest(settings, embedder, docs)
    store: VectorStore | None = None
    reason: str | None = "requested" if rebuild else None
    if not rebuild and damaged is None:
        reason = "no index yet" if have is None else have.stale_reason(want)
        if have is not None and reason in (None, "documents changed"):
            if current is not None and current[1] and current[1] == have.generation:
                # Read under the lock: no other writer saved since this process read it.
                store = current[0] if reason is None else current[0].snapshot()
            else:
                try:
                    store = load_store(have.store, folder, have, settings.index)
                except IndexCorruptError as err:
                    damaged = err
    if not rebuild and damaged is not None:
        log.warning("%s; rebuilding", damaged)
        reason, store = f"index damaged: {damaged}", None
    if reason is None and store is not None and have is not None:
        if have.languages != want.languages:  # an index from before languages were recorded
            have.languages = want.languages
            write_manifest(folder, have)
        if getattr(store, "converted", False):  # exact <-> approximate (index.ann_from): kept so
            store.save(folder, have)  # the next start does not build the graph again
        return store, SyncReport("loaded", None, len(docs), len(store), 0, skipped, have.generation)

    action = "updated" if store is not None else "rebuilt"
    if store is None and have is not None and reason not in ("requested", None) and damaged is None:
        # Never mixes vectors of two models (or two chunkings): said once, since it takes a while.
        log.warning("Rebuilding the index once: %s; %d articles to embed again.", reason, len(docs))
    if store is None:
        store = new_store(settings.index.backend, embedder.dim, folder, settings.index)
    else:  # same model and chunking: keep the vectors of unchanged documents
        store.remove({c.doc_id for c in store.chunks} - set(want.documents))
    indexed = {c.doc_id for c in store.chunks}

    def checkpoint(done: set[str]) -> None:
        # The index as far as it got: a later run sees the other articles as new ones.
        partial = replace(
            want,
            documents={k: v for k, v in want.documents.items() if k in done},
            languages={k: v for k, v in want.languages.items() if k in done},
            checksums={},
        )
        if sentences is not None:
            sentences.save(store.chunks)
        store.save(folder, partial, final=False)

    embedded = add_documents(
        store, [d for d in docs if d.doc_id not in indexed], settings, embedder, progress, checkpoint, sentences
    )
    if sentences is not None:
        sentences.save(store.chunks)
    store.save(folder, want)
    return store, SyncReport(action, reason, len(docs), len(store), embedded, skipped, want.generation)
