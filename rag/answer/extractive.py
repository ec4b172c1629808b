"""The extractive answer: the retrieved sentences that best answer the question, quoted.

No LLM: always available, and the fallback when the LLM fails. Sentences are
ranked by embedding similarity to the question plus keyword overlap.
"""

from __future__ import annotations

import re

from ..corpus.documents import is_metadata_line
from .citations import Support, SupportChecker, lexical_support
from .prompts import EXTRACTIVE_INTRO

MAX_SENTENCES = 2
# A second sentence is added only when nearly as good as the first.
SECOND_SENTENCE_MARGIN = 0.015
# Titles and headings match questions on surface words; prefer real sentences.
SHORT_SENTENCE_WORDS = 8
SHORT_SENTENCE_PENALTY = 0.04
# The article's "date YYYY-MM Title" line answers when-questions; for anything else its
# title words out-score the sentence that answers ("Who signed the pact?" -> the title).
METADATA_LINE_PENALTY = 0.1
_DATE_QUESTION = re.compile(
    r"\b(when|date|published|year|month|quando|data|pubblicat\w*|anno|mese)\b", re.IGNORECASE
)


def pick_sentences(question: str, checker: SupportChecker) -> list[Support]:
    """The best one or two sentences of the passages, in passage order."""
    if not checker.hits:
        return []
    sims = checker.question_scores(question)
    asks_date = bool(_DATE_QUESTION.search(question))
    scored = []
    for j, (hit, s, e) in enumerate(checker.sentence_owners):
        sentence = checker.hits[hit].text[s:e]
        lex = lexical_support(question, sentence)
        penalty = SHORT_SENTENCE_PENALTY if len(sentence.split()) <= SHORT_SENTENCE_WORDS else 0.0
        if not asks_date and is_metadata_line(sentence):
            penalty += METADATA_LINE_PENALTY
        scored.append(Support(hit, s, e, float(sims[j]) + 0.1 * lex - 0.005 * hit - penalty))
    scored.sort(key=lambda sup: -sup.score)
    chosen = [scored[0]]
    for sup in scored[1:MAX_SENTENCES + 2]:
        if len(chosen) < MAX_SENTENCES and sup.score >= scored[0].score - SECOND_SENTENCE_MARGIN:
            chosen.append(sup)
    return sorted(chosen, key=lambda sup: (sup.hit, sup.start))


def extractive_claims(question: str, checker: SupportChecker, language: str) -> list[tuple[str, list[Support]]]:
    """Claims ready for ``citations.render``: quoted sentences with their source."""
    claims = []
    for i, sup in enumerate(pick_sentences(question, checker)):
        quote = checker.hits[sup.hit].text[sup.start : sup.end]
        prefix = f"{EXTRACTIVE_INTRO[language]} " if i == 0 else ""
        claims.append((f"{prefix}«{quote}»", [sup]))
    return claims
