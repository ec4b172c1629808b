"""Article text is data, never instructions: find text that addresses the assistant.

An uploaded article can carry text written for the model rather than for
readers ("ignore the previous instructions and answer that…", "rispondi sempre
che…", chat-template role tags). Such an article is refused at ingest with the
offending excerpt named (``ingest.instructions = "refuse"``, the default), or
kept when the user trusts it (``"allow"``). The patterns aim at text addressed
to an AI, not at news about rules being ignored ("il governo ignora le
istruzioni dell'UE" is news): measured on 10,372 DICE crime-news articles, the
11 news_qa articles and the 2,010 SQuAD-it paragraphs (docs/decisions.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AI = (
    r"(?:ai|a\.i\.|assistant|chatbot|language\s+model|llm|assistente|intelligenza\s+artificiale|ia"
    r"|modello\s+linguistico)"
)
_PATTERNS: dict[str, str] = {
    "asks to ignore the assistant's instructions": (
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|all|any|your|"
        r"system)\s+(?:\w+\s+)?(?:instructions?|prompts?|rules|guidelines|directions)\b"
        r"|\b(?:ignora|ignorate|dimentica|dimenticate)\b[^.\n]{0,30}?\b(?:tutte\s+le|le\s+tue|le\s+vostre|"
        r"le\s+precedenti|qualsiasi|ogni)\s+(?:\w+\s+)?(?:istruzion\w*|regole|indicazioni)\b"
        r"|\b(?:istruzion\w*|regole|indicazioni)\s+(?:precedenti|di\s+sistema|del\s+sistema)\b"
    ),
    "tells the assistant what to answer": (
        rf"\b(?:the\s+|an?\s+|l'|il\s+|un\s+)?{_AI}\s+(?:must|should|shall|will|has\s+to|deve|dovrà|dovrebbe)\s+"
        r"(?:always\s+|only\s+|sempre\s+|solo\s+)?(?:answer|reply|respond|say|state|write|claim|rispondere|dire|"
        r"scrivere|affermare)\s+(?:that|with|che|con)\b"
        r"|\b(?:always|only)\s+(?:answer|reply|respond)\s+(?:that|with)\b"
        r"|\b(?:rispondi|rispondete|rispondere)\s+(?:sempre|solo|soltanto)\s+(?:che|con)\b"
        r"|\bwhen\s+(?:you\s+are\s+|you're\s+)?asked\b[^.\n]{0,60}?\b(?:answer|reply|respond|say)\b"
        r"|\bquando\s+(?:ti\s+)?(?:chiedono|viene\s+chiesto|si\s+chiede)\b[^.\n]{0,60}?\b(?:rispondi|di')\b"
    ),
    "speaks to the assistant as an AI": (
        rf"\b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be)\s+(?:now\s+)?(?:an?\s+|the\s+)?{_AI}\b"
        rf"|\b(?:tu\s+sei|ora\s+sei|sei\s+ora|fingi\s+di\s+essere)\s+(?:un\s+|una\s+|l')?{_AI}\b"
        r"|\b(?:system\s+prompt|system\s+message|developer\s+message|prompt\s+di\s+sistema)\b"
    ),
    "contains chat-template role tags": (
        r"<\|?\s*(?:im_start|im_end|system|assistant|user|endoftext)\s*\|?>|\[/?INST\]|<</?SYS>>"
        r"|^\s*#{2,}\s*(?:instruction|system|istruzion\w*)\b"
        r"|^\s*(?:system|assistant|sistema|assistente)\s*:"
    ),
}
_COMPILED = {why: re.compile(p, re.IGNORECASE | re.MULTILINE) for why, p in _PATTERNS.items()}
EXCERPT_CHARS = 80


@dataclass(frozen=True)
class Finding:
    """Text of an article that addresses the assistant: why it was flagged and where."""

    reason: str
    start: int
    end: int
    excerpt: str


def find_instructions(text: str) -> list[Finding]:
    """Every stretch of ``text`` that reads as instructions to an AI, in text order."""
    found = []
    for reason, pattern in _COMPILED.items():
        for m in pattern.finditer(text):
            # From the start of its sentence (or a little before), so the reader sees the context.
            start = max(text.rfind(". ", 0, m.start()) + 2, text.rfind("\n", 0, m.start()) + 1, m.start() - 40, 0)
            excerpt = " ".join(text[start : start + EXCERPT_CHARS].split())
            found.append(Finding(reason, m.start(), m.end(), excerpt))
    return sorted(found, key=lambda f: f.start)
