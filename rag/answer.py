"""The answer pipeline: language → (follow-up rewrite) → (question translation) →
retrieval → refusal gate → generation under a token budget → citation checks →
fallback.

The default model is small, so the pipeline, not the model, guarantees the
properties users rely on: answerability is decided by retrieval scores,
citations are constrained by a grammar and then checked against the passages,
and the answer's language is checked.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from .answerability import judge
from .citations import SupportChecker, parse_claims, render, verify_claims
from .config import passage_count
from .errors import BackendError, RagError
from .extractive import extractive_claims
from .language import LANGUAGE_NAMES, SUPPORTED, choose_answer_language, detect_language
from .llm import LlamaCppChat, TimedGeneration, create_chat_model
from .prompts import (
    ANSWER_SYSTEM,
    ANSWER_USER,
    CONDENSE_SYSTEM,
    CONDENSE_USER,
    EMPTY_STORE,
    FALLBACK_NOTE,
    LANGUAGE_RETRY,
    NO_ANSWER,
    OTHER_LANGUAGE_NOTE,
    PASSAGE_TEMPLATE,
    REFUSAL,
    UNSUPPORTED_SCRIPT,
)
from .tokens import count_tokens
from .translate import translate_question
from .types import Answer, SearchHit

if TYPE_CHECKING:
    from .assistant import Assistant

History = Sequence[tuple[str, str]]
# tiktoken counts differ from the model's tokenizer; keep this much headroom.
TOKEN_SAFETY = 1.15
MAX_SENTENCES = 3
# Why an answer was refused after the LLM was asked (Answer.refusal_reason).
DECLINED = "the model found no answer in the passages"
UNVERIFIED = "no sentence of the model's answer was supported by the passages"


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


def format_passage(number: int, hit: SearchHit) -> str:
    date = f", {hit.date}" if hit.date else ""
    return PASSAGE_TEMPLATE.format(number=number, title=hit.title, date=date, text=hit.text)


def fit_passages(hits: list[SearchHit], budget_tokens: int, encoding: str) -> list[SearchHit]:
    """Whole passages in rank order while they fit; a passage is never cut."""
    kept, used = [], 0
    for hit in hits:
        cost = int(count_tokens(format_passage(len(kept) + 1, hit), encoding) * TOKEN_SAFETY) + 2
        if used + cost <= budget_tokens:
            kept.append(hit)
            used += cost
    return kept


def answer_messages(question: str, hits: list[SearchHit], language: str, retry: bool = False) -> list[BaseMessage]:
    system = ANSWER_SYSTEM[language] + (" " + LANGUAGE_RETRY[language] if retry else "")
    passages = "\n\n".join(format_passage(i + 1, h) for i, h in enumerate(hits))
    return [
        SystemMessage(system),
        HumanMessage(ANSWER_USER[language].format(passages=passages, question=question)),
    ]


_FOLLOW_UP_WORDS = frozenset(
    """lui lei loro esso essa essi esse questo questa questi queste quello quella quelli quelle ciò
    suo sua suoi sue gli ne he she him her his hers they them their theirs it its this that these
    those there""".split()
)
_FOLLOW_UP_START = re.compile(r"^(e|ed|ma|invece|and|but|what about|how about|also|anche)\b", re.IGNORECASE)
CONDENSE_GRAMMAR = r'root ::= [^\n?]{3,250} "?"'


def looks_like_follow_up(question: str) -> bool:
    """Short questions leaning on the conversation ("E cosa ha detto di lui?")."""
    words = re.findall(r"[^\W\d_]+", question.lower())
    starts = bool(_FOLLOW_UP_START.match(question.strip()))
    return len(words) <= 12 and (starts or any(w in _FOLLOW_UP_WORDS for w in words))


def condense_question(
    question: str, history: History, chat: BaseChatModel | None, language: str, timeout_s: float
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
        kwargs: dict[str, Any] = {"max_tokens": 60}
        if isinstance(chat, LlamaCppChat):
            kwargs["grammar"] = CONDENSE_GRAMMAR
        try:
            gen = TimedGeneration(chat, timeout_s, {}, time.perf_counter())
            lines = "".join(gen.stream(messages, **kwargs)).strip().splitlines()
            rewritten = lines[0].strip().strip('"«»') if lines else ""
            if 5 <= len(rewritten) <= 300 and rewritten.endswith("?"):
                return rewritten
        except BackendError:
            pass
    return f"{turns[-1][0]} {question}"


def _finish(answer: Answer, t0: float) -> Answer:
    answer.timings["total"] = time.perf_counter() - t0
    return answer


def answer_stream(
    assistant: Assistant,
    question: str,
    history: History | None = None,
    *,
    backend: str | None = None,
    k: int | None = None,
    default_language: str = "en",
    chat: BaseChatModel | None = None,
) -> Iterator[str | Answer]:
    """Yields draft text pieces as they are generated, then the final Answer.

    ``chat`` replaces the configured backend with any LangChain chat model.
    """
    from .assistant import validate_query

    t0 = time.perf_counter()
    settings = assistant.settings
    backend = backend or settings.llm.backend
    q = validate_query(question, settings.retrieval.max_query_chars)
    choice = choose_answer_language(q, default_language)
    lang = choice.answer_language
    answer = Answer(question=q, text="", language=lang, answerable=False, backend=backend, searched_for=q)
    if not choice.script_supported:
        answer.text, answer.note = UNSUPPORTED_SCRIPT, OTHER_LANGUAGE_NOTE.format(language=choice.detected)
        yield _finish(answer, t0)
        return
    if not choice.supported:
        answer.note = OTHER_LANGUAGE_NOTE.format(language=choice.detected)

    fallback_reason: str | None = None
    if chat is not None:
        backend = answer.backend = getattr(chat, "_llm_type", "custom")
    elif backend != "extractive":
        try:
            chat = create_chat_model(settings, backend)
        except RagError as err:
            if not settings.llm.fallback_to_extractive:
                raise
            fallback_reason = str(err)

    if history:
        answer.searched_for = condense_question(q, history, chat, lang, settings.llm.timeout_s)
    hits = _search(assistant, answer, k)
    if not hits:
        answer.text = EMPTY_STORE[lang]
        yield _finish(answer, t0)
        return
    checker = _checker(assistant, hits)
    answer.relevance = checker.relevance(answer.searched_for)
    verdict = judge(answer.searched_for, hits, answer.relevance, settings.retrieval.min_relevance)
    if not verdict.answerable:  # decided by retrieval, without calling the LLM
        answer.text, answer.refusal_reason = REFUSAL[lang], verdict.reason
        yield _finish(answer, t0)
        return
    if chat is not None and settings.retrieval.translate_query:
        # After the refusal gate (calibrated on the question alone), so refusals stay LLM-free.
        try:
            answer.translated_query = _translation(assistant, chat, answer, lang)
        except BackendError as err:  # the backend is down: skip straight to the fallback
            if not settings.llm.fallback_to_extractive:
                raise
            chat, fallback_reason = None, str(err)
        if answer.translated_query:
            hits = _search(assistant, answer, k)
            checker = _checker(assistant, hits)

    kept: list[Any] | None = []
    if chat is not None:
        try:
            kept = yield from _generate(chat, answer, hits, checker, settings, lang, t0)
        except BackendError as err:
            if not settings.llm.fallback_to_extractive:
                raise
            fallback_reason = str(err)
        else:
            # The model read the passages and found no answer, or wrote one that no
            # passage supports: say so. Quoting sentences instead would present text
            # that does not answer the question (measured on off-topic questions).
            if kept is None or (not kept and not settings.llm.quote_unverified):
                answer.text, answer.refusal_reason = REFUSAL[lang], DECLINED if kept is None else UNVERIFIED
                yield _finish(answer, t0)
                return
            if not kept:  # quote_unverified: quoted sentences, marked as a fallback
                fallback_reason = UNVERIFIED
    if not kept:
        if backend != "extractive":
            answer.fell_back = True
            answer.fallback_reason = fallback_reason
            answer.note = " ".join(filter(None, [answer.note, FALLBACK_NOTE[lang].format(reason=fallback_reason)]))
        answer.backend = "extractive"
        kept = extractive_claims(answer.searched_for, checker, lang)
    answer.text, answer.citations = render(kept, hits)
    answer.answerable = bool(answer.citations)
    if not answer.answerable:
        answer.text, answer.refusal_reason = REFUSAL[lang], "no sentence could be supported by a passage"
    yield _finish(answer, t0)


def _words_only(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).strip().lower()


_NO_ANSWER_WORDS = frozenset(_words_only(x) for x in NO_ANSWER.values())


def declined(draft: str) -> bool:
    """The model's draft is its "no answer in the passages" reply (any language, any case)."""
    return _words_only(draft) in _NO_ANSWER_WORDS


