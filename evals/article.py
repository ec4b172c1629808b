"""Article QA: a question file (format of article_dev.jsonl) through ``Assistant.ask``.

The articles are copied into a private home under the eval cache and indexed
there, so the user's ``index/`` is never touched. Each question is scored per
../shared/README.md; totals include citation precision/recall and the
refusal-threshold trade-off (``retrieval.min_relevance``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rag import Answer, Assistant, DocumentError, Settings
from rag.corpus.documents import expand_paths, read_article

from .data import ArticleQuestion
from .gate import ask_through_gate, sweep_report, without_gate
from .scoring import ArticleVerdict, citation_precision_recall, score_article_answer


def private_settings(settings: Settings, home: Path, docs: Sequence[Path]) -> Settings:
    """Settings whose store and index live in ``home`` and hold copies of ``docs``."""
    files = expand_paths(docs)
    if not files:
        raise DocumentError(f"no articles (.txt or .md) in {', '.join(str(d) for d in docs)}.")
    for f in files:
        # The same checks as adding an article: a file the store would skip would leave
        # the questions asked of nothing, and the refusals scored as right.
        read_article(f, settings.max_document_bytes)
    store = home / "docs_store"
    if store.exists():
        shutil.rmtree(store)
    store.mkdir(parents=True)
    for i, f in enumerate(files):
        shutil.copy(f, store / f"{i:03d}-{f.name}")
    # Same models and knobs; only the folders change. The chat model is shared by every
    # evaluated corpus, so its prompt snapshots stay in memory (not in one corpus's folder).
    llm = settings.llm.model_copy(update={"prompt_cache_dir": "off"})
    return settings.model_copy(update={"docs_dir": store, "index_dir": home / "index", "llm": llm})


def _verdict(q: ArticleQuestion, a: Answer) -> ArticleVerdict:
    return score_article_answer(
        lang=q.lang,
        unanswerable=q.unanswerable,
        expect_any=q.expect_any,
        gold=q.gold,
        answer_text=a.text,
        answer_language=a.language,
        answerable=a.answerable,
        cited_passages=[c.passage for c in a.citations],
    )


def _ok_if_passed(q: ArticleQuestion, a: Answer) -> bool:
    """Right when the gate lets it through: correct answer, or still refused if unanswerable."""
    return (not a.answerable and not a.citations) if q.unanswerable else _verdict(q, a).correct


def run_backend(
    assistant: Assistant,
    ungated: Assistant,
    questions: Sequence[ArticleQuestion],
    backend: str,
    thresholds: Sequence[float],
    progress: bool = True,
) -> dict[str, Any]:
    threshold = assistant.settings.retrieval.min_relevance
    rows: list[dict[str, Any]] = []
    pairs: list[tuple[bool, ArticleVerdict]] = []
    sweep_items: list[tuple[float, bool, bool]] = []
    for q in tqdm(questions, desc=f"article QA [{backend}]", disable=not progress, leave=False):
        g = ask_through_gate(assistant, ungated, q.question, backend)
        a = g.answer
        v = _verdict(q, a)
        sweep_items.append((g.relevance, not q.unanswerable, _ok_if_passed(q, g.past_gate)))
        pairs.append((q.unanswerable, v))
        rows.append(
            {
                "id": q.qid,
                "lang": q.lang,
                "question": q.question,
                "unanswerable": q.unanswerable,
                "correct": v.correct,
                "failed": v.failures() if not q.unanswerable else ([] if v.correct else ["refusal"]),
                "answer": a.text,
                "draft": g.draft,
                "answer_language": a.language,
                "answerable": a.answerable,
                "citations": [{"number": c.number, "quote": c.quote, "chunk_id": c.chunk_id} for c in a.citations],
                "gold_cited": v.gold_cited if not q.unanswerable else None,
                "best_relevance": round(g.relevance, 4),
                "refused_by_threshold": g.gated,
                "backend_used": a.backend,
                "fell_back": a.fell_back,
                "refusal_reason": a.refusal_reason,
                "fallback_reason": a.fallback_reason,
                "seconds": round(g.seconds, 2),
                # Whether it would be right with the relevance threshold off (the sweep's input).
                "correct_past_gate": sweep_items[-1][2],
            }
        )
    precision, recall = citation_precision_recall(pairs)
    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    verdicts = [v for _, v in pairs]
    totals = {
        "questions": len(rows),
        "correct": sum(r["correct"] for r in rows),
        "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4) if rows else 0.0,
        "answerable_correct": sum(r["correct"] for r in answerable),
        "answerable": len(answerable),
        "unanswerable_refused": sum(r["correct"] for r in unanswerable),
        "unanswerable": len(unanswerable),
        "language_ok": sum(v.language_ok for v in verdicts),
        "facts_ok": sum(v.facts_ok for u, v in pairs if not u),
        "gold_cited": sum(v.gold_cited for u, v in pairs if not u),
        "citation_precision": round(precision, 4),
        "citation_recall": round(recall, 4),
        "fell_back": sum(r["fell_back"] for r in rows),
        "mean_seconds": round(float(np.mean([r["seconds"] for r in rows])), 2) if rows else 0.0,
    }
    return {
        "backend": backend,
        "totals": totals,
        "questions": rows,
        "threshold": sweep_report(sweep_items, thresholds, threshold),
    }


def evaluate_article(
    settings: Settings,
    questions: Sequence[ArticleQuestion],
    *,
    docs: Sequence[Path],
    home: Path,
    backends: Sequence[str],
    thresholds: Sequence[float],
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    eval_settings = private_settings(settings, home, docs)
    assistant = Assistant(eval_settings)
    sync = assistant.index(progress=progress)
    log(f"article index {sync.action}: {sync.documents} document(s), {sync.chunks} chunks")
    ungated = assistant.derive(settings=without_gate(eval_settings))
    runs = [run_backend(assistant, ungated, questions, b, thresholds, progress) for b in backends]
    return {"documents": [str(p) for p in docs], "chunks": sync.chunks, "runs": runs}
