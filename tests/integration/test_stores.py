"""One suite for every vector store (FAISS, Milvus Lite): the contract, persistence, a
killed writer, damage, the index lifecycle through ``sync_index``, and two writers at once."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import IndexSettings, Settings
from rag.errors import IndexCorruptError
from rag.search.indexer import sync_index
from rag.search.retrieval import HybridRetriever
from rag.search.store_names import STORES
from rag.search.stores import Manifest, VectorStore, load_store, new_store, read_manifest
from rag.types import Chunk
from tests.conftest import REPO
from tests.integration.test_index import FakeEmbedder, Interrupted, _many_articles

DIM = 32


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(docs: range, per_doc: int = 5) -> list[Chunk]:
    return [
        Chunk(f"d{d}:{n}", f"d{d}", n, f"Titolo {d}", "2024-06-19", None, 10 * n, 10 * n + 9, f"testo {d} «è»", "it")
        for d in docs
        for n in range(per_doc)
    ]


def _manifest(store: VectorStore, backend: str) -> Manifest:
    docs = dict.fromkeys(c.doc_id for c in store.chunks)
    return Manifest(embedding_model="m", dim=DIM, chunking={}, documents={d: f"{d}.txt" for d in docs}, store=backend)


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "index"


def _new(backend: str, folder: Path) -> VectorStore:
    return new_store(backend, DIM, folder, IndexSettings(backend=backend))


def _load(backend: str, folder: Path) -> VectorStore:
    manifest = read_manifest(folder)
    assert manifest is not None and manifest.store == backend
    return load_store(backend, folder, manifest, IndexSettings(backend=backend))


def _exact(store: VectorStore, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_search_is_exact_and_positions_follow_the_chunks(backend: str, folder: Path) -> None:
    store = _new(backend, folder)
    chunks, vectors = _chunks(range(8)), _vectors(40)
    store.add(chunks[:25], vectors[:25])
    store.add(chunks[25:], vectors[25:])
    queries = _vectors(6, seed=1)
    scores, positions = store.search(queries, 7)
    assert positions.shape == (6, 7)
    np.testing.assert_array_equal(positions, _exact(store, vectors, queries, 7))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, positions, 1), atol=1e-5)
    np.testing.assert_allclose(store.vectors_at([3, 39, 0]), vectors[[3, 39, 0]], atol=1e-6)

    store.remove({"d0", "d5"})
    keep = [i for i, c in enumerate(chunks) if c.doc_id not in {"d0", "d5"}]
    assert [c.chunk_id for c in store.chunks] == [chunks[i].chunk_id for i in keep] and len(store) == 30
    _, positions = store.search(queries, 50)  # more than there are: all, best first
    assert positions.shape == (6, 30)
    np.testing.assert_array_equal(positions, _exact(store, vectors[keep], queries, 30))
    np.testing.assert_allclose(store.vectors_at(list(range(30))), vectors[keep], atol=1e-6)


def test_saved_and_opened_again_it_is_the_same_index(backend: str, folder: Path) -> None:
    store = _new(backend, folder)
    chunks, vectors = _chunks(range(6)), _vectors(30)
    store.add(chunks, vectors)
    store.remove({"d2"})
    store.save(folder, _manifest(store, backend))
    again = _load(backend, folder)
    assert again.chunks == store.chunks  # every field, the text's non-ASCII characters too
    queries = _vectors(4, seed=2)
    for a, b in zip(store.search(queries, 10), again.search(queries, 10), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_what_a_reader_drops_never_reaches_the_saved_index(backend: str, folder: Path) -> None:
    store = _new(backend, folder)
    store.add(_chunks(range(3)), _vectors(15))
    store.save(folder, _manifest(store, backend))
    reader = _load(backend, folder)
    reader.remove({"d1"})  # an article deleted from the store since: hidden here, not deleted
    assert {c.doc_id for c in reader.chunks} == {"d0", "d2"}
    assert {c.doc_id for c in _load(backend, folder).chunks} == {"d0", "d1", "d2"}


def test_a_killed_writer_leaves_no_half_article_and_nothing_twice(backend: str, folder: Path) -> None:
    store = _new(backend, folder)
    chunks, vectors = _chunks(range(4)), _vectors(20)
    store.add(chunks[:10], vectors[:10])
    store.save(folder, _manifest(store, backend))  # a checkpoint: d0, d1
    store.add(chunks[10:], vectors[10:])  # then killed before the next save
    del store
    resumed = _load(backend, folder)
    assert {c.doc_id for c in resumed.chunks} == {"d0", "d1"} and len(resumed) == 10
    resumed.add(chunks[10:], vectors[10:])  # the resumed run adds them again
    resumed.save(folder, _manifest(resumed, backend))
    final = _load(backend, folder)
    assert [c.chunk_id for c in final.chunks] == [c.chunk_id for c in chunks]
    _, positions = final.search(_vectors(3, seed=3), 20)
    assert sorted(positions[0].tolist()) == list(range(20))  # each passage once


def _damage(backend: str, folder: Path) -> None:
    if backend == "faiss":
        path = folder / "vectors.faiss"
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    else:  # rows lost behind the index's back
        store = _load(backend, folder)
        store.client.delete(store.collection, filter='doc_id in ["d1"]')  # type: ignore[attr-defined]


def test_damage_is_detected(backend: str, folder: Path) -> None:
    store = _new(backend, folder)
    store.add(_chunks(range(3)), _vectors(15))
    store.save(folder, _manifest(store, backend))
    _damage(backend, folder)
    with pytest.raises(IndexCorruptError):
        _load(backend, folder)


def _settings(settings: Settings, backend: str) -> Settings:
    return settings.model_copy(update={"index": IndexSettings(backend=backend, checkpoint_s=0.0)})


def test_the_index_lifecycle_is_the_same_on_every_store(settings: Settings, home: Path) -> None:
    """Built, opened, updated for a new and a removed article, rebuilt for another model:
    each store returns the same passages for the same questions."""
    runs: dict[str, list[list[str]]] = {}
    for backend in STORES:
        cfg = _settings(settings, backend).model_copy(update={"index_dir": home / f"index-{backend}"})
        emb = FakeEmbedder()
        store, report = sync_index(cfg, emb, progress=False)  # type: ignore[arg-type]
        assert report.action == "rebuilt" and len(store) == report.embedded_chunks > 3
        store, report = sync_index(cfg, emb, progress=False)  # type: ignore[arg-type]
        assert report.action == "loaded" and report.embedded_chunks == 0
        _many_articles(home, 3)
        store, report = sync_index(cfg, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
        assert report.action == "updated" and 0 < report.embedded_chunks < len(store)
        (home / "docs_store" / "notizia-001.txt").unlink()
        store, report = sync_index(cfg, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
        assert report.action == "updated" and report.embedded_chunks == 0
        assert not any("numero 1 ha" in c.text for c in store.chunks)
        retriever = HybridRetriever(store, FakeEmbedder(), cfg.retrieval)  # type: ignore[arg-type]
        runs[backend] = [[h.chunk.chunk_id for h in retriever.search(q, k=5)] for q in ("bilancio", "Kim Putin")]
        _, report = sync_index(cfg, FakeEmbedder(model_id="other"), progress=False)  # type: ignore[arg-type]
        assert report.action == "rebuilt"
        for i in (0, 2):  # back as it was for the next store
            (home / "docs_store" / f"notizia-{i:03d}.txt").unlink()
    assert runs["faiss"] == runs["milvus"]


@pytest.mark.parametrize("backend", STORES)
def test_an_interrupted_ingest_resumes_where_it_stopped(
    settings: Settings, home: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.search.indexer as indexer

    monkeypatch.setattr(indexer, "EMBED_BATCH", 4)
    _many_articles(home, 20)
    cfg = _settings(settings, backend)

    class Killed(FakeEmbedder):
        def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            if self.calls >= 14:
                raise Interrupted
            return super().encode_passages(texts)

    with pytest.raises(Interrupted):
        sync_index(cfg, Killed(), progress=False)  # type: ignore[arg-type]
    saved = read_manifest(cfg.index_dir)
    assert saved is not None and 0 < len(saved.documents) < 21
    emb = FakeEmbedder()
    store, report = sync_index(cfg, emb, progress=False)  # type: ignore[arg-type]
    assert report.action == "updated" and report.embedded_chunks == emb.calls
    kept = sum(1 for c in store.chunks if c.doc_id in saved.documents)
    assert report.embedded_chunks == len(store) - kept  # nothing embedded twice
    ids = [c.chunk_id for c in store.chunks]
    assert len(ids) == len(set(ids)) and len({c.doc_id for c in store.chunks}) == 21  # nothing lost
    _, positions = store.search(emb.encode_queries(["Il sindaco"]), len(store))
    assert sorted(positions[0].tolist()) == list(range(len(store)))  # no row twice in the engine


def _writer(home: str, index_dir: str, backend: str, first: int, sizes: Any) -> None:
    """One `rag ingest` process: its own articles, then the index synced (run in a child)."""
    import time

    from tests.conftest import make_settings

    _many_articles_from(Path(home), first, 8)
    cfg = make_settings(Path(home), index={"backend": backend, "checkpoint_s": 0.0}, index_dir=Path(index_dir))

    class Slow(FakeEmbedder):
        def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            time.sleep(0.5)  # so the two writers overlap
            return super().encode_passages(texts)

    started = time.time()
    store, _ = sync_index(cfg, Slow(), progress=False)  # type: ignore[arg-type]
    sizes.put((len(store), started, time.time()))


def _many_articles_from(home: Path, first: int, n: int) -> None:
    for i in range(first, first + n):
        (home / "docs_store" / f"notizia-{i:03d}.txt").write_text(
            f"date 2024-01 Notizia {i}\n\nIl consiglio {i} ha approvato il bilancio {i}.\n", encoding="utf-8"
        )


@pytest.mark.parametrize("backend", STORES)
def test_two_writers_at_once_never_corrupt_the_index(settings: Settings, home: Path, backend: str) -> None:
    index_dir = home / "index"
    ctx = multiprocessing.get_context("spawn")
    sizes = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(str(home), str(index_dir), backend, f, sizes)) for f in (100, 200)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=240)
    assert [w.exitcode for w in writers] == [0, 0]
    cfg = _settings(settings, backend)
    store, report = sync_index(cfg, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    runs = [sizes.get(), sizes.get()]
    assert max(start for _, start, _ in runs) < min(end for _, _, end in runs)  # they did overlap
    # Whichever finished last saw every article of both; the index holds each passage once.
    assert report.action == "loaded" and max(n for n, _, _ in runs) == len(store)
    ids = [c.chunk_id for c in store.chunks]
    assert len(ids) == len(set(ids)) and len({c.doc_id for c in store.chunks}) == 17


def test_milvus_lite_held_by_another_process_says_so(settings: Settings) -> None:
    cfg = _settings(settings, "milvus")
    sync_index(cfg, FakeEmbedder(), progress=False)  # type: ignore[arg-type]  # this process holds the file now
    code = (
        "import sys, pathlib; from rag.config import IndexSettings; from rag.search.stores import new_store\n"
        "from rag.errors import StoreUnavailableError\n"
        "cfg = IndexSettings(backend='milvus', milvus_timeout_s=1)\n"
        "try:\n    new_store('milvus', 8, pathlib.Path(sys.argv[1]), cfg)\n"
        "except StoreUnavailableError as err:\n    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(cfg.index_dir)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert "another process has it open" in out.stdout and "index.milvus_uri" in out.stdout, out.stderr[-2000:]


def test_faiss_appends_what_was_added_and_rewrites_after_a_removal(folder: Path) -> None:
    from rag.search.faiss_store import CHUNKS, MAX_SEGMENTS, VECTORS

    store = _new("faiss", folder)
    chunks, vectors = _chunks(range(40)), _vectors(200)
    store.add(chunks[:50], vectors[:50])
    store.save(folder, _manifest(store, "faiss"))
    base = (folder / VECTORS).stat().st_mtime_ns, (folder / CHUNKS).stat().st_mtime_ns
    for d in range(10, 13):  # one article at a time, as `rag ingest` of one file does
        store.add(chunks[5 * d : 5 * d + 5], vectors[5 * d : 5 * d + 5])
        store.save(folder, _manifest(store, "faiss"))
    assert ((folder / VECTORS).stat().st_mtime_ns, (folder / CHUNKS).stat().st_mtime_ns) == base
    assert sorted(p.name for p in folder.glob("appended-*")) == [
        f"appended-{n}.{ext}" for n in (1, 2, 3) for ext in ("jsonl", "npy")
    ]
    assert (folder / "appended-3.npy").stat().st_size < 5 * DIM * 4 + 200  # that article's vectors only
    again = _load("faiss", folder)
    assert again.chunks == store.chunks
    np.testing.assert_allclose(again.vectors_at(list(range(65))), vectors[:65], atol=1e-6)

    (folder / "appended-4.npy").write_bytes(b"a save killed before its manifest")  # not listed: ignored
    assert len(_load("faiss", folder)) == 65

    again.remove({"d0"})  # positions shift: the whole is written again, the segments folded in
    again.save(folder, _manifest(again, "faiss"))
    assert not list(folder.glob("appended-*")) and len(_load("faiss", folder)) == 60

    for d in range(13, 13 + MAX_SEGMENTS):
        again.add(chunks[5 * d : 5 * d + 5], vectors[5 * d : 5 * d + 5])
        again.save(folder, _manifest(again, "faiss"))
    assert len(list(folder.glob("appended-*.npy"))) == MAX_SEGMENTS
    stamp = (folder / VECTORS).stat().st_mtime_ns
    again.add(chunks[195:200], vectors[195:200])
    again.save(folder, _manifest(again, "faiss"))  # one too many: folded into the whole
    assert not list(folder.glob("appended-*")) and (folder / VECTORS).stat().st_mtime_ns != stamp
    final = _load("faiss", folder)
    assert [c.chunk_id for c in final.chunks] == [c.chunk_id for c in again.chunks]


def test_faiss_a_damaged_segment_is_detected(folder: Path) -> None:
    store = _new("faiss", folder)
    store.add(_chunks(range(2)), _vectors(10))
    store.save(folder, _manifest(store, "faiss"))
    store.add(_chunks(range(2, 3)), _vectors(5, seed=4))
    store.save(folder, _manifest(store, "faiss"))
    path = folder / "appended-1.jsonl"
    path.write_bytes(path.read_bytes().replace(b"testo", b"TESTO"))
    with pytest.raises(IndexCorruptError):
        _load("faiss", folder)


@pytest.mark.parametrize("backend", STORES)
def test_adding_an_article_updates_the_index_in_hand_not_a_copy_read_again(
    settings: Settings, home: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.search.indexer as indexer
    from rag import Assistant

    cfg = _settings(settings, backend)
    assistant = Assistant(cfg, embedder=FakeEmbedder())  # type: ignore[arg-type]
    assistant.index(progress=False)
    served = assistant.retriever
    before = len(served)
    reads: list[str] = []
    real_load = indexer.load_store
    monkeypatch.setattr(indexer, "load_store", lambda *a, **k: reads.append("read") or real_load(*a, **k))


    builds = _count_bm25_builds(monkeypatch)
    report = assistant.ingest([_one_article(home, 1)], progress=False)
    assert len(report.added) == 1 and reads == [] and builds == []  # the index in hand, updated; BM25 too
    assert len(served) == before  # the retriever answering meanwhile kept its own copy
    grown = assistant.retriever
    assert len(grown) > before and grown._bm25_index is not served._bm25_index  # type: ignore[attr-defined]
    # Its BM25 index was extended, not rebuilt, and searches as one built in one go.
    fresh = HybridRetriever(grown.store, FakeEmbedder(), cfg.retrieval)  # type: ignore[arg-type,attr-defined]
    for query in ("il prefetto ha chiuso la strada", "Putin Kim accordo"):
        assert [h.chunk.chunk_id for h in grown.search(query, k=5)] == [
            h.chunk.chunk_id for h in fresh.search(query, k=5)
        ]

    Assistant(cfg, embedder=FakeEmbedder()).ingest(  # type: ignore[arg-type]  # another process writes
        [_one_article(home, 7)], progress=False
    )
    assistant.ingest([_one_article(home, 8)], progress=False)
    assert reads  # saved by another process since: read again, its article kept
    fresh = _load(backend, cfg.index_dir)
    in_hand = assistant.retriever.store.chunks  # type: ignore[attr-defined]
    assert sorted(c.chunk_id for c in fresh.chunks) == sorted(c.chunk_id for c in in_hand)
    assert len({c.doc_id for c in fresh.chunks}) == 4


def _count_bm25_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one at every BM25 index built from texts (not copied or read back)."""
    from rag.search.lexical import BM25Index

    builds: list[int] = []
    real_init = BM25Index.__init__
    monkeypatch.setattr(BM25Index, "__init__", lambda self, *a, **k: builds.append(1) or real_init(self, *a, **k))
    return builds


