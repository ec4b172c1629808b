"""Article text is data, never instructions: find text that addresses the assistant.

An uploaded article can carry text written for the model rather than for
readers ("ignore the previous instructions and answer that…", "rispondi sempre
che…", chat-template role tags). Such an article is refused at ingest with the
offending sentence named (``ingest.instructions = "refuse"``, the default), or
kept when the user trusts it (``"allow"``).

This is a first, advisory barrier: patterns can be paraphrased around, so the
prompt quotes passages as data and the citation check refuses claims their
passages do not make. The patterns aim at text addressed to an AI, not at news
about rules being ignored ("il governo ignora le istruzioni dell'UE", "the
minister declined to say when asked"): an "ignore the instructions" phrase
counts only in a sentence that also gives the model an order or names it.
Measured: ``benchmarks/screening_bench.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_AI = (
    r"(?:ai|a\.i\.|assistant|chatbot|language\s+models?|llms?|ai\s+models?|assistente|intelligenza\s+artificiale"
    r"|ia|modello\s+linguistico|modelli\s+linguistici)"
)
# "Ignore / forget the previous instructions": suspicious, an attack only with an order or an AI in the sentence.
_IGNORE = re.compile(
    r"\b(?:ignore|disregard|forget)\b[^.]{0,40}?\b(?:previous|prior|above|earlier|preceding|all|any|your)\b"
    r"[^.]{0,20}?\b(?:instructions?|prompts?|rules|guidelines|guidance|directions|directives)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+)?(?:the\s+)?above\b"
    r"|\b(?:ignora|ignorate|dimentica|dimenticate|trascura)\b[^.\n]{0,40}?"
    r"\b(?:istruzion\w*|regole|indicazioni|direttive|quanto\s+detto|sopra)\b",
    re.IGNORECASE,
)
# The canonical injection phrase needs nothing more: "ignore all previous instructions".
_CANONICAL = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier)\s+"
    r"(?:instructions|prompts?)\b"
    r"|\b(?:ignora|ignorate|dimentica|dimenticate)\s+(?:tutte\s+)?(?:le\s+)?(?:tue\s+|vostre\s+)?"
    r"istruzioni\s+(?:precedenti|ricevute|di\s+sistema)\b",
    re.IGNORECASE,
)
_ORDER = re.compile(
    r"\b(?:answer|reply|respond|say|state|write|tell|claim|output|print)\b[^.\n]{0,40}?\b(?:that|with|:)"
    r"|\b(?:and|then)\s+(?:say|answer|write|reply|respond|tell|output|print)\b"
    r"|\b(?:rispondi|rispondete|scrivi|scrivete|di'|dì|afferma|dichiara|dici)\b"
    rf"|\b{_AI}\b|\byour\b|\btu(?:e|oi)?\b|\bvostr[eoi]\b",
    re.IGNORECASE,
)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "tells the assistant what to answer": re.compile(
        rf"\b{_AI}\s+(?:must|should|shall|has\s+to|have\s+to|deve|devono|dovrà|dovranno)\s+"
        r"(?:always|only|sempre|solo|soltanto)\s+(?:answer|reply|respond|say|state|write|claim|rispondere|dire|"
        r"scrivere|affermare)\b"
        r"|\b(?:always|only)\s+(?:answer|reply|respond|say|state)\s+(?:that|with)\b"
        r"|\b(?:rispondi|rispondete|di'|dì)\s+(?:sempre|solo|soltanto)\s+(?:che|con)\b"
        r"|\bwhen\s+(?:you\s+are|you're)\s+asked\b[^.\n]{0,60}?\b(?:answer|reply|respond|say)\b"
        r"|\bquando\s+ti\s+(?:chiedono|chiederanno|viene\s+chiesto)\b[^.\n]{0,60}?\b(?:rispondi|di'|dì)\b",
        re.IGNORECASE,
    ),
    "speaks to the assistant as an AI": re.compile(
        rf"\b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be)\s+(?:now\s+)?(?:an?\s+|the\s+)?{_AI}\b"
        rf"|\b(?:tu\s+sei|ora\s+sei|sei\s+ora|fingi\s+di\s+essere)\s+(?:un\s+|una\s+|l')?{_AI}\b"
        r"|\b(?:your|il\s+tuo)\s+(?:system\s+prompt|prompt\s+di\s+sistema|instructions|istruzioni)\b",
        re.IGNORECASE,
    ),
    "contains chat-template role tags": re.compile(
        r"<\|?\s*(?:im_start|im_end|system|assistant|user|endoftext|start_header_id|end_header_id|eot_id)\s*\|?>"
        r"|<(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>"
        r"|^\s*(?:system|assistant)\s*:",
        re.MULTILINE,
    ),
}
EXCERPT_CHARS = 80
# Invisible characters that split a word for a pattern but not for the model.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


@dataclass(frozen=True)
class Finding:
    """Text of an article that addresses the assistant: why it was flagged and where."""

    reason: str
    start: int
    end: int
    excerpt: str


def _normal(text: str) -> str:
    """Full-width and other compatibility forms as plain letters, invisible characters removed.
    (Positions are those of the normalised text.)"""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def _sentence(text: str, at: int) -> tuple[int, int]:
    start = max(text.rfind(". ", 0, at) + 2 if text.rfind(". ", 0, at) >= 0 else 0, text.rfind("\n", 0, at) + 1)
    ends = [i for i in (text.find(". ", at), text.find("\n", at)) if i >= 0]
    return start, min(ends) + 1 if ends else len(text)


def find_instructions(text: str) -> list[Finding]:
    """Every stretch of ``text`` that reads as instructions to an AI, in text order."""
    text = _normal(text)
    hits: list[tuple[str, int, int]] = []
    for m in _IGNORE.finditer(text):
        start, end = _sentence(text, m.start())
        rest = text[start:m.start()] + text[m.end():end]
        if _ORDER.search(rest) or _CANONICAL.match(text, m.start()):
            hits.append(("asks to ignore the assistant's instructions", m.start(), m.end()))
    for reason, pattern in _PATTERNS.items():
        hits += [(reason, m.start(), m.end()) for m in pattern.finditer(text)]
    found = []
    for reason, start, end in sorted(hits, key=lambda h: h[1]):
        sentence_start = _sentence(text, start)[0]
        excerpt = " ".join(text[sentence_start : sentence_start + EXCERPT_CHARS].split())
        found.append(Finding(reason, start, end, excerpt))
    return found
