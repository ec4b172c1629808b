"""BM25 keyword search with Italian/English analysis, over an index that grows in place.

The scores are Lucene's BM25 (as bm25s computes them): for each query term,
idf · tf / (tf + k1 · (1 − b + b · length / average length)), idf = ln(1 + (N − df + 0.5) /
(df + 0.5)). They are computed at query time from the postings of the query's terms, so
adding passages appends their postings instead of rebuilding the index (adding an article
to 70,000 passages costs that article, not 7 s).

The analyzer lower-cases, splits at apostrophes (Italian elisions "dell'Europa",
SQuAD-it's "dell' Europa", English "Kim's"), drops Italian and English stop
words (bm25s' Snowball lists plus question words and elided forms), stems with
the Snowball stemmer of the language and folds accents, so "accordi"/"accordo"
and "signed"/"signing" meet.

Queries are stemmed with both the Italian and the English stemmer (the union
of the terms): a question then matches texts of either language, and an
English question about Italian articles still meets their names, numbers and
untranslated words ("Russia" -> "russ" like the Italian text), while its
English words simply find nothing. ``QueryScores.normalized`` divides by the
query's total IDF, so such a question gets a low lexical score instead of a
confident wrong one. (On SQuAD-it dev the union beats stemming the question
in its own language: BM25 en->it recall@5 0.54 vs 0.47, Italian unchanged.)
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_ITALIAN
from scipy import sparse

from ..text.language import detect_language

ANALYZED = ("it", "en")
# Of a saved index (``BM25Index.save``): bumped when the analyzer or the layout changes.
SAVED_FORMAT = "rag-bm25 1"
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_APOSTROPHE = re.compile(r"['’`´]")


@lru_cache(maxsize=200_000)  # words repeat: folding was a third of building BM25
def _fold(word: str) -> str:
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_EXTRA_STOP = """
    cosa cos qual quali quale quando dove come chi perche perché quanto quanti quanta quante
    quest quell nessun alcun qualcos tutt po d s t
    also would could may might shall must many much
