"""Answer benchmark: a sample of SQuAD-it dev questions asked in Italian and English.

The assistant answers over the whole benchmark corpus (the eval index of
``retrieval``); answers are scored with SQuAD exact match and token F1 against
``answers_it`` (``answers_en`` for English questions, since the answer comes
in the question's language), citation precision (cites the gold paragraph)
and answer-language accuracy.

With ``hard_negatives`` every question is asked a second time over the corpus
without its gold paragraph (SQuAD 2.0-style unanswerable questions: the rest of
its article is still there, so retrieval finds the topic but not the answer).
The right outcome is then a refusal, or the gold answer found in another
paragraph (SQuAD repeats some facts). Both sets together give the trade-off of
the refusal threshold (``retrieval.min_relevance``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rag import Assistant, Settings
from rag.answer.prompts import EXTRACTIVE_INTRO
from rag.search.embedding import load_embedder
from rag.search.retrieval import HybridRetriever
from rag.search.stores import DEFAULT_STORE, VectorStore, new_store
from rag.types import Answer, Chunk

from .data import Paragraph, SquadQuestion
from .gate import ask_through_gate, sweep_report, without_gate
from .retrieval import LANGS, build_index, chunk_corpus
from .scoring import contains_answer, exact_match, language_ok, strip_quotes, token_f1

_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")


def prediction_text(answer: Answer) -> str:
    """The answer as a SQuAD prediction: no citation markers, quotes or extractive intro."""
    if not answer.answerable:
        return ""
    text = _MARKER.sub("", answer.text)
    for intro in EXTRACTIVE_INTRO.values():
        text = text.replace(intro, " ")
    return " ".join(text.replace("«", " ").replace("»", " ").split())


def sample_questions(questions: Sequence[SquadQuestion], n: int, seed: int) -> list[SquadQuestion]:
    """A reproducible sample (file order kept, so runs are comparable)."""
    if n >= len(questions):
        return list(questions)
    keep = set(random.Random(seed).sample(range(len(questions)), n))
    return [q for i, q in enumerate(questions) if i in keep]


def score_answer(q: SquadQuestion, lang: str, a: Answer) -> dict[str, Any]:
    golds = q.answers(lang)
    pred = prediction_text(a)
    cited = [c.doc_id for c in a.citations]
    return {
        "id": q.qid,
        "lang": lang,
        "question": q.question(lang),
        "gold": list(golds),
        "translated_query": a.translated_query,
        "answer": a.text,
        "prediction": pred,
        "em": exact_match(pred, golds, lang),
        "f1": round(token_f1(pred, golds, lang), 4),
        "contains_gold": contains_answer(pred, golds, lang),
        "answerable": a.answerable,
        "citations": len(cited),
        # The cited passage sentences, for reading the report and studying refusals.
        "quotes": [c.quote for c in a.citations],
        "gold_citations": sum(1 for d in cited if d == q.pid),
        "gold_retrieved": any(h.doc_id == q.pid for h in a.passages),
        # The language check ignores «quotes» (the extractive engine quotes Italian passages).
        "language_ok": a.language == lang and language_ok(a.text, lang),
        "quoted_only": a.answerable and not strip_quotes(a.text).strip(" .:"),
        "backend_used": a.backend,
        "fell_back": a.fell_back,
        "refusal_reason": a.refusal_reason,
    }


def totals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"questions": 0}
    cites = sum(r["citations"] for r in rows)
    return {
        "questions": len(rows),
        "exact_match": round(float(np.mean([r["em"] for r in rows])), 4),
        "f1": round(float(np.mean([r["f1"] for r in rows])), 4),
        # Lenient: the gold answer appears in the (sentence-long) answer.
        "contains_gold": round(float(np.mean([r["contains_gold"] for r in rows])), 4),
        # Share of all citations that point at the gold paragraph.
        "citation_precision": round(sum(r["gold_citations"] for r in rows) / cites, 4) if cites else 0.0,
        "cites_gold": round(float(np.mean([r["gold_citations"] > 0 for r in rows])), 4),
        "gold_retrieved": round(float(np.mean([r["gold_retrieved"] for r in rows])), 4),
        "language_accuracy": round(float(np.mean([r["language_ok"] for r in rows])), 4),
        "refused": sum(not r["answerable"] for r in rows),
        "fell_back": sum(r["fell_back"] for r in rows),
        "mean_seconds": round(float(np.mean([r["seconds"] for r in rows])), 2),
    }


def hard_negative_totals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Questions asked without their gold paragraph: refused, or answered (with or without the gold answer)."""
    return {
        "questions": len(rows),
        "refused": sum(not r["answerable"] for r in rows),
        "answered_with_gold": sum(bool(r["answerable"] and r["contains_gold"]) for r in rows),
        "answered_without_gold": sum(bool(r["answerable"] and not r["contains_gold"]) for r in rows),
    }


