"""The LLM step: passages into the prompt under a token budget, a grammar that
forces citations, generation, then the checks on what the model wrote
(declined? cited sentences supported? right language?).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Generator

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from ..config import LLMSettings
from ..errors import BackendError
from ..llm import ChatBackend
from ..text.language import LANGUAGE_NAMES, written_in
from ..text.sentences import join_spaced_numbers
from ..types import SearchHit
from .citations import Support, SupportChecker, parse_claims, verify_claims
from .prompts import ANSWER_SYSTEM, ANSWER_USER, LANGUAGE_RETRY, NO_ANSWER, PASSAGE_TEMPLATE

# Sentences the model wrote, each with the passage sentences that support it.
VerifiedClaims = list[tuple[str, list[Support]]]
# Headroom for the chat template's own tokens around each message.
TOKEN_SAFETY = 1.15
MAX_SENTENCES = 3


def citation_grammar(n_passages: int, no_answer: str | None = None) -> str:
    """GBNF: 1-3 sentences, each ending with citations of existing passage numbers,
    or exactly ``no_answer`` (the model's way to say the passages hold no answer).

    Inside a sentence, . ! ? may only be followed by a non-space (numbers,
    abbreviations); after a sentence's final stop the only way on is " [n]".
    """
    nums = " | ".join(f'"{i}"' for i in range(1, n_passages + 1))
    decline = f"{json.dumps(no_answer)} | " if no_answer else ""
    return "\n".join(
        [
            f'root ::= {decline}sent (" " sent){{0,{MAX_SENTENCES - 1}}}',
            'sent ::= first rest " [" num "]" ("[" num "]")?',
            r"first ::= [^\[\]\n .!?]",
            r"rest ::= ([^\[\]\n.!?] | [.!?] [^ \n\[\].!?])* [.!?]?",
            f"num ::= {nums}",
        ]
    )


# What could pass for the prompt's own markup inside an article: passage numbers ("[7]")
# and the quotation marks that delimit a passage.
_BRACKET_NUMBER = re.compile(r"\[(\d{1,3})\]")


def quoted(text: str) -> str:
    """Article text as the prompt quotes it: no "[n]" the model could take for a passage
    number, no guillemet that could close the quotation early, and "4. 500 euro" as
    "4.500 euro" (the citation grammar ends a sentence at ". ", so the model could not
    copy the amount)."""
    text = join_spaced_numbers(_BRACKET_NUMBER.sub(r"(\1)", text))
    return text.replace("«", '"').replace("»", '"')


def format_passage(number: int, hit: SearchHit) -> str:
    date = f", {hit.date}" if hit.date else ""
    return PASSAGE_TEMPLATE.format(number=number, title=quoted(hit.title), date=date, text=quoted(hit.text))


def prompt_cost(tokens: int) -> int:
    """What a passage of ``tokens`` (its own count) takes of the budget, template included."""
    return int(tokens * TOKEN_SAFETY) + 2


def fit_passages(hits: list[SearchHit], budget_tokens: int, count_tokens: Callable[[str], int]) -> list[SearchHit]:
    """Whole passages in rank order while they fit; a passage is never cut."""
    kept, used = [], 0
    for hit in hits:
        cost = prompt_cost(count_tokens(format_passage(len(kept) + 1, hit)))
        if used + cost <= budget_tokens:
            kept.append(hit)
            used += cost
    return kept


def passage_budget(chat: ChatBackend, question: str, language: str, cfg: LLMSettings) -> int:
    """Tokens left for passages in the answer prompt: the context window less the answer,
    the instructions and the question (the retry's firmer instructions included)."""
    fixed = sum(chat.count_tokens(str(m.content)) for m in answer_messages(question, [], language, retry=True))
    return cfg.n_ctx - cfg.max_tokens - int(fixed * TOKEN_SAFETY) - 32


def answer_messages(question: str, hits: list[SearchHit], language: str, retry: bool = False) -> list[BaseMessage]:
    system = ANSWER_SYSTEM[language] + (" " + LANGUAGE_RETRY[language] if retry else "")
    passages = "\n\n".join(format_passage(i + 1, h) for i, h in enumerate(hits))
    return [
        SystemMessage(system),
        HumanMessage(ANSWER_USER[language].format(passages=passages, question=question)),
    ]


def _words_only(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).strip().lower()


_NO_ANSWER_WORDS = frozenset(_words_only(x) for x in NO_ANSWER.values())


def declined(draft: str) -> bool:
    """The model's draft is its "no answer in the passages" reply (any language, any case)."""
    return _words_only(draft) in _NO_ANSWER_WORDS


def generate_checked(
    chat: ChatBackend,
    question: str,
    language: str,
    hits: list[SearchHit],
    checker: SupportChecker,
    cfg: LLMSettings,
    on_first_token: Callable[[], None] = lambda: None,
    cancel: threading.Event | None = None,
) -> Generator[str, None, VerifiedClaims | None]:
    """Streams the model's draft; returns its supported claims ([] when none held),
    or None when the model declined. Raises BackendError when the model fails,
    times out or twice answers in the wrong language; Cancelled when ``cancel`` is set
    before the model starts on it.
    """
    budget = passage_budget(chat, question, language, cfg)
    shown = fit_passages(hits, budget, chat.count_tokens)
    if not shown:
        raise BackendError(
            f"the passages do not fit in the model's context window (llm.n_ctx {cfg.n_ctx} less "
            f"llm.max_tokens {cfg.max_tokens} and the prompt leaves {max(budget, 0)} tokens); raise llm.n_ctx"
        )
    # llm.use_grammar=false leaves the citations to the checks alone (the short calls keep theirs).
    grammar = citation_grammar(len(shown), NO_ANSWER[language]) if cfg.use_grammar else None
    for retry in (False, True):
        draft = ""
        # The question only, not its translation: on the article dev set, an imperfect
        # translation beside it misled the small model (d06).
        for piece in chat.stream(answer_messages(question, shown, language, retry), timeout_s=cfg.timeout_s,
                                 grammar=grammar, cancel=cancel):
            if not draft:
                on_first_token()
            draft += piece
            yield piece
        if declined(draft):
            return None
        # Passage numbers in the draft refer to `shown`; map them onto `hits`.
        claims = parse_claims(draft)
        for claim in claims:
            claim.cites = [hits.index(shown[c - 1]) + 1 for c in claim.cites if 1 <= c <= len(shown)]
        kept = verify_claims(claims, checker, question, language)
        if not kept:
            return []
        if written_in(" ".join(text for text, _ in kept), language):
            return kept
        yield "\n"  # wrong language: one retry with a firmer instruction
    raise BackendError(f"the model did not answer in {LANGUAGE_NAMES[language]}")