"""
_STOP = frozenset(
    w for words in (STOPWORDS_ITALIAN, STOPWORDS_EN_PLUS, _EXTRA_STOP.split()) for s in words for w in (s, _fold(s))
)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer({"it": "italian", "en": "english"}[language])


def words(text: str) -> list[str]:
    """Lower-cased words without stop words; apostrophes split words."""
    return [w for w in _TOKEN.findall(_APOSTROPHE.sub(" ", text.lower())) if w not in _STOP]


def analyze(text: str, language: str | None = None) -> list[str]:
    """Text to BM25 terms, stemmed in ``language`` (detected when None; Italian if unsupported)."""
    lang = language or detect_language(text)
    stemmer = _stemmer(lang if lang in ANALYZED else "it")
    return [_fold(s) for s in stemmer.stemWords(words(text))]


@dataclass(frozen=True)
class QueryScores:
    """BM25 scores of every indexed text for one query."""

    terms: list[str]
    scores: np.ndarray
    # Sum of the query terms' IDF (unknown terms count as the rarest): about the
    # score of a text containing each term once, at average length.
    ideal: float

    @property
    def normalized(self) -> np.ndarray:
        """Scores as a share of the ideal: comparable across queries (0 when nothing matched)."""
        return self.scores / self.ideal if self.ideal > 0 else self.scores


class BM25Index:
    """In-memory BM25 over a list of texts; ``extend`` adds texts in place."""

    def __init__(
        self, texts: list[str], languages: Sequence[str | None] | None = None, k1: float = 1.5, b: float = 0.75
    ) -> None:
        """``languages``: of each text, when known (detected where None)."""
        self.k1, self.b = k1, b
        self.size = 0
        self._vocab: dict[str, int] = {}
        self._df = np.zeros(0, np.int64)
        self._lengths = np.zeros(0, np.float64)  # terms per text
        # Postings as a term-major sparse matrix (texts x terms, term frequencies), plus the
        # ones added since it was built (merged in once they are a tenth of it).
        self._postings = sparse.csc_matrix((0, 0), dtype=np.float32)
        self._added: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, terms, tf)
        self._added_count = 0
        self.extend(texts, languages)

    def extend(self, texts: list[str], languages: Sequence[str | None] | None = None) -> None:
        """Add texts (their positions follow the ones already indexed)."""
        known = languages or [None] * len(texts)
        vocab = self._vocab
        terms: list[int] = []
        tfs: list[int] = []
        distinct, lengths = [], []
        for text, lang in zip(texts, known, strict=True):
            lang = lang or detect_language(text)
            tokens = analyze(text, lang if lang in ANALYZED else "it") or ["\u2205"]
            counts = Counter(tokens)
            terms.extend([vocab.setdefault(t, len(vocab)) for t in counts])
            tfs.extend(counts.values())
            distinct.append(len(counts))
            lengths.append(len(tokens))
        rows = np.repeat(np.arange(self.size, self.size + len(texts), dtype=np.int64), distinct)
        term_ids = np.asarray(terms, dtype=np.int64)
        self._df = np.concatenate([self._df, np.zeros(len(self._vocab) - len(self._df), np.int64)])
        np.add.at(self._df, term_ids, 1)
        self._lengths = np.concatenate([self._lengths, np.asarray(lengths, np.float64)])
        self.size += len(texts)
        self._added.append((rows, term_ids, np.asarray(tfs, np.float32)))
        self._added_count += len(rows)
        if self._added_count > self._postings.nnz // 10:
            self._merge()

    def copy(self) -> BM25Index:
        """An index to extend while this one goes on answering (the arrays are never changed in
        place, only replaced; the vocabulary and the list of additions are)."""
        other = BM25Index.__new__(BM25Index)
        other.__dict__.update(self.__dict__)
        other._vocab, other._added = dict(self._vocab), list(self._added)
        return other

    def _merge(self) -> None:
        self._postings = self._merged()
        self._added, self._added_count = [], 0

    def _merged(self) -> sparse.csc_matrix:
        """The postings with the additions merged in (a new matrix: this index is unchanged)."""
        base = self._postings.tocoo()
        rows = np.concatenate([base.row.astype(np.int64), *(r for r, _, _ in self._added)])
        cols = np.concatenate([base.col.astype(np.int64), *(t for _, t, _ in self._added)])
        tfs = np.concatenate([base.data, *(f for _, _, f in self._added)])
        return sparse.csc_matrix((tfs, (rows, cols)), shape=(self.size, len(self._vocab)))

    # saved ------------------------------------------------------------------------
    def to_bytes(self, key: str) -> bytes:
        """The index as an ``.npz`` (no pickle) for ``from_bytes``: analysing 70,000 passages
        again takes seconds at every start; reading them back, a tenth of a second. ``key``
        names what it was built from (the caller's: passages, settings)."""
        postings = self._merged()
        out = io.BytesIO()
        np.savez(
            out,
            format=np.array(SAVED_FORMAT),
            key=np.array(key),
            params=np.array([self.k1, self.b], np.float64),
            # One UTF-8 blob (terms hold no line break): a fixed-width string array would
            # take terms x the longest term (one 10,000-letter "word" would make it gigabytes).
            vocab=np.frombuffer("\n".join(self._vocab).encode(), np.uint8),
            df=self._df,
            lengths=self._lengths,
            data=postings.data.astype(np.float32),
            indices=postings.indices.astype(np.int64),
            indptr=postings.indptr.astype(np.int64),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes, key: str, k1: float, b: float) -> BM25Index | None:
        """The index ``to_bytes`` wrote for ``key`` with these parameters; None when it was built
        from something else or is not a consistent index (zip checksums, types, shapes and
        every count are checked, so a damaged or crafted file cannot reach a search)."""
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                if str(z["format"]) != SAVED_FORMAT or str(z["key"]) != key:
                    return None
                if z["params"].tolist() != [k1, b]:
                    return None
                arrays = {n: z[n] for n in ("vocab", "df", "lengths", "data", "indices", "indptr")}
            return cls._checked(arrays, k1, b)
        except Exception:  # whatever the file holds, the answer is to build the index again
            return None

    @classmethod
    def _checked(cls, a: dict[str, np.ndarray], k1: float, b: float) -> BM25Index | None:
        kinds = {"vocab": "u", "df": "i", "lengths": "f", "data": "f", "indices": "i", "indptr": "i"}
        if any(a[n].ndim != 1 or a[n].dtype.kind != k for n, k in kinds.items()):
            return None
        vocab = a["vocab"].tobytes().decode("utf-8").split("\n") if len(a["vocab"]) else []
        df, lengths, data, indices, indptr = (a[n] for n in ("df", "lengths", "data", "indices", "indptr"))
        size, terms = len(lengths), len(vocab)
        if len(set(vocab)) != terms or len(df) != terms or len(indptr) != terms + 1 or len(data) != len(indices):
            return None
        if indptr[0] != 0 or indptr[-1] != len(data) or not np.array_equal(np.diff(indptr), df):
            return None
        if not (np.isfinite(lengths).all() and np.isfinite(data).all()) or (data <= 0).any() or (lengths < 0).any():
            return None
        if (len(indices) and (indices.min() < 0 or indices.max() >= size)) or (df > size).any():
            return None
        index = cls.__new__(cls)
        index.k1, index.b, index.size = k1, b, size
        index._vocab = {t: i for i, t in enumerate(vocab)}
        index._df, index._lengths = df.astype(np.int64), lengths.astype(np.float64)
        index._postings = sparse.csc_matrix((data.astype(np.float32), indices, indptr), shape=(size, terms))
        index._added, index._added_count = [], 0
        return index

    def idf(self, term: str) -> float:
        """Lucene's IDF; a term no text has gets the value of df = 0."""
        t = self._vocab.get(term)
        return self._idf(int(self._df[t]) if t is not None else 0)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    @staticmethod
    def query_terms(query: str, language: str | None = None) -> list[str]:
        """Distinct terms of the query: stemmed in ``language``, or in every analyzed language."""
        langs = (language,) if language in ANALYZED else ANALYZED
        return list(dict.fromkeys(t for lang in langs for t in analyze(query, lang)))

    def scores(self, query: str, language: str | None = None) -> QueryScores:
        terms = self.query_terms(query, language)
        scores = np.zeros(self.size, dtype=np.float32)
        ids = [self._vocab[t] for t in terms if t in self._vocab]
        if ids and self.size:
            # Each text's length normalisation, for this query's terms' postings only.
            norm = self.k1 * ((1 - self.b) + self.b * self._lengths / self._lengths.mean())
            total = np.zeros(self.size, dtype=np.float64)
            for t in ids:
                idf = self._idf(int(self._df[t]))
                start, end = self._postings.indptr[t : t + 2] if t < self._postings.shape[1] else (0, 0)
                parts = [(self._postings.indices[start:end], self._postings.data[start:end])]
                for rows, added_terms, added_tf in self._added:
                    mine = added_terms == t
                    parts.append((rows[mine], added_tf[mine]))
                for rows, tf in parts:
                    total[rows] += idf * tf / (tf + norm[rows])
            scores = total.astype(np.float32)
        ideal = sum(self.idf(t) for t in terms)
        return QueryScores(terms, scores, ideal)