def without_paragraphs(chunks: Sequence[Chunk], vectors: np.ndarray, pids: set[str]) -> VectorStore:
    """A store of the chunks and vectors, less the chunks of the paragraphs ``pids``."""
    keep = [i for i, c in enumerate(chunks) if c.doc_id not in pids]
    out = new_store(DEFAULT_STORE, vectors.shape[1], Path("."))  # FAISS: in memory only
    out.add([chunks[i] for i in keep], vectors[keep])
    return out


def _ok(q: SquadQuestion, lang: str, a: Answer, gold_removed: bool) -> bool:
    """With the gold paragraph: answered with the gold answer. Without: refused, or
    answered with the gold answer (found in another paragraph)."""
    found = a.answerable and bool(contains_answer(prediction_text(a), q.answers(lang), lang))
    return found or (gold_removed and not a.answerable)


def ask_scored(
    assistant: Assistant, ungated: Assistant, q: SquadQuestion, lang: str, backend: str, gold_removed: bool
) -> tuple[dict[str, Any], tuple[float, bool, bool]]:
    """The scored row and the threshold-sweep item (relevance, answerable, ok past the gate)."""
    g = ask_through_gate(assistant, ungated, q.question(lang), backend)
    row = score_answer(q, lang, g.answer) | {
        "gold_removed": gold_removed,
        "relevance": round(g.relevance, 4),
        "refused_by_threshold": g.gated,
        "seconds": round(g.seconds, 2),
        "draft": g.draft,  # what the model wrote before the checks: why a refusal happened
    }
    return row, (g.relevance, not gold_removed, _ok(q, lang, g.past_gate, gold_removed))


def evaluate_answers(
    settings: Settings,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    *,
    n: int,
    seed: int,
    backends: Sequence[str],
    cache_dir: Path,
    hard_negatives: bool = False,
    thresholds: Sequence[float] = (),
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    chunks = chunk_corpus(corpus, settings)
    embedder = load_embedder(settings)
    index = build_index(chunks, embedder, cache_dir, progress)
    log(f"answer benchmark: {len(corpus)} paragraphs, {len(chunks)} chunks indexed ({index.seconds:.1f}s)")
    sample = sample_questions(questions, n, seed)
    stores = [(False, index.store)]
    if hard_negatives:
        stores.append((True, without_paragraphs(chunks, index.vectors, {q.pid for q in sample})))
    # (gold removed, assistant, the same without the relevance gate) per index; one set of models for all
    models = Assistant(settings, embedder=embedder)
    conditions = []
    for removed, store in stores:
        assistant = models.derive(retriever=HybridRetriever(store, embedder, settings.retrieval))
        conditions.append((removed, assistant, assistant.derive(settings=without_gate(settings))))
    runs = []
    for backend in backends:
        rows, items = [], []
        jobs = [(c, q, lang) for c in conditions for q in sample for lang in LANGS]
        for (removed, assistant, ungated), q, lang in tqdm(
            jobs, desc=f"answers [{backend}]", disable=not progress, leave=False
        ):
            row, item = ask_scored(assistant, ungated, q, lang, backend, removed)
            rows.append(row)
            items.append(item)
        answerable = [r for r in rows if not r["gold_removed"]]
        by_lang = {lang: totals([r for r in answerable if r["lang"] == lang]) for lang in LANGS}
        run: dict[str, Any] = {
            "backend": backend,
            "totals": totals(answerable),
            "by_language": by_lang,
            "questions": rows,
            "threshold": sweep_report(items, thresholds, settings.retrieval.min_relevance),
        }
        if hard_negatives:
            negatives = [r for r in rows if r["gold_removed"]]
            run["hard_negatives"] = {
                **{lang: hard_negative_totals([r for r in negatives if r["lang"] == lang]) for lang in LANGS},
                "all": hard_negative_totals(negatives),
            }
        runs.append(run)
        log(f"answers [{backend}]: F1 {run['totals']['f1']:.3f}")
    return {
        "sample": len(sample),
        "seed": seed,
        "paragraphs": len(corpus),
        "hard_negatives": hard_negatives,
        "runs": runs,
    }
