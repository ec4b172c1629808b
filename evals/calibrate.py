"""Carrying the two cosine thresholds of the answer stage over to another embedding model.

``retrieval.min_relevance`` (the refusal gate) and ``retrieval.min_support`` (a claim
supported by a sentence in another language) were set by hand for e5-small. Cosines of
another model live on another scale, so each is transferred by keeping the rate it lets
through on SQuAD-it dev data the same as e5's at its own threshold, and the cost on the
other side is reported:

- gate: a dev question against the sentences of its gold paragraph (should pass) and
  against the sentences of another article (off-topic: should be refused);
- support: the English sentence holding a question's answer against the Italian sentence
  holding it (a true translation: supported) and against the best other sentence of the
  same Italian paragraph (related, not supporting).

Both scores are the best cosine over the sentences concerned, as the product computes them.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.text.sentences import sentence_spans

from .data import Paragraph, SquadQuestion
from .retrieval import LANGS, cached_encode, chunk_corpus, chunk_sentences, model_embedder, model_settings

REFERENCE = "default"  # the model whose hand-set thresholds are carried over
# Off-topic partner of article i: article (i + OFFSET) in sorted order, a fixed, unrelated pick.
OFFSET = 7


@dataclass
class Scores:
    answerable: np.ndarray  # gate score of each question (both languages) on its own paragraph
    off_topic: np.ndarray  # ... on another article
    support_true: np.ndarray  # en answer sentence vs the it sentence holding the answer
    support_false: np.ndarray  # ... vs the best other it sentence of the paragraph


def pass_rate(scores: np.ndarray, threshold: float) -> float:
    return float((scores >= threshold).mean()) if len(scores) else 0.0


def matching_threshold(scores: np.ndarray, rate: float) -> float:
    """The threshold letting ``rate`` of ``scores`` through (the highest such, to 3 decimals)."""
    if not len(scores):
        return 0.0
    ordered = np.sort(scores)[::-1]
    keep = min(len(ordered) - 1, max(0, round(rate * len(ordered)) - 1))
    return float(np.floor(ordered[keep] * 1000) / 1000)


def english_contexts(path: Path) -> dict[str, tuple[str, int]]:
    """English question -> (its paragraph, where its first answer starts), from the SQuAD v1.1 file."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    out: dict[str, tuple[str, int]] = {}
    for article in data["data"]:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                if qa.get("answers"):
                    out.setdefault(qa["question"].strip(), (p["context"], int(qa["answers"][0]["answer_start"])))
    return out


def _sentence_at(text: str, at: int) -> str | None:
    for s, e in sentence_spans(text):
        if s <= at < e:
            return text[s:e]
    return None


def support_pairs(
    corpus: Sequence[Paragraph], questions: Sequence[SquadQuestion], english: dict[str, tuple[str, int]]
) -> list[tuple[str, str, list[str]]]:
    """(English answer sentence, Italian answer sentence, the paragraph's other Italian sentences)."""
    by_pid = {p.pid: p for p in corpus}
    pairs = []
    for q in questions:
        found = english.get(q.question_en.strip())
        para = by_pid.get(q.pid)
        if found is None or para is None or not q.answers_it:
            continue
        at = para.context.find(q.answers_it[0])
        en, it = _sentence_at(found[0], found[1]), _sentence_at(para.context, at) if at >= 0 else None
        others = [para.context[s:e] for s, e in sentence_spans(para.context)]
        others = [o for o in others if o != it and q.answers_it[0] not in o]
        if en and it and others:
            pairs.append((en, it, others))
    return pairs


