"""Sentence vectors embedded at ingest and saved beside the index (fake embedder, fast)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.config import Settings
from rag.search import sentence_vectors as sv
from rag.search.indexer import sync_index
from rag.search.retrieval import HybridRetriever
from rag.search.sentence_vectors import FOLDER, LIST, SentenceVectors
from rag.text.sentences import sentence_spans
from rag.types import Chunk
from tests.conftest import make_settings
from tests.integration.test_index import FakeEmbedder


def _chunk(n: int, text: str) -> Chunk:
    return Chunk(f"d:{n:04d}", "d", n, "T", None, None, 0, len(text), text, language="it")


CHUNKS = [_chunk(i, f"Frase uno del passo {i}. Frase due, numero {i}. Tre.") for i in range(6)]


def _filed(vectors: SentenceVectors, chunks: list[Chunk]) -> set[str]:
    """The chunk ids whose sentence vectors are filed (nothing embedded to find out)."""
    return {c.chunk_id for c in chunks} - {c.chunk_id for c in vectors.missing(chunks)}


def _never(texts: list[str]) -> np.ndarray:
    raise AssertionError(f"embedded {len(texts)} sentences that should have been read")


def test_embedded_once_saved_and_read_back(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    vectors.lookup(CHUNKS, emb.encode_passages)
    assert emb.calls == sum(len(sentence_spans(c.text)) for c in CHUNKS)
    vectors.save(CHUNKS)
    again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    got = again.lookup(CHUNKS, _never)
    for c, (spans, rows) in zip(CHUNKS, got, strict=True):
        assert spans == sentence_spans(c.text)
        np.testing.assert_array_equal(rows, emb.encode_passages([c.text[s:e] for s, e in spans]))
    assert not list((tmp_path / FOLDER).glob("*.pkl"))
    # Another model's vectors are never used.
    assert _filed(SentenceVectors(tmp_path, "other-model", emb.dim), CHUNKS) == set()


def test_every_key_comes_back_also_one_ending_in_a_zero_byte(tmp_path: Path) -> None:
    """NumPy's fixed-size byte strings drop trailing zeros: keys are stored as raw bytes."""
    chunks = [_chunk(i, f"Frase del passo {i}. Altra frase.") for i in range(600)]
    assert any(sv._key(c.text, sentence_spans(c.text)).endswith(b"\0") for c in chunks)
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    vectors.lookup(chunks, emb.encode_passages)
    vectors.save(chunks)
    assert SentenceVectors(tmp_path, emb.model_id, emb.dim).missing(chunks) == []


def test_another_sentence_split_is_embedded_again_never_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = FakeEmbedder()
    saved = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    monkeypatch.setattr(sv, "sentence_spans", lambda text: [(0, len(text))])  # an older splitter: one sentence
    saved.lookup(CHUNKS, emb.encode_passages)
    saved.save(CHUNKS)
    monkeypatch.undo()
    retriever_side = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    assert retriever_side.missing(CHUNKS) == CHUNKS
    got = retriever_side.lookup(CHUNKS, emb.encode_passages)
    assert [len(rows) for _, rows in got] == [len(sentence_spans(c.text)) for c in CHUNKS] and len(got[0][1]) > 1


def test_a_damaged_segment_is_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    emb = FakeEmbedder()
    first = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    first.lookup(CHUNKS[:3], emb.encode_passages)
    first.save(CHUNKS)
    first.lookup(CHUNKS[3:], emb.encode_passages)
    first.save(CHUNKS)
    listing = json.loads((tmp_path / FOLDER / LIST).read_text())
    assert len(listing["segments"]) == 2
    damaged = tmp_path / FOLDER / sorted(listing["segments"])[0]
    damaged.write_bytes(damaged.read_bytes()[:-7] + b"garbage")
    with caplog.at_level(logging.WARNING):
        again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    assert "damaged" in caplog.text
    assert _filed(again, CHUNKS) == {c.chunk_id for c in CHUNKS[3:]}
    for listing in ("{not json", "null", "[]", '{"model": "fake-model", "dim": 16, "segments": 3}'):
        (tmp_path / FOLDER / LIST).write_text(listing)
        assert _filed(SentenceVectors(tmp_path, emb.model_id, emb.dim), CHUNKS) == set()  # computed again


def test_many_segments_are_folded_into_one_of_the_indexed_passages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sv, "MAX_SEGMENTS", 3)
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "seg-99.npz").write_bytes(b"another model's, no longer listed")
    for c in CHUNKS:
        vectors.lookup([c], emb.encode_passages)
        vectors.save(CHUNKS[1:])  # the first passage is no longer indexed
    files = sorted(p.name for p in (tmp_path / FOLDER).iterdir())
    listing = json.loads((tmp_path / FOLDER / LIST).read_text())
    assert len(listing["segments"]) <= 3 and files == sorted([LIST, *listing["segments"]])
    again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    assert _filed(again, CHUNKS) == {c.chunk_id for c in CHUNKS[1:]}


