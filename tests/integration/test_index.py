"""Index persistence and staleness, with a deterministic fake embedder (fast)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.config import IndexSettings, Settings
from rag.errors import IndexCorruptError
from rag.search.faiss_store import CHUNKS, VECTORS, Store
from rag.search.indexer import sync_index
from rag.search.stores import MANIFEST, Manifest, read_manifest
from rag.types import Chunk
from tests.conftest import SEED, make_settings


class FakeEmbedder:
    def __init__(self, model_id: str = "fake-model", dim: int = 16) -> None:
        self.model_id, self.dim, self.calls = model_id, dim, 0

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += len(texts)
        self.texts = list(texts)
        rows = [np.frombuffer(hashlib.sha512(t.encode()).digest()[: self.dim * 4], dtype=np.uint32) for t in texts]
        v = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    encode_queries = encode_passages


def test_build_load_and_no_pickle(settings: Settings) -> None:
    emb = FakeEmbedder()
    store, report = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert report.action == "rebuilt" and report.chunks == len(store) > 3
    files = sorted(p.name for p in settings.index_dir.iterdir())
    assert files == sorted([CHUNKS, MANIFEST, VECTORS, ".write.lock"])  # the lock file is empty
    assert (settings.index_dir / ".write.lock").stat().st_size == 0
    assert not list(settings.index_dir.glob("*.pkl"))
    manifest = json.loads((settings.index_dir / MANIFEST).read_text())
    assert manifest["embedding_model"] == "fake-model" and manifest["dim"] == 16
    assert manifest["chunking"]["chunk_tokens"] == settings.chunking.chunk_tokens
    assert manifest["chunking"]["chunker_version"] >= 1
    _, again = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert again.action == "loaded" and again.embedded_chunks == 0


def test_vectors_embed_the_title_and_heading(settings: Settings) -> None:
    emb = FakeEmbedder()
    store, _ = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert all(t.startswith("Un accordo di mutua difesa\n") for t in emb.texts)
    headed = [t for t, c in zip(emb.texts, store.chunks, strict=True) if c.heading]
    assert headed and all("Il ruolo degli USA e le parole di Kim\n" in t for t in headed)
    # Citations still point into the article text itself.
    assert all(c.text in t for t, c in zip(emb.texts, store.chunks, strict=True))


def test_model_and_chunking_changes_rebuild(
    settings: Settings, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    _, r = sync_index(settings, FakeEmbedder("other-model"), progress=False)  # type: ignore[arg-type]
    assert r.action == "rebuilt" and "embedding model changed" in (r.reason or "")
    assert "Rebuilding the index once: embedding model changed" in caplog.text  # said, once
    assert read_manifest(settings.index_dir).embedding_model == "other-model"  # type: ignore[union-attr]
    _, r = sync_index(settings, FakeEmbedder("other-model"), progress=False)  # type: ignore[arg-type]
    assert r.action == "loaded" and caplog.text.count("Rebuilding") == 1
    s2 = make_settings(home, chunking={"chunk_tokens": 60, "overlap_tokens": 10})
    _, r = sync_index(s2, FakeEmbedder("other-model"), progress=False)  # type: ignore[arg-type]
    assert r.action == "rebuilt" and r.reason == "chunking settings changed"


def test_new_document_is_embedded_incrementally(settings: Settings, home: Path) -> None:
    emb = FakeEmbedder()
    store, _ = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    before = emb.calls
    (home / "docs_store" / "nuovo.txt").write_text("Nuovo articolo\n\nUn testo breve su un altro tema.")
    store2, r = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert r.action == "updated" and r.embedded_chunks == emb.calls - before <= 2
    assert len(store2) == len(store) + r.embedded_chunks
    # vectors of old chunks are kept exactly
    old = list(range(len(store)))
    np.testing.assert_array_equal(store2.vectors_at(old), store.vectors_at(old))


def test_removed_document_is_dropped(settings: Settings, home: Path) -> None:
    (home / "docs_store" / "nuovo.txt").write_text("Nuovo articolo\n\nUn testo breve su un altro tema.")
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    (home / "docs_store" / "nuovo.txt").unlink()
    store, r = sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert r.reason == "documents changed"
    assert {c.doc_id for c in store.chunks} == {store.chunks[0].doc_id}


@pytest.mark.parametrize("victim", [CHUNKS, VECTORS, MANIFEST])
def test_corrupt_index_is_detected_and_rebuilt(settings: Settings, victim: str) -> None:
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    path = settings.index_dir / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    if victim != MANIFEST:
        manifest = read_manifest(settings.index_dir)
        assert manifest is not None
        with pytest.raises(IndexCorruptError):
            Store.load(settings.index_dir, manifest, IndexSettings())
    store, r = sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert r.action == "rebuilt" and len(store) > 3
    assert (settings.docs_dir / SEED.name).read_bytes() == SEED.read_bytes()


def test_bad_file_in_store_is_skipped_not_fatal(settings: Settings, home: Path) -> None:
    # Named to sort first and last: a bad file must not hide the articles after it.
    (home / "docs_store" / "0-rotto.txt").write_bytes(b"\xff\xfe\x00\x00binary")
    (home / "docs_store" / "zz-altro.txt").write_text("date 2024-07 Altro articolo\n\nUn testo breve su Roma.\n")
    store, r = sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert len(r.skipped) == 1 and "binary" in r.skipped[0] and "0-rotto.txt" in r.skipped[0]
    assert r.documents == 2
    assert {c.title for c in store.chunks} == {"Un accordo di mutua difesa", "Altro articolo"}


def test_empty_store(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    shutil.rmtree(s.docs_dir)
    store, r = sync_index(s, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert len(store) == 0 and r.documents == 0


def _no_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(text: str) -> str:
        raise AssertionError("language detected again")

    monkeypatch.setattr("rag.corpus.documents.detect_language", fail)
    monkeypatch.setattr("rag.search.lexical.detect_language", fail)


def test_reopening_a_store_does_not_detect_languages_again(
    settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Language detection was most of the time a restart took (about 10 ms an article)."""
    from rag.search.retrieval import HybridRetriever

    emb = FakeEmbedder()
    store, _ = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert {c.language for c in store.chunks} == {"it"}
    _no_detection(monkeypatch)
    store, report = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert report.action == "loaded"
    HybridRetriever(store, emb, settings.retrieval)  # type: ignore[arg-type]  # BM25 uses the chunks' languages