def _one_article(home: Path, i: int) -> Path:
    path = home / f"extra-{i}.txt"
    path.write_text(f"date 2024-02 Altra notizia {i}\n\nIl prefetto {i} ha chiuso la strada {i}.\n", encoding="utf-8")
    return path


def _rows(store: VectorStore) -> int:
    found = store.client.query(store.collection, filter="", output_fields=["count(*)"])  # type: ignore[attr-defined]
    return int(found[0]["count(*)"])


def test_milvus_deletes_the_rows_of_removed_and_orphaned_articles(folder: Path) -> None:
    store = _new("milvus", folder)
    chunks, vectors = _chunks(range(4)), _vectors(20)
    store.add(chunks[:15], vectors[:15])
    store.save(folder, _manifest(store, "milvus"))
    store.add(chunks[15:], vectors[15:])  # d3, then killed: rows the manifest does not list
    assert _rows(store) == 20
    resumed = _load("milvus", folder)
    resumed.remove({"d0"})
    resumed.save(folder, _manifest(resumed, "milvus"))
    assert _rows(resumed) == 10 and len(_load("milvus", folder)) == 10


def test_milvus_the_index_in_use_keeps_answering_while_a_copy_is_changed_and_saved(folder: Path) -> None:
    served = _new("milvus", folder)
    chunks, vectors = _chunks(range(4)), _vectors(20)
    served.add(chunks, vectors)
    served.save(folder, _manifest(served, "milvus"))
    copy = served.snapshot()
    copy.remove({"d1"})
    copy.add(_chunks(range(4, 6)), _vectors(10, seed=5))
    copy.save(folder, _manifest(copy, "milvus"))
    queries = _vectors(3, seed=6)
    _, positions = served.search(queries, 20)  # its own passages, the copy's new ones unseen; d1's gone
    assert sorted(positions[0].tolist()) == [-1] * 5 + [0, 1, 2, 3, 4, *range(10, 20)]
    got = served.vectors_at(list(range(20)))  # d1's rows are gone: they score nothing, no error
    np.testing.assert_allclose(got[:5], vectors[:5], atol=1e-6)
    assert not got[5:10].any()
    assert len(_load("milvus", folder)) == 25


