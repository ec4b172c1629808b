"""Pure scoring functions: SQuAD EM/F1, ranking metrics, language and citation checks.

Nothing here loads a model or a file, so every function has hand-made unit
tests (tests/test_eval_scoring.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rag.text.language import detect_language

# SQuAD drops English articles; SQuAD-it evaluations drop the Italian ones too.
ARTICLES = {
    "en": frozenset({"a", "an", "the"}),
    "it": frozenset({"il", "lo", "la", "i", "gli", "le", "l", "un", "uno", "una"}),
}
_APOSTROPHES = re.compile(r"['’`´]")
_QUOTED = re.compile(r"«[^»]*»|“[^”]*”")
_MARKER = re.compile(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Fewer words than this say nothing reliable about a language ("Kim Jong-un.", "1957").
MIN_WORDS_FOR_LANGUAGE = 4


# --- answers: SQuAD exact match and token F1 -------------------------------
def normalize_answer(text: str, lang: str | None = None) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces.

    Differences from the official script, for Italian: an apostrophe separates
    words ("l'Europa" -> "europa", not "leuropa") and accents are folded.
    ``lang`` picks the article list; None drops both languages' articles.
    """
    text = _APOSTROPHES.sub(" ", text.lower())
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(" " if c.isspace() else c for c in text if c.isalnum() or c.isspace())
    articles = ARTICLES.get(lang or "", ARTICLES["en"] | ARTICLES["it"])
    return " ".join(w for w in text.split() if w not in articles)


def exact_match(prediction: str, golds: Iterable[str], lang: str | None = None) -> float:
    pred = normalize_answer(prediction, lang)
    return float(any(pred == normalize_answer(g, lang) for g in golds))


def token_f1(prediction: str, golds: Iterable[str], lang: str | None = None) -> float:
    """Best token-overlap F1 against any of the gold answers (0 with no golds)."""
    pred = normalize_answer(prediction, lang).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold, lang).split()
        if not pred or not ref:
            best = max(best, float(pred == ref))
            continue
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, golds: Iterable[str], lang: str | None = None) -> float:
    """1 when a normalised gold answer occurs, as whole words, in the normalised prediction.

    A lenient companion to EM/F1 for sentence-long answers ("Kim Jong-un presided…").
    """
    pred = f" {normalize_answer(prediction, lang)} "
    return float(any((g := normalize_answer(gold, lang)) and f" {g} " in pred for gold in golds))


# --- retrieval ---------------------------------------------------------------
def gold_rank(ranked: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` in ``ranked`` (None when absent)."""
    for i, item in enumerate(ranked, 1):
        if item == gold:
            return i
    return None


def recall_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose gold item is in the top k (one gold per question)."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    return sum(1.0 / r for r in ranks if r) / len(ranks) if ranks else 0.0


def dedupe_ranking(items: Iterable[str]) -> list[str]:
    """Chunk-level ranking to document level: a document ranks at its best chunk."""
    return list(dict.fromkeys(items))


# --- language ------------------------------------------------------------------
def strip_quotes(text: str) -> str:
    """The answer without «quoted» passages and [n] markers (quotes keep their language)."""
    return _MARKER.sub(" ", _QUOTED.sub(" ", text))


def language_ok(text: str, expected: str, detect: Callable[[str], str] = detect_language) -> bool:
    """Is the answer written in ``expected``? Quotes are ignored; too short to tell counts as yes."""
    rest = strip_quotes(text)
    if len(_WORD.findall(rest)) < MIN_WORDS_FOR_LANGUAGE:
        return True
    return detect(rest) in (expected, "und")


# --- article QA (format of ../shared/bench/article_dev.jsonl) -------------------
def contains_all_groups(text: str, expect_any: Iterable[Iterable[str]]) -> bool:
    """For every group, at least one alternative occurs in ``text`` (case-insensitive)."""
    low = text.casefold()
    return all(any(alt.casefold() in low for alt in group) for group in expect_any)


def _squash(text: str) -> str:
    return " ".join(text.split())


def passage_has_gold(passage: str, gold: str) -> bool:
    """Does the passage contain the gold text (exact, whitespace-insensitive)?"""
    return _squash(gold) in _squash(passage)


@dataclass(frozen=True)
class ArticleVerdict:
    correct: bool
    language_ok: bool
    facts_ok: bool
    gold_cited: bool
    refused: bool
    citations: int
    gold_citations: int

    def failures(self) -> list[str]:
        """Names of the failed checks, for the per-question table."""
        return [
            name
            for name, ok in (("language", self.language_ok), ("facts", self.facts_ok), ("citation", self.gold_cited))
            if not ok
        ]


def score_article_answer(
    *,
    lang: str,
    unanswerable: bool,
    expect_any: Iterable[Iterable[str]],
    gold: str | None,
    answer_text: str,
    answer_language: str,
    answerable: bool,
    cited_passages: Sequence[str],
    detect: Callable[[str], str] = detect_language,
) -> ArticleVerdict:
    """Correctness per ../shared/README.md.

    Answerable: in the question's language, every ``expect_any`` group present,
    at least one cited passage containing ``gold``. Unanswerable: refused
    (``answerable`` False) and nothing cited.
    """
    lang_ok = answer_language == lang and language_ok(answer_text, lang, detect)
    gold_hits = sum(1 for p in cited_passages if gold and passage_has_gold(p, gold))
    if unanswerable:
        refused = not answerable and not cited_passages
        return ArticleVerdict(refused and lang_ok, lang_ok, True, True, refused, len(cited_passages), 0)
    facts = contains_all_groups(answer_text, expect_any)
    cited = gold_hits > 0
    return ArticleVerdict(
        lang_ok and facts and cited, lang_ok, facts, cited, not answerable, len(cited_passages), gold_hits
    )


def citation_precision_recall(verdicts: Sequence[tuple[bool, ArticleVerdict]]) -> tuple[float, float]:
    """Micro citation precision and recall over (unanswerable, verdict) pairs.

    Precision: share of all citations whose passage contains the gold text
    (any citation of an unanswerable question is wrong). Recall: share of
    answerable questions with at least one gold citation.
    """
    total = sum(v.citations for _, v in verdicts)
    good = sum(v.gold_citations for unans, v in verdicts if not unans)
    answerable = [v for unans, v in verdicts if not unans]
    precision = good / total if total else 1.0
    recall = sum(1 for v in answerable if v.gold_citations) / len(answerable) if answerable else 1.0
    return precision, recall