def test_index_from_before_languages_were_recorded_still_loads_and_is_upgraded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = FakeEmbedder()
    sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    path = settings.index_dir / MANIFEST
    old = json.loads(path.read_text())
    del old["languages"]
    path.write_text(json.dumps(old))
    store, report = sync_index(settings, emb, progress=False)  # type: ignore[arg-type]
    assert report.action == "loaded" and emb.calls == len(store)  # nothing embedded again
    assert list(json.loads(path.read_text())["languages"].values()) == ["it"]
    _no_detection(monkeypatch)
    assert sync_index(settings, emb, progress=False)[1].action == "loaded"  # type: ignore[arg-type]


def _chunk(chunk_id: str, text: str) -> Chunk:
    return Chunk(chunk_id, "d", 0, "t", None, None, 0, len(text), text)


def test_line_separators_in_text_do_not_damage_the_index(tmp_path: Path) -> None:
    store = Store(16, IndexSettings())
    texts = ["Prima riga.\u2028Seconda riga", "a\x85b", "c\u2029d"]
    chunks = [_chunk(f"c{i}", t) for i, t in enumerate(texts)]
    store.add(chunks, FakeEmbedder().encode_passages(texts))
    manifest = Manifest(embedding_model="fake-model", dim=16, chunking={})
    store.save(tmp_path, manifest)
    loaded = Store.load(tmp_path, read_manifest(tmp_path), IndexSettings())
    assert [c.text for c in loaded.chunks] == texts


