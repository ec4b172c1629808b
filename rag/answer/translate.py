"""Question translation, so a question meets articles written in another language.

Dense retrieval already crosses languages, but BM25 cannot: an English question
shares only names and numbers with Italian text. The chat model translates the
question into the articles' language and the retriever searches both wordings
(on the 800 SQuAD-it dev questions, en→it recall@1 0.760 → 0.799 and
recall@5 0.936 → 0.939: docs/benchmarks.md).
A translation that is empty, too long, in the wrong language or looks like an
answer is dropped: retrieval then simply uses the question alone.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from ..errors import BackendTimeoutError
from ..llm import ChatBackend
from ..text.language import SUPPORTED, detect_language
from .prompts import TRANSLATE_EXAMPLES, TRANSLATE_SYSTEM

# One line, no citation brackets; the stop at a newline ends it.
TRANSLATE_GRAMMAR = r"root ::= [^\n\[\]]{3,300}"
MAX_TOKENS = 80


def translation_messages(question: str, source: str, target: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(TRANSLATE_SYSTEM[target])]
    for en, it in TRANSLATE_EXAMPLES:
        pair = {"en": en, "it": it}
        messages += [HumanMessage(pair[source]), AIMessage(pair[target])]
    return [*messages, HumanMessage(question)]


def acceptable(question: str, translation: str, target: str) -> bool:
    """A plausible translation: one line of sensible length, in ``target``, not the question itself."""
    t = translation.strip()
    if not t or "\n" in t or "[" in t or t.casefold() == question.strip().casefold():
        return False
    if len(t) > 2 * len(question) + 40:  # an answer or an explanation, not a translation
        return False
    if len(t) < len(question) / 2:  # cut short (a long question meets the length cap): half a question misleads
        return False
    return detect_language(t) in (target, "und")


def translate_question(
    chat: ChatBackend, question: str, source: str, target: str, timeout_s: float = 60.0
) -> str | None:
    """``question`` translated from ``source`` into ``target``, or None when no good translation came."""
    if source == target or source not in SUPPORTED or target not in SUPPORTED:
        return None
    try:
        text = chat.complete(
            translation_messages(question, source, target),
            timeout_s=timeout_s, grammar=TRANSLATE_GRAMMAR, max_tokens=MAX_TOKENS, stop=["\n"],
        )
    except BackendTimeoutError:  # too slow to help: search with the question alone
        return None
    text = text.strip().strip('"«»').strip()
    return text if acceptable(question, text, target) else None
