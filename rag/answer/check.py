"""Does the cited text answer the question? One yes/no question to the chat model.

The support check (rag/answer/citations.py) makes sure each cited sentence says what
the answer claims; it cannot tell whether that answers the question. When the
passage holding the answer is missing, a small model answers from a related one
("When did ESPN take over ABC's sports division?" -> "in 1977") with claims
its passage does support. Shown only the cited sentences and the question, the
same model says "no" to many of those answers and "yes" to right ones
(measured: ``rag eval answers --hard-negatives`` and the article sets).
"""

from __future__ import annotations

import re

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from ..errors import BackendError
from ..llm import ChatBackend
from .prompts import ANSWER_CHECK_SYSTEM, ANSWER_CHECK_USER

CHECK_GRAMMAR = 'root ::= "yes" | "no"'
_FIRST_WORD = re.compile(r"[^\W_]+")
_VERDICTS = {"yes": True, "si": True, "sì": True, "no": False}


def answer_check_messages(question: str, quotes: list[str]) -> list[BaseMessage]:
    text = " ".join(f"«{q}»" for q in quotes)
    return [SystemMessage(ANSWER_CHECK_SYSTEM), HumanMessage(ANSWER_CHECK_USER.format(quotes=text, question=question))]


def cited_text_answers(chat: ChatBackend, question: str, quotes: list[str], timeout_s: float) -> bool | None:
    """The model's verdict on whether ``quotes`` answer ``question``; None when it gave
    none (a failure, a timeout or another reply): the answer then stands."""
    try:
        messages = answer_check_messages(question, quotes)
        reply = chat.complete(messages, timeout_s=timeout_s, grammar=CHECK_GRAMMAR, max_tokens=3)
    except BackendError:
        return None
    word = _FIRST_WORD.search(reply.lower())
    return _VERDICTS.get(word.group(0)) if word else None
