"""News QA: many articles, each its own one-article corpus (``../shared/bench/news_qa``).

For every article named by the questions, a private store and index hold that
article alone; its questions go through ``Assistant.ask`` as in ``rag eval article``.
The models are loaded once and shared by all the articles' assistants. Totals are
given per language and per kind of error, so a change can be judged by what it
fixes and what it breaks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag import Assistant, Settings

from .article import private_settings, run_backend
from .data import ArticleQuestion, EvalInputError
from .gate import sweep_report, without_gate

# Kinds of error, for the report: what went wrong first, one per failed question.
FALSE_REFUSAL = "false refusal"
WRONG_FACT = "wrong fact"
WRONG_LANGUAGE = "wrong language"
CITATION_MISS = "citation miss"
INVENTED = "answered an unanswerable question"
REFUSED_IN_WRONG_LANGUAGE = "refused in the wrong language"


def error_kind(row: dict[str, Any]) -> str | None:
    """The kind of error of one scored question (a row of ``run_backend``), None when right."""
    if row["correct"]:
        return None
    if row["unanswerable"]:
        return INVENTED if row["answerable"] or row["citations"] else REFUSED_IN_WRONG_LANGUAGE
    if not row["answerable"]:
        return FALSE_REFUSAL
    failed = row["failed"]
    if "facts" in failed:
        return WRONG_FACT
    if "language" in failed:
        return WRONG_LANGUAGE
    return CITATION_MISS


def refusal_cause(reason: str | None) -> str:
    """A refusal reason without its numbers ("no passage is relevant enough (0.71 < 0.76)" → its words)."""
    return (reason or "?").split(" (")[0]


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Right answers per language × answerable/unanswerable, and errors by kind."""
    table: dict[str, dict[str, Any]] = {}
    for lang in ("it", "en", "all"):
        mine = [r for r in rows if lang in (r["lang"], "all")]
        ans = [r for r in mine if not r["unanswerable"]]
        una = [r for r in mine if r["unanswerable"]]
        table[lang] = {
            "answerable_correct": sum(r["correct"] for r in ans),
            "answerable": len(ans),
            "answerable_rate": round(sum(r["correct"] for r in ans) / len(ans), 4) if ans else None,
            "unanswerable_refused": sum(r["correct"] for r in una),
            "unanswerable": len(una),
            "unanswerable_rate": round(sum(r["correct"] for r in una) / len(una), 4) if una else None,
        }
    kinds: Counter[str] = Counter()
    by_lang: dict[str, Counter[str]] = defaultdict(Counter)
    causes: Counter[str] = Counter()
    for r in rows:
        kind = error_kind(r)
        if kind:
            kinds[kind] += 1
            by_lang[r["lang"]][kind] += 1
            if kind == FALSE_REFUSAL:
                causes[refusal_cause(r["refusal_reason"])] += 1
    seconds = sorted(r["seconds"] for r in rows)
    return {
        "by_language": table,
        "errors": dict(kinds.most_common()),
        "errors_by_language": {lang: dict(c.most_common()) for lang, c in sorted(by_lang.items())},
        "false_refusal_causes": dict(causes.most_common()),
        "median_seconds": seconds[len(seconds) // 2] if seconds else 0.0,
    }


def evaluate_news(
    settings: Settings,
    questions: Sequence[ArticleQuestion],
    *,
    articles_dir: Path,
    home: Path,
    backends: Sequence[str],
    thresholds: Sequence[float],
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Each question is asked of its own article (``article``: a file stem in ``articles_dir``)."""
    by_article: dict[str, list[ArticleQuestion]] = defaultdict(list)
    for q in questions:
        if not q.article:
            raise EvalInputError(f"question {q.qid} names no article (field \"article\").")
        by_article[q.article].append(q)
    for article in by_article:
        if not (articles_dir / f"{article}.txt").is_file():
            raise EvalInputError(f"{articles_dir}: no article file {article}.txt for the questions that name it.")
    base = Assistant(settings)
    base.embedder  # noqa: B018 - loaded once, shared by every article's assistant
    rows: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for n, (article, qs) in enumerate(sorted(by_article.items()), 1):
        own = private_settings(settings, home / article, [articles_dir / f"{article}.txt"])
        assistant = base.derive(settings=own)
        sync = assistant.index(progress=False)
        log(f"[{n}/{len(by_article)}] article {article}: {sync.chunks} passages, {len(qs)} questions")
        ungated = assistant.derive(settings=without_gate(own))
        for b in backends:
            run = run_backend(assistant, ungated, qs, b, thresholds, progress)
            for row in run["questions"]:
                row["article"] = article
                row["error"] = error_kind(row)
            rows[b] += run["questions"]
    base.close()
    threshold = settings.retrieval.min_relevance
    return {
        "articles": sorted(by_article),
        "runs": [
            {
                "backend": b,
                "summary": summarize(rows[b]),
                "questions": rows[b],
                "threshold": sweep_report(
                    [(r["best_relevance"], not r["unanswerable"], r["correct_past_gate"]) for r in rows[b]],
                    thresholds,
                    threshold,
                ),
            }
            for b in backends
        ],
    }
