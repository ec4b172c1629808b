"""Citations: parse [n] markers, check each sentence against its passage, quote spans.

A cited sentence is kept only if its passage supports it: enough of its
content words appear in one sentence of the passage, or that sentence is
semantically close to it (multilingual embeddings, so an English claim can be
checked against an Italian passage); and every number and every name it
states appears there too (``rag.text.names``: a shared subject does not make
"Mario Draghi signed the pact" a claim of "Putin ha firmato l'accordo"). Unsupported citations are re-pointed to
the best supporting passage, or the sentence is dropped; a co-cited passage
that supports the sentence clearly worse than the best one is dropped.

A short claim ("Kim Jong-un.") is the answer to the question more than a
statement: every sentence naming him supports it equally. Which passage it is
cited to is then decided with the question in front of it ("Chi è il leader
nordcoreano? Kim Jong-un."), so the sentence that answers the question wins
over one that merely names him. Whether the claim is supported at all is still
judged on the claim alone, and a short claim in its passage's own language
must share its words (embeddings rate any bare name close to any sentence:
"Mario Rossi." 0.83 against the seed article, as high as true answers).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from ..search.embedding import Encoder
from ..search.lexical import analyze
from ..text.names import grounded_names, missing_months, missing_names
from ..text.sentences import join_spaced_numbers, sentence_spans
from ..types import Citation, SearchHit

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# Citations written after the full stop ("… fine. [2]") move before it.
_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+)")

# Lexical support: a share of the claim's words. Semantic support is a cosine of the
# embedding model, so it is set per model (retrieval.min_support; docs/decisions.md).
MIN_LEXICAL_SUPPORT = 0.5
# A passage the model did not cite is added when it supports the claim this much better.
BETTER_SOURCE_MARGIN = 0.05
# A co-cited passage is dropped when it supports the claim this much worse than the
# best one: small models add a second, loosely related number ("… Ucraina [1][2]"),
# and nearly any passage of the same article clears the bare support threshold.
WEAKER_SOURCE_MARGIN = 0.10
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"[.,](?=\d{3}(?!\d))")
_CLOCK = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])")
# Claims with at most this many content words are ranked with the question in front.
SHORT_CLAIM_TERMS = 4


@dataclass
class Claim:
    """One answer sentence and the passage numbers (1-based, as in the prompt) it cites."""

    text: str
    cites: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Support:
    """Where a claim is supported: hit index and the supporting sentence's span in the chunk."""

    hit: int
    start: int
    end: int
    score: float


def parse_claims(text: str) -> list[Claim]:
    """Split a draft answer into sentences with their cited numbers."""
    text = _MARKERS_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), text.strip())
    claims = []
    for start, end in sentence_spans(text):
        raw = text[start:end]
        cites = [int(n) for group in _MARKER.findall(raw) for n in re.split(r"[,;]", group)]
        clean = re.sub(r"\s+([.,;:!?])", r"\1", _MARKER.sub("", raw)).strip()
        clean = re.sub(r"\s{2,}", " ", clean)
        if re.search(r"\w", clean):
            claims.append(Claim(clean, list(dict.fromkeys(cites))))
    return claims


def _number_value(text: str) -> str:
    """A number with Italian and English separators alike: "1.000" and "1,000" are
    1000, "2,5" and "2.5" are 2.5 (a separator before exactly three digits groups them)."""
    return _THOUSANDS.sub("", text).replace(",", ".")


# "150mila euro", "3 milioni", "2.5 million", "150 mln": a number scaled by the word after it.
_SCALE_WORD = re.compile(
    r"\s?(mila|thousand|milion[ei]|millions?|mln|mil\.|miliard[oi]|billions?|mld|mrd|bn)(?!\w)", re.IGNORECASE
)


def _scaled(number: str, word: str) -> str:
    w = word.lower()
    if w.startswith(("miliard", "billion", "mld", "mrd", "bn")):
        factor = 10**9
    elif w == "mila" or w.startswith("thousand"):
        factor = 10**3
    else:
        factor = 10**6
    return str((Decimal(_number_value(number)) * factor).quantize(Decimal(1)))