def model_scores(
    embedder: Any,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    pairs: list[tuple[str, str, list[str]]],
    settings: Settings,
    cache_dir: Path,
    progress: bool,
) -> Scores:
    chunks = chunk_corpus(corpus, settings)
    sentences = chunk_sentences(chunks)  # the retrieval benchmark's list: its vectors are cached
    svec = cached_encode(cache_dir, embedder, sentences, queries=False, progress=progress)
    row = {s: i for i, s in enumerate(sentences)}
    texts = [q.question(lang) for lang in LANGS for q in questions]
    qvec = dict(zip(texts, cached_encode(cache_dir, embedder, texts, queries=True, progress=progress), strict=True))
    of_pid: dict[str, set[int]] = defaultdict(set)
    of_title: dict[str, set[int]] = defaultdict(set)
    title = {p.pid: p.title for p in corpus}
    for c in chunks:
        rows = {row[c.text[s:e]] for s, e in sentence_spans(c.text)}
        of_pid[c.doc_id] |= rows
        of_title[title[c.doc_id]] |= rows
    titles = sorted(of_title)
    partner = {t: titles[(i + OFFSET) % len(titles)] for i, t in enumerate(titles)}
    answerable, off_topic = [], []
    for lang in LANGS:
        for q in questions:
            v = qvec[q.question(lang)]
            answerable.append(float((svec[sorted(of_pid[q.pid])] @ v).max()))
            off_topic.append(float((svec[sorted(of_title[partner[q.title]])] @ v).max()))
    flat = list(dict.fromkeys(t for en, it, others in pairs for t in (en, it, *others)))
    fvec = dict(zip(flat, cached_encode(cache_dir, embedder, flat, queries=False, progress=progress), strict=True))
    true_s = [float(fvec[en] @ fvec[it]) for en, it, _ in pairs]
    false_s = [max(float(fvec[en] @ fvec[o]) for o in others) for en, _, others in pairs]
    return Scores(np.array(answerable), np.array(off_topic), np.array(true_s), np.array(false_s))


def calibrate(
    settings: Settings,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    english_file: Path,
    keys: Sequence[str],
    *,
    cache_dir: Path,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Each model's thresholds matching the reference model's pass rates, with what they cost."""
    pairs = support_pairs(corpus, questions, english_contexts(english_file))
    log(f"{len(questions)} questions x {len(LANGS)} languages; {len(pairs)} answer-sentence translation pairs")
    loaded: dict[str, Any] = {}
    scores: dict[str, Scores] = {}
    ids: dict[str, str] = {}
    thresholds: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys([REFERENCE, *keys]):
        embedder = model_embedder(settings, key, loaded)
        ids[key] = embedder.model_id
        scores[key] = model_scores(embedder, corpus, questions, pairs, settings, cache_dir, progress)
        cfg = model_settings(settings, key).retrieval
        thresholds[key] = {"min_relevance": cfg.min_relevance, "min_support": cfg.min_support}
        log(f"{key}: scored")
    ref, ref_t = scores[REFERENCE], thresholds[REFERENCE]
    gate_rate = pass_rate(ref.answerable, ref_t["min_relevance"])
    support_rate = pass_rate(ref.support_true, ref_t["min_support"])
    out: dict[str, Any] = {"questions": len(questions), "pairs": len(pairs), "models": {}}
    for key, s in scores.items():
        gate = ref_t["min_relevance"] if key == REFERENCE else matching_threshold(s.answerable, gate_rate)
        support = ref_t["min_support"] if key == REFERENCE else matching_threshold(s.support_true, support_rate)
        out["models"][key] = {
            "model_id": ids[key],
            "configured": thresholds[key],
            "min_relevance": gate,
            "answerable_pass": round(pass_rate(s.answerable, gate), 4),
            "off_topic_refused": round(1 - pass_rate(s.off_topic, gate), 4),
            "at_configured_answerable_pass": round(pass_rate(s.answerable, thresholds[key]["min_relevance"]), 4),
            "at_configured_off_topic_refused": round(1 - pass_rate(s.off_topic, thresholds[key]["min_relevance"]), 4),
            "min_support": support,
            "true_supported": round(pass_rate(s.support_true, support), 4),
            "false_supported": round(pass_rate(s.support_false, support), 4),
            "score_quantiles": {
                name: [round(float(x), 3) for x in np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])]
                for name, v in vars(s).items()
            },
        }
    return out
