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


def test_embedded_once_saved_and_read_back(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    vectors.embed(CHUNKS, emb.encode_passages)
    assert emb.calls == sum(len(sentence_spans(c.text)) for c in CHUNKS)
    vectors.save(CHUNKS)
    again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    got = again.get(CHUNKS)
    assert set(got) == {c.chunk_id for c in CHUNKS}
    for c in CHUNKS:
        spans, rows = got[c.chunk_id]
        assert spans == sentence_spans(c.text)
        np.testing.assert_array_equal(rows, emb.encode_passages([c.text[s:e] for s, e in spans]))
    assert not list((tmp_path / FOLDER).glob("*.pkl"))
    # Another model's vectors are never used.
    assert SentenceVectors(tmp_path, "other-model", emb.dim).get(CHUNKS) == {}


def test_a_damaged_segment_is_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    emb = FakeEmbedder()
    first = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    first.embed(CHUNKS[:3], emb.encode_passages)
    first.save(CHUNKS)
    first.embed(CHUNKS[3:], emb.encode_passages)
    first.save(CHUNKS)
    listing = json.loads((tmp_path / FOLDER / LIST).read_text())
    assert len(listing["segments"]) == 2
    damaged = tmp_path / FOLDER / sorted(listing["segments"])[0]
    damaged.write_bytes(damaged.read_bytes()[:-7] + b"garbage")
    with caplog.at_level(logging.WARNING):
        again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    assert "damaged" in caplog.text
    assert set(again.get(CHUNKS)) == {c.chunk_id for c in CHUNKS[3:]}
    (tmp_path / FOLDER / LIST).write_text("{not json")
    assert SentenceVectors(tmp_path, emb.model_id, emb.dim).get(CHUNKS) == {}  # unreadable: computed again


def test_many_segments_are_folded_into_one_of_the_indexed_passages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sv, "MAX_SEGMENTS", 3)
    emb = FakeEmbedder()
    vectors = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    for c in CHUNKS:
        vectors.embed([c], emb.encode_passages)
        vectors.save(CHUNKS[1:])  # the first passage is no longer indexed
    files = sorted(p.name for p in (tmp_path / FOLDER).iterdir())
    listing = json.loads((tmp_path / FOLDER / LIST).read_text())
    assert len(listing["segments"]) <= 3 and files == sorted([LIST, *listing["segments"]])
    again = SentenceVectors(tmp_path, emb.model_id, emb.dim)
    assert set(again.get(CHUNKS)) == {c.chunk_id for c in CHUNKS[1:]}


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
    assert not (off.index_dir / FOLDER).exists() or not list((off.index_dir / FOLDER).iterdir())
    again = plain.search("Chi ha firmato l'accordo di mutua difesa?")
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
    assert new and isinstance(retriever, HybridRetriever) and retriever.sentences is not None
    assert set(retriever.sentences.get(new)) == {c.chunk_id for c in new} and served.calls == 0


def test_sync_without_sentence_vectors_writes_none(home: Path) -> None:
    settings = make_settings(home, index={"sentence_vectors": False})
    sync_index(settings, FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    assert not (settings.index_dir / FOLDER).exists()


def test_two_writers_one_after_the_other_keep_each_others_segments(tmp_path: Path) -> None:
    """The page (an upload) and `rag ingest` each save, under the index's write lock in turn:
    neither overwrites the other's segment nor drops it from the listing."""
    emb = FakeEmbedder()
    page, ingest = (SentenceVectors(tmp_path, emb.model_id, emb.dim) for _ in range(2))
    page.embed(CHUNKS[:2], emb.encode_passages)
    page.save(CHUNKS)
    ingest.embed(CHUNKS[2:4], emb.encode_passages)
    ingest.save(CHUNKS)
    page.embed(CHUNKS[4:], emb.encode_passages)
    page.save(CHUNKS)
    assert set(SentenceVectors(tmp_path, emb.model_id, emb.dim).get(CHUNKS)) == {c.chunk_id for c in CHUNKS}