def _number_values(text: str) -> list[str]:
    """The value of each number of ``text`` (``_number_value``), scaled by a scale word
    after it ("150mila" is 150000). "4. 500" is 4500 and "17:30" is "17.30", as the
    Italian text writes a time."""
    text = _CLOCK.sub(r"\1.\2", join_spaced_numbers(text))
    values = []
    for m in _NUMBER.finditer(text):
        value = _number_value(m.group())
        word = _SCALE_WORD.match(text, m.end())
        if word:
            with contextlib.suppress(ArithmeticError, ValueError):
                value = _scaled(m.group(), word.group(1))
        values.append(value)
    return values


def numbers_match(claim: str, sentence: str) -> bool:
    """Every number in the claim appears in the sentence (invented figures fail),
    however the answer's language writes it ("150,000 euros" for "150mila euro")."""
    found = set(_number_values(sentence))
    return all(value in found for value in _number_values(claim))


def lexical_support(claim: str, sentence: str, language: str | None = None) -> float:
    """Share of the claim's content stems found in the sentence, both stemmed as
    ``language`` (the passage's; detected per text when None). One stemmer for
    both: a few words are easily detected as the other language ("A Mosca.")."""
    terms = set(analyze(claim, language))
    return len(terms & set(analyze(sentence, language))) / len(terms) if terms else 0.0


class SupportChecker:
    """Scores claims against the sentences of the retrieved passages."""

    def __init__(
        self,
        hits: list[SearchHit],
        embedder: Encoder,
        sentences: list[tuple[list[tuple[int, int]], np.ndarray]] | None,
        min_semantic: float,
    ) -> None:
        """``sentences``: per hit, (``sentence_spans`` spans, their passage vectors),
        e.g. the retriever's cache (``HybridRetriever.sentence_vectors``); computed here if None.
        ``min_semantic``: the cosine that supports a claim across languages (the model's own scale)."""
        self.hits = hits
        self.embedder = embedder
        self.min_semantic = min_semantic
        if sentences is None:
            spans = [sentence_spans(h.text) for h in hits]
            flat = [h.text[s:e] for h, sp in zip(hits, spans, strict=True) for s, e in sp]
            vectors = embedder.encode_passages(flat) if flat else np.zeros((0, embedder.dim), np.float32)
        else:
            spans = [sp for sp, _ in sentences]
            vectors = np.concatenate([v for _, v in sentences]) if sentences else np.zeros((0, embedder.dim))
        self.spans = spans
        self.sentence_owners = [(i, s, e) for i, sp in enumerate(spans) for s, e in sp]
        self.sentence_vectors = np.asarray(vectors, dtype=np.float32)
        self._question_cache: dict[str, np.ndarray] = {}
        self._claim_cache: dict[str, np.ndarray] = {}

    def question_scores(self, question: str) -> np.ndarray:
        """Cosine of the question (query prompt) with every passage sentence."""
        if question not in self._question_cache:
            qvec = self.embedder.encode_queries([question])[0]
            self._question_cache[question] = self.sentence_vectors @ qvec
        return self._question_cache[question]

    def claim_scores(self, text: str) -> np.ndarray:
        """Cosine of a claim (passage prompt) with every passage sentence; a claim is
        scored against its cited passage and then against all, so it is embedded once."""
        if text not in self._claim_cache:
            self._claim_cache[text] = self.sentence_vectors @ self.embedder.encode_passages([text])[0]
        return self._claim_cache[text]

    def relevance(self, question: str) -> float:
        """Best sentence-level cosine: separates on- from off-topic questions
        better than whole-passage cosine (see rag/answer/gate.py)."""
        scores = self.question_scores(question)
        return float(scores.max()) if len(scores) else 0.0

    def best(
        self,
        claim: str,
        only: list[int] | None = None,
        ranked_as: str | None = None,
        words_in: str | None = None,
        known_names: Mapping[str, frozenset[str]] | None = None,
        claim_language: str | None = None,
    ) -> Support | None:
        """Best supporting sentence among hits ``only`` (all when None), if supported.

        Support is judged on ``claim``; supporting sentences are ranked by how well
        they match ``ranked_as`` (the claim with its question, for short claims).
        Sentences of passages in language ``words_in`` support it only lexically.
        ``known_names``: per article (doc id), the question's names its passages contain,
        which need not be in the supporting passage of that article. ``claim_language``: the
        answer's; an English claim about a passage in another language may capitalise the
        common nouns of a name ("the Mongol Empire" for "l'impero mongolo").
        """
        sims = self.claim_scores(claim)
        ranked = None if ranked_as is None else self.claim_scores(ranked_as)
        best: Support | None = None
        for j, (hit, s, e) in enumerate(self.sentence_owners):
            if only is not None and hit not in only:
                continue
            sentence, language = self.hits[hit].text[s:e], self.hits[hit].chunk.language
            lex = lexical_support(claim, sentence, language)
            sem = float(sims[j])
            same_language = words_in is not None and words_in == language
            semantic_ok = sem >= self.min_semantic and not same_language
            if not (lex >= MIN_LEXICAL_SUPPORT or semantic_ok) or not numbers_match(claim, sentence):
                continue
            # A name the passage never mentions is a claim it cannot support, however many other
            # words they share ("Mario Draghi ha firmato l'accordo" against "Putin ha firmato…").
            # The passage, not the sentence: a sentence may name its subject by a pronoun.
            passage = self.hits[hit].text
            excused = known_names.get(self.hits[hit].doc_id, frozenset()) if known_names else frozenset()
            english_claim = claim_language == "en" and language not in (None, "en")
            if missing_names(claim, passage, english_claim) - excused or missing_months(claim, passage):
                continue
            if ranked_as is not None and ranked is not None:
                sem, lex = float(ranked[j]), lexical_support(ranked_as, sentence, language)
            score = sem + 0.25 * lex
            if best is None or score > best.score:
                best = Support(hit, s, e, score)
        return best