def _search(assistant: Assistant, answer: Answer, k: int | None) -> list[SearchHit]:
    """Passages for the question (and its translation, once made); timed."""
    t = time.perf_counter()
    also = [answer.translated_query] if answer.translated_query else []
    hits = assistant.retriever.search(answer.searched_for, passage_count(k, assistant.settings.retrieval.k), also=also)
    answer.timings["retrieval"] = answer.timings.get("retrieval", 0.0) + time.perf_counter() - t
    answer.passages = hits
    return hits


def _checker(assistant: Assistant, hits: list[SearchHit]) -> SupportChecker:
    # The retriever already embedded these passages' sentences for its re-score.
    return SupportChecker(hits, assistant.embedder, assistant.retriever.sentence_vectors([h.chunk for h in hits]))


def _translation(assistant: Assistant, chat: BaseChatModel, answer: Answer, lang: str) -> str | None:
    """The question in the articles' other language, when they have one (timed)."""
    targets = [x for x in assistant.corpus_languages() if x != lang and x in SUPPORTED]
    if not targets:
        return None
    t = time.perf_counter()
    translation = translate_question(chat, answer.searched_for, lang, targets[0], assistant.settings.llm.timeout_s)
    answer.timings["translation"] = time.perf_counter() - t
    return translation


def _generate(
    chat: BaseChatModel,
    answer: Answer,
    hits: list[SearchHit],
    checker: SupportChecker,
    settings: Any,
    lang: str,
    t0: float,
) -> Iterator[str]:
    """LLM answer, checked: the verified claims (empty when none held), None when the model declined."""
    cfg = settings.llm
    enc = settings.chunking.encoding
    fixed = sum(count_tokens(m.content, enc) for m in answer_messages(answer.searched_for, [], lang, retry=True))
    budget = cfg.n_ctx - cfg.max_tokens - int(fixed * TOKEN_SAFETY) - 32
    shown = fit_passages(hits, budget, enc)
    if not shown:
        raise BackendError("the passages do not fit in the model's context window")
    kwargs: dict[str, Any] = {}
    if isinstance(chat, LlamaCppChat) and cfg.use_grammar:
        kwargs["grammar"] = citation_grammar(len(shown), NO_ANSWER[lang])
    gen = TimedGeneration(chat, cfg.timeout_s, answer.timings, t0)
    for retry in (False, True):
        draft = ""
        # The question only, not its translation: on the article dev set, an imperfect
        # translation beside it misled the small model (d06).
        for piece in gen.stream(answer_messages(answer.searched_for, shown, lang, retry), **kwargs):
            draft += piece
            yield piece
        if declined(draft):
            return None
        # Passage numbers in the draft refer to `shown`; map them onto `hits`.
        claims = parse_claims(draft)
        for claim in claims:
            claim.cites = [hits.index(shown[c - 1]) + 1 for c in claim.cites if 1 <= c <= len(shown)]
        kept = verify_claims(claims, checker)
        if not kept:
            return []
        if detect_language(" ".join(text for text, _ in kept)) in (lang, "und"):
            return kept
        yield "\n"  # wrong language: one retry with a firmer instruction
    raise BackendError(f"the model did not answer in {LANGUAGE_NAMES[lang]}")
