"""Answer benchmark: a sample of SQuAD-it dev questions asked in Italian and English.

The assistant answers over the whole benchmark corpus (the eval index of
``retrieval``); answers are scored with SQuAD exact match and token F1 against
``answers_it`` (``answers_en`` for English questions, since the answer comes
in the question's language), citation precision (cites the gold paragraph)
and answer-language accuracy.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..assistant import Assistant
from ..config import Settings
from ..embed import get_embedder
from ..prompts import EXTRACTIVE_INTRO
from ..retrieve import HybridRetriever
from ..types import Answer
from .data import Paragraph, SquadQuestion
from .retrieval import LANGS, build_index, chunk_corpus
from .scoring import contains_answer, exact_match, language_ok, strip_quotes, token_f1

_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")


class CorpusAssistant(Assistant):
    """An assistant answering over a prepared retriever instead of ``docs_store/``."""

    def __init__(self, settings: Settings, retriever: HybridRetriever) -> None:
        super().__init__(settings)
        self._corpus_retriever = retriever

    @property
    def retriever(self) -> HybridRetriever:
        return self._corpus_retriever


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
        "answer": a.text,
        "prediction": pred,
        "em": exact_match(pred, golds, lang),
        "f1": round(token_f1(pred, golds, lang), 4),
        "contains_gold": contains_answer(pred, golds, lang),
        "answerable": a.answerable,
        "citations": len(cited),
        "gold_citations": sum(1 for d in cited if d == q.pid),
        "gold_retrieved": any(h.doc_id == q.pid for h in a.passages),
        # The language check ignores «quotes» (the extractive backend quotes Italian passages).
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


def evaluate_answers(
    settings: Settings,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    *,
    n: int,
    seed: int,
    backends: Sequence[str],
    cache_dir: Path,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    chunks = chunk_corpus(corpus, settings)
    embedder = get_embedder(settings)
    index = build_index(chunks, embedder, cache_dir, progress)
    log(f"answer benchmark: {len(corpus)} paragraphs, {len(chunks)} chunks indexed ({index.seconds:.1f}s)")
    assistant = CorpusAssistant(settings, HybridRetriever(index.store, embedder, settings.retrieval))
    sample = sample_questions(questions, n, seed)
    runs = []
    for backend in backends:
        rows = []
        jobs = [(q, lang) for q in sample for lang in LANGS]
        for q, lang in tqdm(jobs, desc=f"answers [{backend}]", disable=not progress, leave=False):
            t = time.perf_counter()
            answer = assistant.ask(q.question(lang), backend=backend)
            row = score_answer(q, lang, answer)
            row["seconds"] = round(time.perf_counter() - t, 2)
            rows.append(row)
        by_lang = {lang: totals([r for r in rows if r["lang"] == lang]) for lang in LANGS}
        runs.append({"backend": backend, "totals": totals(rows), "by_language": by_lang, "questions": rows})
        log(f"answers [{backend}]: F1 {runs[-1]['totals']['f1']:.3f}")
    return {"sample": len(sample), "seed": seed, "paragraphs": len(corpus), "runs": runs}
