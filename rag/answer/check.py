"""Does the answer answer the question? A model-free look at what was asked, then one
yes/no question to the chat model.

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
from ..text.names import new_names
from .prompts import ANSWER_CHECK_SYSTEM, ANSWER_CHECK_USER

CHECK_GRAMMAR = 'root ::= "yes" | "no"'
# "Come si chiama il titolare?", "What is the name of the driver?": asked for a name the
# article never gives, the small model answers with a role ("the autista of the camion") or
# with a name the question already holds ("la concessionaria di Bologna" -> "Bologna"), and
# the support check passes both (measured: news_qa, 6 such unanswerable questions). "What is
# X called" and "the name for" ask for a term ("curriculum", "photons"), so they are left out.
_NAME_QUESTION = re.compile(
    r"\bcome si chiama(?:va|no|vano)?\b|\bche nome\b"
    r"|\bqual(?:i|e|['’])?\s*(?:[èé]|e['’]|era|sono|erano)\s+(?:il|i)\s+nom[ei]\s+d(?:i|el|ella|ell['’]|ei|egli|elle)"
    r"|\bwhat(?:['’]s|\s+is|\s+was|\s+are|\s+were)\s+(?:the\s+)?names?\s+of\b|\bwhat name\b",
    re.IGNORECASE,
)
# A name can also be a title the article quotes ("L'indagine «Non plus ultra»"), capitalised or not.
_QUOTED = re.compile(r"[«\"“]\s*([^«»\"“”]{2,80}?)\s*[»\"”]")
_FIRST_WORD = re.compile(r"[^\W_]+")
_VERDICTS = {"yes": True, "si": True, "sì": True, "no": False}


def asks_for_a_name(question: str) -> bool:
    return bool(_NAME_QUESTION.search(question))


def gives_a_new_name(question: str, answer: str, cited: str) -> bool:
    """Whether ``answer`` holds a name that ``question`` does not and that ``cited`` (the
    text the answer cites) writes as a name: capitalised, or a title it quotes."""
    if new_names(answer, question, cited):
        return True
    asked, said = _normal(question), _normal(answer)
    titles = {_normal(quoted) for quoted in _QUOTED.findall(cited)}
    return any(
        title and title not in asked and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", said) for title in titles
    )


def _normal(text: str) -> str:
    return " ".join(text.casefold().replace("’", "'").split()).strip(" .,;:!?")


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
