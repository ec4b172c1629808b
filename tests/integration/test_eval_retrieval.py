"""Retrieval pieces the benchmark depends on, with hand-made texts (fast, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from evals.data import Paragraph, SquadQuestion
from evals.retrieval import PrecomputedEmbedder, subset
from rag.config import IndexSettings, RetrievalSettings
from rag.corpus.chunking import indexed_text
from rag.search.faiss_store import Store
from rag.search.lexical import BM25Index, analyze
from rag.search.retrieval import HybridRetriever
from rag.types import Chunk


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("dell' Europa", "it", ["europ"]),  # SQuAD-it's apostrophe quirk
        ("dell'Europa", "it", ["europ"]),
        ("l’accordo è stato firmato", "it", ["accord", "stat", "firm"]),
        ("Kim's portrait", "en", ["kim", "portrait"]),  # possessive, not an elision
        ("Che cosa ha offerto Kim?", "it", ["offert", "kim"]),  # question words are stop words
        ("Città e università", "it", ["citt", "univers"]),  # accents folded
        ("The treaty was signed in 1961", "en", ["treati", "sign", "1961"]),
    ],
)
def test_analyzer(text: str, lang: str, expected: list[str]) -> None:
    assert analyze(text, lang) == expected


def test_english_question_meets_italian_names_and_numbers() -> None:
    texts = [
        "Gli Stati Uniti accusano la Corea del Nord di fornire missili alla Russia nel 2024.",
        "La parata militare in Piazza Kim Il-sung ha sostituito il picchetto d'onore.",
        "Il trattato prevede assistenza militare reciproca in caso di aggressione.",
    ]
    index = BM25Index(texts, ["it"] * 3)
    top = index.scores("Who is sending missiles to Russia in 2024?").scores
    assert int(np.argmax(top)) == 0
    # English words that match nothing still count in the ideal: a low share.
    scores = index.scores("Who is sending missiles to Russia in 2024?")
    assert 0 < scores.normalized.max() < 1
    assert index.scores("Corea del Nord Russia missili").normalized.max() > scores.normalized.max()
    assert not index.scores("zzzz qqqq").scores.any()


def _chunk(i: int, text: str, title: str = "Articolo") -> Chunk:
    return Chunk(f"d{i}:0000", f"d{i}", 0, title, None, None, 0, len(text), text)


class _TableEmbedder:
    """Vectors from a fixed table: the dense side is fully controlled by the test."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {t: np.asarray(v, np.float32) / np.linalg.norm(v) for t, v in table.items()}
        self.dim = 3
        self.model_id = "table"

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return np.stack([self.table.get(t, np.asarray([0.0, 0.0, 1.0], np.float32)) for t in texts])


def _retriever(cfg: RetrievalSettings) -> HybridRetriever:
    texts = ["Il vertice si è svolto a Pyongyang.", "Il trattato è stato firmato da Putin e Kim."]
    table = {
        texts[0]: [1.0, 0.1, 0.0],
        texts[1]: [0.8, 0.6, 0.0],
        "Chi ha firmato il trattato?": [1.0, 0.35, 0.0],  # dense slightly prefers texts[0]
    }
    store = Store(3, IndexSettings())
    emb = _TableEmbedder(table)
    chunks = [_chunk(i, t) for i, t in enumerate(texts)]
    store.add(chunks, emb.encode_passages(texts))
    return HybridRetriever(store, emb, cfg)  # type: ignore[arg-type]


def test_fusion_modes_and_scores() -> None:
    q = "Chi ha firmato il trattato?"
    r = _retriever(RetrievalSettings(rerank_k=0))
    dense = r.search(q, k=2, mode="dense")
    assert dense[0].doc_id == "d0" and dense[0].score == dense[0].dense_score
    hybrid = r.search(q, k=2, mode="hybrid")
    assert hybrid[0].doc_id == "d1"  # BM25 ("firmato", "trattato") outweighs a small cosine gap
    assert hybrid[0].bm25_score and hybrid[1].bm25_score is None
    assert all(h.dense_score is not None for h in hybrid)
    rrf = _retriever(RetrievalSettings(fusion="rrf", bm25_weight=1.0)).search(q, k=2)
    # Dense ranks d0 then d1 (1/61, 1/62); BM25 finds only d1 (1/61): d1 comes first.
    assert [h.doc_id for h in rrf] == ["d1", "d0"]
    assert rrf[0].score == pytest.approx(1 / 61 + 1 / 62) and rrf[1].score == pytest.approx(1 / 61)
    assert [h.doc_id for h in r.search(q, k=2, mode="bm25")] == ["d1"]


def test_sentence_rescore_uses_cached_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _retriever(RetrievalSettings())
    embedded: list[str] = []
    encode = r.embedder.encode_passages
    monkeypatch.setattr(r.embedder, "encode_passages", lambda texts, **kw: embedded.extend(texts) or encode(texts))
    hits = r.search("Chi ha firmato il trattato?", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    assert len(embedded) == 2  # one sentence per chunk, embedded for the re-score
    (spans, vectors), = r.sentence_vectors([hits[0].chunk])
    assert spans and vectors.shape == (len(spans), 3)
    r.search("Chi ha firmato il trattato?", k=2)
    assert len(embedded) == 2  # the second search and the lookup reuse them


def test_sentence_cache_eviction_never_loses_what_the_call_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.search.retrieval

    monkeypatch.setattr(rag.search.retrieval, "SENTENCE_CACHE_CHUNKS", 1)
    r = _retriever(RetrievalSettings())
    first, second = r.store.chunks
    r.sentence_vectors([first])
    # first is cached and oldest; adding second evicts it within this very call.
    got = r.sentence_vectors([first, second])
    assert [len(spans) for spans, _ in got] == [1, 1]


def test_indexed_text_has_title_and_heading() -> None:
    c = Chunk("d:0", "d", 0, "Un accordo di mutua difesa", None, "Il ruolo degli USA", 0, 5, "Testo")
    assert indexed_text(c) == "Un accordo di mutua difesa\nIl ruolo degli USA\nTesto"


def test_precomputed_embedder_falls_back_to_the_model() -> None:
    class Model(_TableEmbedder):
        cfg = None
        calls = 0

        def encode_queries(self, texts: list[str]) -> np.ndarray:
            self.calls += 1
            return np.ones((len(texts), 3), np.float32)

    model = Model({})
    lookup = PrecomputedEmbedder(model)  # type: ignore[arg-type]
    lookup.add(["a"], np.zeros((1, 3), np.float32), queries=True)
    assert lookup.encode_queries(["a"]).sum() == 0 and model.calls == 0
    assert lookup.encode_queries(["b"]).sum() == 3 and model.calls == 1


def test_subset_keeps_gold_paragraphs() -> None:
    corpus = [Paragraph(f"p{i}", "T", f"testo {i}") for i in range(10)]
    qs = [SquadQuestion(f"q{i}", f"p{9 - i}", "T", "?", "?", ("a",), ("a",)) for i in range(3)]
    small, few = subset(corpus, qs, max_paragraphs=5, max_questions=2)
    assert [q.qid for q in few] == ["q0", "q1"]
    assert {"p9", "p8"} <= {p.pid for p in small} and len(small) == 5
    assert [p.pid for p in small] == sorted((p.pid for p in small), key=lambda s: int(s[1:]))


def test_answer_benchmark_assistant_knows_the_corpus_language(assistant) -> None:  # type: ignore[no-untyped-def]
    """Else English questions would never be translated in `rag eval answers`, unlike the product."""
    from rag import Assistant

    assert Assistant(assistant.settings, retriever=assistant.retriever).retriever.languages() == ["it"]