def test_vectors_saved_without_their_chunks_are_detected(tmp_path: Path) -> None:
    # A save cut short after the vectors file (written first): same count, other vectors.
    emb = FakeEmbedder()
    store = Store(16, IndexSettings())
    texts = ["uno", "due"]
    chunks = [_chunk(t, t) for t in texts]
    store.add(chunks, emb.encode_passages(texts))
    store.save(tmp_path, Manifest(embedding_model="fake-model", dim=16, chunking={}))
    other = Store(16, IndexSettings())
    other.add(chunks, emb.encode_passages(["tre", "quattro"]))
    (tmp_path / VECTORS).write_bytes(faiss.serialize_index(other.index).tobytes())
    with pytest.raises(IndexCorruptError, match="checksum"):
        Store.load(tmp_path, read_manifest(tmp_path), IndexSettings())


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("chunking", "chunker_version", "chunking settings changed"), ("format", 1, "index format changed")],
)
def test_index_from_older_code_is_rebuilt_once(settings: Settings, field: str, value: object, reason: str) -> None:
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    path = settings.index_dir / MANIFEST
    manifest = json.loads(path.read_text())
    if field == "chunking":
        manifest["chunking"]["chunker_version"] -= 1  # built by the previous chunker
    else:
        manifest["format"] = value
    path.write_text(json.dumps(manifest))
    _, r = sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert r.action == "rebuilt" and r.reason == reason
    _, again = sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert again.action == "loaded"


def _many_articles(home: Path, n: int) -> None:
    for i in range(n):
        (home / "docs_store" / f"notizia-{i:03d}.txt").write_text(
            f"date 2024-0{1 + i % 9} Notizia {i}\n\nIl consiglio comunale numero {i} ha approvato il bilancio. "
            f"Il sindaco {i} ha parlato ai cittadini della piazza {i}.\n",
            encoding="utf-8",
        )


class Interrupted(Exception):
    pass