def test_milvus_a_rebuild_drops_only_the_collection_it_replaced_once_complete(tmp_path: Path) -> None:
    lite = tmp_path / "shared.db"  # one Milvus for two index folders, as a server is
    cfg = IndexSettings(backend="milvus", milvus_uri=str(lite))
    a, b = tmp_path / "a", tmp_path / "b"
    first = new_store("milvus", DIM, a, cfg)
    first.add(_chunks(range(2)), _vectors(10))
    first.save(a, _manifest(first, "milvus"))
    other = new_store("milvus", DIM, b, cfg)  # another folder's index, same collection prefix
    other.add(_chunks(range(1)), _vectors(5))
    other.save(b, _manifest(other, "milvus"))
    rebuilt = new_store("milvus", DIM, a, cfg)
    rebuilt.add(_chunks(range(1)), _vectors(5, seed=7))
    rebuilt.save(a, _manifest(rebuilt, "milvus"), final=False)  # a checkpoint: the old build stays
    assert rebuilt.client.has_collection(first.collection)  # type: ignore[attr-defined]
    rebuilt.add(_chunks(range(1, 3)), _vectors(10, seed=8))
    rebuilt.save(a, _manifest(rebuilt, "milvus"))
    client = rebuilt.client  # type: ignore[attr-defined]
    assert not client.has_collection(first.collection) and client.has_collection(other.collection)
    assert len(load_store("milvus", b, read_manifest(b), cfg)) == 5  # type: ignore[arg-type]
    assert read_manifest(a).retired == []  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", STORES)