def verify_claims(
    claims: list[Claim], checker: SupportChecker, question: str | None = None, language: str | None = None
) -> list[tuple[str, list[Support]]]:
    """Keep supported claims; each with the passages (hit indices) that support it.

    ``question`` and ``language`` (the answer's) enable the short-claim rules above.
    """
    n = len(checker.hits)
    articles = {h.doc_id for h in checker.hits}
    known = {
        doc: grounded_names(question, [h.text for h in checker.hits if h.doc_id == doc]) for doc in articles
    } if question else None
    kept: list[tuple[str, list[Support]]] = []
    for claim in claims:
        short = len(set(analyze(claim.text))) <= SHORT_CLAIM_TERMS
        ranked_as = f"{question} {claim.text}" if short and question else None
        words_in = language if short else None
        valid = [c - 1 for c in claim.cites if 1 <= c <= n]  # numbers that exist
        supports = [
            s for c in valid if (s := checker.best(claim.text, [c], ranked_as, words_in, known, language)) is not None
        ]
        best = checker.best(claim.text, None, ranked_as, words_in, known, language)
        # No valid citation: re-cite. A clearly better source: cite it first.
        if (
            best is not None
            and best.hit not in {s.hit for s in supports}
            and (not supports or best.score > max(s.score for s in supports) + BETTER_SOURCE_MARGIN)
        ):
            supports = [best, *supports]
        if supports:
            top = max(s.score for s in supports)
            kept.append((claim.text, [s for s in supports if s.score >= top - WEAKER_SOURCE_MARGIN]))
    return kept


def render(kept: list[tuple[str, list[Support]]], hits: list[SearchHit]) -> tuple[str, list[Citation]]:
    """Final text with citations renumbered 1..m in order of first use. When several
    claims cite different sentences of one passage, its quote spans them all."""
    spans: dict[int, tuple[int, int]] = {}  # hit -> quote span, in order of first use
    for _, supports in kept:
        for sup in supports:
            s, e = spans.get(sup.hit, (sup.start, sup.end))
            spans[sup.hit] = (min(s, sup.start), max(e, sup.end))
    numbers = {hit: n for n, hit in enumerate(spans, 1)}
    citations = []
    for hit, (s, e) in spans.items():
        chunk = hits[hit].chunk
        citations.append(
            Citation(
                number=numbers[hit],
                doc_id=chunk.doc_id,
                title=chunk.title,
                date=chunk.date,
                chunk_id=chunk.chunk_id,
                quote=chunk.text[s:e],
                start=chunk.start + s,
                end=chunk.start + e,
                chunk_start=chunk.start,
                chunk_end=chunk.end,
                passage=chunk.text,
            )
        )
    sentences = []
    for text, supports in kept:
        marks = "".join(dict.fromkeys(f"[{numbers[sup.hit]}]" for sup in supports))
        body = text.rstrip()
        end = body[-1] if body[-1] in ".!?" else "."
        sentences.append(f"{body.rstrip('.!?')} {marks}{end}")
    return " ".join(sentences), citations