def test_an_interrupted_indexing_resumes_where_it_stopped(
    settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.search.indexer as indexer

    monkeypatch.setattr(indexer, "EMBED_BATCH", 4)  # many small groups
    _many_articles(home, 30)
    cfg = settings.model_copy(update={"index": settings.index.model_copy(update={"checkpoint_s": 0.0})})

    class Failing(FakeEmbedder):
        def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            if self.calls >= 20:  # like Ctrl-C half-way through
                raise Interrupted
            return super().encode_passages(texts)

    with pytest.raises(Interrupted):
        sync_index(cfg, Failing(), progress=False)  # type: ignore[arg-type]
    saved = read_manifest(cfg.index_dir)
    assert saved is not None and 0 < len(saved.documents) < 31  # the articles done so far, saved
    done = len(saved.documents)

    emb = FakeEmbedder()
    store, report = sync_index(cfg, emb, progress=False)  # type: ignore[arg-type]
    assert report.action == "updated" and 0 < report.embedded_chunks == emb.calls
    fresh_settings = cfg.model_copy(update={"index_dir": home / "fresh-index"})
    fresh, full = sync_index(fresh_settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    # Nothing embedded twice, nothing lost: the resumed index holds exactly what a build in one go does.
    kept = sum(1 for c in store.chunks if c.doc_id in saved.documents)
    assert kept > 0 and report.embedded_chunks == len(store) - kept
    assert len(store) == len(fresh) == full.embedded_chunks and len(report.skipped) == 0
    assert {c.chunk_id for c in store.chunks} == {c.chunk_id for c in fresh.chunks} and done < 31
    by_id = {c.chunk_id: i for i, c in enumerate(fresh.chunks)}
    order = [by_id[c.chunk_id] for c in store.chunks]
    np.testing.assert_allclose(store.vectors_at(list(range(len(store)))), fresh.vectors_at(order), atol=1e-6)


def test_a_serving_process_never_waits_for_a_writer_nor_embeds_its_articles(
    settings: Settings, home: Path
) -> None:
    import fcntl

    from rag import Assistant

    served = FakeEmbedder()
    assistant = Assistant(settings, embedder=served)  # type: ignore[arg-type]
    before = len(assistant.retriever)
    _many_articles(home, 2)
    Assistant(settings, embedder=FakeEmbedder()).index()  # type: ignore[arg-type]  # another process's ingest
    calls = served.calls
    with open(settings.index_dir / ".write.lock", "a") as lock:  # and it is writing again
        fcntl.flock(lock, fcntl.LOCK_EX)
        after = len(assistant.retriever)  # at once: the index as that process saved it
    assert after > before and served.calls == calls  # nothing embedded by the serving process


def test_an_ingest_killed_half_way_is_not_finished_inside_a_question(
    settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.search.indexer as indexer
    from rag import Assistant

    served = FakeEmbedder()
    assistant = Assistant(settings, embedder=served)  # type: ignore[arg-type]
    before = len(assistant.retriever)
    monkeypatch.setattr(indexer, "EMBED_BATCH", 2)
    _many_articles(home, 10)
    cfg = settings.model_copy(update={"index": settings.index.model_copy(update={"checkpoint_s": 0.0})})

    class Killed(FakeEmbedder):
        def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            if self.calls >= 6:
                raise Interrupted
            return super().encode_passages(texts)

    with pytest.raises(Interrupted):
        sync_index(cfg, Killed(), progress=False)  # type: ignore[arg-type]
    calls = served.calls
    partial = len(assistant.retriever)  # the articles the killed ingest saved, no more
    assert before < partial < before + 10 and served.calls == calls
    # `rag index` (or the next `rag ingest`) finishes the job.
    report = Assistant(settings, embedder=FakeEmbedder()).index()  # type: ignore[arg-type]
    assert report.action == "updated" and report.embedded_chunks == report.chunks - partial


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int, per_doc: int = 5) -> list[Chunk]:
    return [Chunk(f"d{i // per_doc}:{i}", f"d{i // per_doc}", i, "T", None, None, 0, 1, "x") for i in range(n)]


def test_the_store_turns_approximate_past_its_size_and_keeps_every_vector(tmp_path: Path) -> None:
    cfg = IndexSettings(ann_from=300, ann_m=16, ann_ef_search=64)
    vectors = _vectors(600)
    store = Store(32, cfg)
    store.add(_chunks(600)[:250], vectors[:250])
    assert not store.approximate  # small: exact
    store.add(_chunks(600)[250:], vectors[250:])
    assert store.approximate and len(store) == store.index.ntotal == 600
    np.testing.assert_array_equal(store.vectors_at([0, 299, 599]), vectors[[0, 299, 599]])
    # Approximate, but finds what exact search finds (recall@10 against exact).
    exact = Store(32, IndexSettings())
    exact.add(_chunks(600), vectors)
    queries = _vectors(50, seed=1)
    _, got = store.search(queries, 10)
    _, want = exact.search(queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= 0.95, recall
    # Removing articles rebuilds the graph from the vectors kept; below the size, exact again.
    store.remove({f"d{i}" for i in range(10)})  # 50 passages
    assert store.approximate and len(store) == 550
    np.testing.assert_array_equal(store.vectors_at([0]), vectors[[50]])
    store.remove({f"d{i}" for i in range(10, 62)})  # 260 more
    assert not store.approximate and len(store) == store.index.ntotal == 290
    np.testing.assert_array_equal(store.vectors_at([0]), vectors[[310]])


def test_an_approximate_index_is_saved_and_opened_with_this_processs_settings(tmp_path: Path) -> None:
    store = Store(32, IndexSettings(ann_from=100))
    store.add(_chunks(200), _vectors(200))
    manifest = Manifest(embedding_model="m", dim=32, chunking={})
    store.save(tmp_path, manifest)
    loaded = Store.load(tmp_path, read_manifest(tmp_path), IndexSettings(ann_from=100, ann_ef_search=200))
    assert loaded.approximate and loaded.index.hnsw.efSearch == 200 and len(loaded) == 200
    # Other settings need no new embedding: the index is converted as it is opened.
    exact = Store.load(tmp_path, read_manifest(tmp_path), IndexSettings())
    assert not exact.approximate and exact.index.ntotal == 200
    np.testing.assert_array_equal(exact.vectors_at([7]), store.vectors_at([7]))


def test_an_index_converted_at_open_is_saved_once(settings: Settings) -> None:
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]  # exact
    ann = settings.model_copy(update={"index": IndexSettings(ann_from=1)})
    store, report = sync_index(ann, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert report.action == "loaded" and report.embedded_chunks == 0 and store.approximate  # type: ignore[attr-defined]
    stamp = (settings.index_dir / VECTORS).stat().st_mtime_ns
    again, _ = sync_index(ann, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert again.approximate and not again.converted  # type: ignore[attr-defined]  # saved as a graph: not rebuilt
    assert (settings.index_dir / VECTORS).stat().st_mtime_ns == stamp