def test_a_restart_reads_bm25_saved_beside_the_index_instead_of_analysing_every_passage(
    settings: Settings, home: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag import Assistant
    from rag.search.retrieval import BM25_FILE

    cfg = _settings(settings, backend)
    first = Assistant(cfg, embedder=FakeEmbedder())  # type: ignore[arg-type]
    first.index(progress=False)
    expected = [h.chunk.chunk_id for h in first.search("Putin Kim accordo", k=5)]
    first.retriever.saver.join()  # type: ignore[attr-defined]
    assert (cfg.index_dir / BM25_FILE).is_file()
    del first  # Milvus Lite: one process (here: one client) at a time

    builds = _count_bm25_builds(monkeypatch)
    restarted = Assistant(cfg, embedder=FakeEmbedder())  # type: ignore[arg-type]
    assert [h.chunk.chunk_id for h in restarted.search("Putin Kim accordo", k=5)] == expected and builds == []

    # An article added: the grown BM25 is saved, and the next start reads it.
    restarted.ingest([_one_article(home, 3)], progress=False)
    restarted.retriever.saver.join()  # type: ignore[attr-defined]
    grown = [h.chunk.chunk_id for h in restarted.search("il prefetto ha chiuso la strada", k=5)]
    del restarted
    again = Assistant(cfg, embedder=FakeEmbedder())  # type: ignore[arg-type]
    assert [h.chunk.chunk_id for h in again.search("il prefetto ha chiuso la strada", k=5)] == grown
    assert builds == []
    again.retriever.saver and again.retriever.saver.join()  # type: ignore[attr-defined]
    del again

    # Damaged: built again (the same results), and saved whole again.
    (cfg.index_dir / BM25_FILE).write_bytes(b"not a zip")
    damaged = Assistant(cfg, embedder=FakeEmbedder())  # type: ignore[arg-type]
    assert [h.chunk.chunk_id for h in damaged.search("il prefetto ha chiuso la strada", k=5)] == grown
    assert builds == [1]
    damaged.retriever.saver.join()  # type: ignore[attr-defined]
    assert (cfg.index_dir / BM25_FILE).read_bytes()[:2] == b"PK"
