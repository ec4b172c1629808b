"""BM25 keyword search (bm25s) with Italian/English analysis.

The analyzer lower-cases, strips accents after stemming, splits elisions
("dell'Europa", and SQuAD-it's "dell' Europa"), drops Italian and English stop
words and stems with the Snowball stemmer of the text's language, so both
"accordi"/"accordo" and "signed"/"signing" meet.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer

from .language import detect_language

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# Elided articles/prepositions before an apostrophe (l', dell', un', ...).
_ELISION = re.compile(r"\b[^\W\d_]{1,5}['’]\s?", re.UNICODE)

_STOP = frozenset(
    """a ad al alla alle agli ai all anche avere c che chi ci come con cui da dal dalla dalle dai
    degli dei del della delle dello di e ed era erano essere fra gli ha hanno ho i il in
    io la le lei lo loro lui ma mi ne negli nei nel nella nelle nello no noi non o per
    perché più quale quali quando quanto quella quelle quelli quello questa queste questi
    questo se si sia sono su sua sue sui sul sulla suo suoi tra un una uno vi è cosa qual
    the of and to in is was for on that by with as at from it an are be this which or
    were has have had not but what who whom whose when where why how its their they did does
    do been being into than then there these those also can could would should will he she
    his her him them we our you your i me my""".split()
)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer({"it": "italian", "en": "english"}.get(language, "italian"))


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def analyze(text: str, language: str | None = None) -> list[str]:
    """Text to BM25 terms, stemmed in ``language`` (detected when None)."""
    lang = language or detect_language(text)
    words = [w for w in _TOKEN.findall(_ELISION.sub(" ", text.lower())) if w not in _STOP]
    return [_fold(s) for s in _stemmer(lang if lang in ("it", "en") else "it").stemWords(words)]


class BM25Index:
    """In-memory BM25 over a list of texts (rebuilt at load; it takes seconds at most)."""

    def __init__(self, texts: list[str], languages: list[str] | None = None) -> None:
        langs = languages or [detect_language(t) for t in texts]
        corpus = [analyze(t, lang) or ["\u2205"] for t, lang in zip(texts, langs, strict=True)]
        self.size = len(texts)
        self._bm25 = bm25s.BM25()
        if texts:
            self._bm25.index(corpus, show_progress=False)

    def search(self, query: str, k: int, language: str | None = None) -> list[tuple[int, float]]:
        """(position, BM25 score) of the best k texts; empty when nothing matches."""
        terms = analyze(query, language)
        if not terms or not self.size:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
