"""The BM25 index: Lucene's scores (as bm25s computes them), also after texts are added in place."""

from __future__ import annotations

import random

import bm25s
import numpy as np

from rag.search.lexical import BM25Index, analyze

WORDS = (
    "accordo difesa Putin Kim Pyongyang Mosca trattato firmato sanzioni guerra Ucraina soldati "
    "consiglio comunale sindaco bilancio approvato piazza cittadini prefetto strada chiusa treaty signed"
).split()


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def _reference(texts: list[str], query_terms: list[str], k1: float, b: float) -> np.ndarray:
    corpus = [analyze(t, "it") or ["\u2205"] for t in texts]
    ref = bm25s.BM25(k1=k1, b=b)
    ref.index(corpus, show_progress=False)
    vocab = {t for doc in corpus for t in doc}
    known = [t for t in query_terms if t in vocab]
    return np.asarray(ref.get_scores(known), dtype=np.float32) if known else np.zeros(len(texts), np.float32)


def test_scores_are_lucene_bm25_as_bm25s_computes_them() -> None:
    texts = _texts(300, seed=1)
    index = BM25Index(texts, ["it"] * len(texts), k1=0.9, b=0.4)
    for query in ("accordo firmato da Putin", "sindaco e bilancio", "Ucraina", "nulla di tutto ciò"):
        got = index.scores(query, "it")
        np.testing.assert_allclose(got.scores, _reference(texts, got.terms, 0.9, 0.4), rtol=1e-5, atol=1e-6)
        assert got.ideal == sum(index.idf(t) for t in got.terms)


def test_texts_added_in_place_score_as_an_index_built_in_one_go() -> None:
    texts = _texts(400, seed=2)
    grown = BM25Index(texts[:300], ["it"] * 300, k1=0.9, b=0.4)
    for start in range(300, 400, 7):  # small additions (kept apart), then merged
        grown.extend(texts[start : start + 7], ["it"] * len(texts[start : start + 7]))
    whole = BM25Index(texts, ["it"] * 400, k1=0.9, b=0.4)
    assert grown.size == whole.size == 400
    for query in ("accordo firmato da Putin", "prefetto strada chiusa", "treaty signed"):
        np.testing.assert_allclose(grown.scores(query).scores, whole.scores(query).scores, rtol=1e-6)
        np.testing.assert_allclose(grown.scores(query).scores, _reference(texts, grown.scores(query).terms, 0.9, 0.4),
                                   rtol=1e-5, atol=1e-6)


def test_an_empty_index_and_unknown_words_score_nothing() -> None:
    empty = BM25Index([])
    assert empty.scores("Putin").scores.shape == (0,)
    index = BM25Index(["Putin a Pyongyang"], ["it"])
    got = index.scores("carbonara")
    assert not got.scores.any() and got.ideal > 0


def test_a_saved_index_reads_back_scoring_the_same_and_refuses_another_key_or_damage() -> None:
    texts = [" ".join(random.Random(i).choices(["accordo", "firmato", "Putin", "sanzioni", "Kim", "difesa"], k=8))
             for i in range(40)]
    index = BM25Index(texts[:39], ["it"] * 39)
    index.extend(texts[39:], ["it"])  # additions not merged yet are saved too
    raw = index.to_bytes("passages-1")
    again = BM25Index.from_bytes(raw, "passages-1", 1.5, 0.75)
    assert again is not None and index._added  # saving did not change the index saved
    for query in ("accordo firmato", "sanzioni Kim", "difesa"):
        assert np.array_equal(index.scores(query).scores, again.scores(query).scores)
    again.extend(["nuovo accordo firmato"], ["it"])  # and it grows in place like any other
    assert again.size == 41 and again.scores("nuovo").scores[40] > 0
    assert BM25Index.from_bytes(raw, "passages-2", 1.5, 0.75) is None  # built from other passages
    assert BM25Index.from_bytes(raw, "passages-1", 1.2, 0.75) is None  # other parameters
    assert BM25Index.from_bytes(raw[: len(raw) // 2], "passages-1", 1.5, 0.75) is None  # cut short
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    assert BM25Index.from_bytes(bytes(flipped), "passages-1", 1.5, 0.75) is None  # damaged


def test_a_crafted_saved_index_is_refused_not_searched() -> None:
    import io

    index = BM25Index(["accordo firmato a Pyongyang", "sanzioni contro la Russia", "accordo"], ["it"] * 3)
    raw = index.to_bytes("k")
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        good = {name: z[name] for name in z.files}

    def tampered(**changes: object) -> bytes:
        out = io.BytesIO()
        np.savez(out, **{**good, **changes})
        return out.getvalue()

    assert BM25Index.from_bytes(tampered(), "k", 1.5, 0.75) is not None  # re-saved untouched: still good
    for bad in (
        tampered(df=-good["df"]),  # negative document frequencies (log of a negative)
        tampered(indices=good["indices"] + 100),  # postings past the last passage
        tampered(indptr=good["indptr"][::-1].copy()),  # not increasing
        tampered(data=good["data"].astype(str)),  # not numbers
        tampered(vocab=np.frombuffer(b"accord\naccord", np.uint8)),  # a term twice
        tampered(lengths=np.full_like(good["lengths"], np.nan)),
    ):
        assert BM25Index.from_bytes(bad, "k", 1.5, 0.75) is None
    plain = io.BytesIO()
    np.save(plain, np.arange(3))  # an .npy, not an .npz
    assert BM25Index.from_bytes(plain.getvalue(), "k", 1.5, 0.75) is None
