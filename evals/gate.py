"""Evaluating the refusal gate (``retrieval.min_relevance``): the score it compares,
settings without it, and the trade-off of other thresholds.

A question the gate refused is asked again without the gate, so the sweep knows
what would have happened past it at a lower threshold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rag import Answer, Settings

if TYPE_CHECKING:
    from rag import Assistant


def best_relevance(answer: Answer) -> float:
    """The score the refusal gate compares with ``retrieval.min_relevance``: the answer's
    sentence-level relevance when the pipeline reports it, else the best passage cosine."""
    relevance = getattr(answer, "relevance", None)
    if relevance is not None:
        return float(relevance)
    return max((h.dense_score or 0.0 for h in answer.passages), default=0.0)


def without_gate(settings: Settings) -> Settings:
    """The same settings with the relevance threshold off (the answer-type check stays)."""
    return settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"min_relevance": -1.0})})


@dataclass(frozen=True)
class GatedAnswer:
    answer: Answer  # what the assistant answered, gate included
    seconds: float  # time of that answer
    relevance: float  # the score the gate compared (best_relevance)
    gated: bool  # refused by the relevance threshold
    past_gate: Answer  # the answer without the threshold (``answer`` unless gated)
    draft: str = ""  # what the model wrote, before the checks (why a refusal happened)


def ask_through_gate(assistant: Assistant, ungated: Assistant, question: str, backend: str) -> GatedAnswer:
    """Ask ``assistant``; when its threshold refused, ask ``ungated`` (``without_gate``) too,
    since the trade-off needs the outcome past the gate."""
    t = time.perf_counter()
    draft, a = "", None
    for item in assistant.ask_stream(question, backend=backend):
        if isinstance(item, Answer):
            a = item
        elif isinstance(item, str):
            draft += item
    assert a is not None
    seconds = time.perf_counter() - t
    best = best_relevance(a)
    gated = bool(a.passages) and best < assistant.settings.retrieval.min_relevance
    past = ungated.ask(question, backend=backend) if gated else a
    return GatedAnswer(a, seconds, best, gated, past, draft)


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    answered_correctly: int  # answerable, passed the threshold, answered right
    refused_wrongly: int  # answerable but below the threshold
    refused_rightly: int  # unanswerable and refused (by the threshold or the pipeline)
    answered_wrongly: int  # passed the threshold but wrong, or an unanswerable one answered

    @property
    def right(self) -> int:
        return self.answered_correctly + self.refused_rightly


def threshold_sweep(
    items: Sequence[tuple[float, bool, bool]], thresholds: Sequence[float]
) -> list[ThresholdPoint]:
    """Trade-off of a refusal threshold on the best retrieval score.

    ``items``: (best dense score, answerable, ok when it passes the threshold),
    where "ok" means answered correctly for an answerable question and still
    refused by the rest of the pipeline for an unanswerable one. A question is
    refused when its score is below the threshold.
    """
    points = []
    for t in thresholds:
        ac = rw = rr = aw = 0
        for score, answerable, ok in items:
            passed = score >= t
            if answerable:
                if not passed:
                    rw += 1
                elif ok:
                    ac += 1
                else:
                    aw += 1
            elif not passed or ok:
                rr += 1
            else:
                aw += 1
        points.append(ThresholdPoint(round(t, 4), ac, rw, rr, aw))
    return points


def sweep_report(
    items: Sequence[tuple[float, bool, bool]], thresholds: Sequence[float], chosen: float
) -> dict[str, Any]:
    """The sweep at ``thresholds`` and the chosen one, with the range of best totals."""
    sweep = [asdict(p) | {"right": p.right} for p in threshold_sweep(items, sorted({*thresholds, chosen}))]
    best = max(p["right"] for p in sweep)
    return {
        "chosen": chosen,
        "sweep": sweep,
        # Every threshold reaching the best number of right outcomes.
        "best_range": [min(p["threshold"] for p in sweep if p["right"] == best),
                       max(p["threshold"] for p in sweep if p["right"] == best)],
    }
