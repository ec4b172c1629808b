"""Follow-up questions: "E cosa ha detto di lui?" rewritten as a standalone question for retrieval."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import HumanMessage, SystemMessage

from ..errors import BackendError
from ..llm import ChatBackend
from .prompts import CONDENSE_SYSTEM, CONDENSE_USER

History = Sequence[tuple[str, str]]

# Not "gli", "that", "there": as an article, a conjunction and "there is" they mostly
# appear in questions that stand alone ("Chi sono gli alleati della Russia?").
_FOLLOW_UP_WORDS = frozenset(
    """lui lei loro esso essa essi esse questo questa questi queste quello quella quelli quelle ciò
    suo sua suoi sue ne he she him her his hers they them their theirs it its this these
    those""".split()
)
_FOLLOW_UP_START = re.compile(r"^(e|ed|ma|invece|and|but|what about|how about|also|anche)\b", re.IGNORECASE)
CONDENSE_GRAMMAR = r'root ::= [^\n?]{3,250} "?"'


def looks_like_follow_up(question: str) -> bool:
    """Short questions leaning on the conversation ("E cosa ha detto di lui?")."""
    words = re.findall(r"[^\W\d_]+", question.lower())
    starts = bool(_FOLLOW_UP_START.match(question.strip()))
    return len(words) <= 12 and (starts or any(w in _FOLLOW_UP_WORDS for w in words))


def condense_question(
    question: str, history: History, chat: ChatBackend | None, language: str, timeout_s: float
) -> str:
    """A standalone version of a follow-up question, for retrieval.

    Self-contained questions are searched as they are; follow-ups are rewritten
    by the chat model (constrained to one question), or, without a model, joined
    to the previous question so its names are searched too.
    """
    turns = [(u, a) for u, a in history if u][-3:]
    if not turns or not looks_like_follow_up(question):
        return question
    if chat is not None:
        convo = "\n".join(f"- {u}\n  → {a[:300]}" for u, a in turns)
        messages = [
            SystemMessage(CONDENSE_SYSTEM[language]),
            HumanMessage(CONDENSE_USER[language].format(history=convo, question=question)),
        ]
        try:
            reply = chat.complete(messages, timeout_s=timeout_s, grammar=CONDENSE_GRAMMAR, max_tokens=60)
            lines = reply.strip().splitlines()
            rewritten = lines[0].strip().strip('"«»') if lines else ""
            if 5 <= len(rewritten) <= 300 and rewritten.endswith("?"):
                return rewritten
        except BackendError:
            pass
    return f"{turns[-1][0]} {question}"