def test_ingest_embeds_sentences_and_a_search_embeds_none(settings: Settings, home: Path) -> None:
    emb = FakeEmbedder()
    assistant = Assistant(settings, embedder=emb)  # type: ignore[arg-type]
    assistant.index(progress=False)
    assert (settings.index_dir / FOLDER / LIST).exists()
    # A new process: the sentences come from disk, only the question is embedded.
    served = FakeEmbedder()
    fresh = Assistant(settings, embedder=served)  # type: ignore[arg-type]
    retriever = fresh.retriever
    assert isinstance(retriever, HybridRetriever) and retriever.sentences is not None
    served.calls = 0
    hits = fresh.search("Chi ha firmato l'accordo di mutua difesa?")
    assert hits and served.calls == 1
    # The same ranking as with sentence vectors computed at question time.
    off = make_settings(home / "off", index={"sentence_vectors": False})
    (home / "off" / "docs_store").mkdir(parents=True, exist_ok=True)
    for path in (home / "docs_store").iterdir():
        (home / "off" / "docs_store" / path.name).write_bytes(path.read_bytes())
    plain = Assistant(off, embedder=FakeEmbedder())  # type: ignore[arg-type]
    again = plain.search("Chi ha firmato l'accordo di mutua difesa?")
    assert (off.index_dir / "manifest.json").exists() and not (off.index_dir / FOLDER).exists()
    ranked = [(h.chunk.chunk_id, round(h.score, 6)) for h in hits]
    assert [(h.chunk.chunk_id, round(h.score, 6)) for h in again] == ranked


def test_a_serving_process_reads_the_sentences_another_process_saved(settings: Settings, home: Path) -> None:
    served = FakeEmbedder()
    assistant = Assistant(settings, embedder=served)  # type: ignore[arg-type]
    assert len(assistant.retriever)
    (home / "docs_store" / "nuovo.txt").write_text("Nuovo articolo\n\nLa diga sul fiume ha ceduto. Nessun ferito.")
    Assistant(settings, embedder=FakeEmbedder()).index(progress=False)  # type: ignore[arg-type]  # `rag ingest`
    retriever = assistant.retriever  # reopened as the writer saved it
    new = [c for c in retriever.store.chunks if "diga" in c.text]
    served.calls = 0
    assert new and isinstance(retriever, HybridRetriever)
    assert [len(v) for _, v in retriever.sentence_vectors(new)] == [len(sentence_spans(c.text)) for c in new]
    assert served.calls == 0  # read as the writer saved them, nothing embedded


def test_an_index_from_before_gets_its_sentence_vectors_from_rag_index(settings: Settings) -> None:
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]  # no sentences: older code
    assert not (settings.index_dir / FOLDER).exists()
    emb = FakeEmbedder()
    Assistant(settings, embedder=emb).index(progress=False)  # type: ignore[arg-type]  # `rag index`, `rag setup`
    assert emb.calls > 0 and (settings.index_dir / FOLDER / LIST).exists()
    served = FakeEmbedder()
    fresh = Assistant(settings, embedder=served)  # type: ignore[arg-type]
    chunks = fresh.retriever.store.chunks  # type: ignore[attr-defined]
    served.calls = 0
    fresh.retriever.sentence_vectors(chunks)  # type: ignore[attr-defined]
    assert served.calls == 0


def test_two_writers_one_after_the_other_keep_each_others_segments(tmp_path: Path) -> None:
    """The page (an upload) and `rag ingest` each save, under the index's write lock in turn:
    neither overwrites the other's segment nor drops it from the listing."""
    emb = FakeEmbedder()
    page, ingest = (SentenceVectors(tmp_path, emb.model_id, emb.dim) for _ in range(2))
    page.lookup(CHUNKS[:2], emb.encode_passages)
    page.save(CHUNKS)
    ingest.lookup(CHUNKS[2:4], emb.encode_passages)
    ingest.save(CHUNKS)
    page.lookup(CHUNKS[4:], emb.encode_passages)
    page.save(CHUNKS)
    assert _filed(SentenceVectors(tmp_path, emb.model_id, emb.dim), CHUNKS) == {c.chunk_id for c in CHUNKS}


def test_a_reader_of_another_writers_fold_holds_no_copy_of_what_it_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sv, "MAX_SEGMENTS", 2)
    emb = FakeEmbedder()
    writer = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    writer.lookup(CHUNKS[:2], emb.encode_passages)
    writer.save(CHUNKS)
    reader = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    before = {k: id(v) for k, v in reader._rows.items()}
    for c in CHUNKS[2:]:
        writer.lookup([c], emb.encode_passages)
        writer.save(CHUNKS)  # folds from the third save on
    reader.refresh()
    assert _filed(reader, CHUNKS) == {c.chunk_id for c in CHUNKS}
    assert all(id(reader._rows[k]) == v for k, v in before.items())  # the rows it had are kept, not re-read
    # Rows read from a fold are copies: the fold's whole array is not kept alive by them.
    assert all(rows.base is None or rows.base.size <= rows.size for k, rows in reader._rows.items() if k not in before)


def test_a_failed_save_keeps_the_vectors_for_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    vectors.lookup(CHUNKS, emb.encode_passages)

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sv, "atomic_write", full)
    vectors.save(CHUNKS)  # logged, not raised
    monkeypatch.undo()
    vectors.save(CHUNKS)
    assert _filed(SentenceVectors(tmp_path, emb.model_id, emb.dim), CHUNKS) == {c.chunk_id for c in CHUNKS}


def test_vectors_a_process_never_saves_are_a_bounded_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page over an index saved without them (or on another machine than a Milvus server's
    writer) computes them per question: it keeps the most recent, not every one."""
    monkeypatch.setattr(sv, "MAX_UNSAVED", 3)
    emb = FakeEmbedder()
    vectors = SentenceVectors(None, emb.model_id, emb.dim)
    for c in CHUNKS:
        assert len(vectors.lookup([c], emb.encode_passages)[0][1]) == len(sentence_spans(c.text))
    assert _filed(vectors, CHUNKS) == {c.chunk_id for c in CHUNKS[-3:]}
