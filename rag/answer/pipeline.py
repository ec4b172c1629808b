"""The answer pipeline: language → (follow-up rewrite) → retrieval → refusal
gate → (question translation, second search) → generation under a token
budget → citation checks → refusal or fallback → the ``Answer``.

The default model is small, so the pipeline, not the model, guarantees the
properties users rely on: answerability is decided by retrieval scores,
citations are constrained by a grammar and then checked against the passages,
and the answer's language is checked.

Everything it uses is handed to it (settings, retriever, chat backend); the
state of one question lives in a ``_Run`` and the public ``Answer`` is built
once, when the run ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from ..config import Settings
from ..errors import BackendError, InvalidQuestionError, RagError
from ..llm import EXTRACTIVE, ChatBackend
from ..llm.base import Cancelled
from ..search.embedding import Encoder
from ..text.language import SUPPORTED, choose_answer_language
from ..types import Answer, Chunk, SearchHit, Stage, StageName
from .check import asks_for_a_name, cited_text_answers, gives_a_new_name
from .citations import SupportChecker, render
from .extractive import extractive_claims
from .followup import History, condense_question
from .gate import Verdict, judge
from .generation import (
    VerifiedClaims,
    answer_messages,
    format_passage,
    generate_checked,
    passage_budget,
    prompt_cost,
)
from .prompts import EMPTY_STORE, FALLBACK_NOTE, OTHER_LANGUAGE_NOTE, REFUSAL, STOPPED, UNSUPPORTED_SCRIPT
from .translate import translate_question

# Why an answer was refused (Answer.refusal_reason) after the LLM was asked, or
# when no sentence could be cited at all.
DECLINED = "the model found no answer in the passages"
UNVERIFIED = "no sentence of the model's answer was supported by the passages"
UNCITED = "no sentence could be supported by a passage"
NOT_ANSWERED = "the sentences the answer cites do not answer the question (answer check)"
NO_NAME = "the question asks for a name and the answer gives none it does not already hold"
OTHER_SCRIPT = "the question is not written in the Latin alphabet (only Italian and English are supported)"
STOPPED_REASON = "stopped before the answer was complete"

Stream = Generator[str | Stage | Answer, None, None]
# No passage is shorter (chunking's minimum size): bounds the corpus size worth counting.
MIN_PASSAGE_TOKENS = 20


class Retriever(Protocol):
    """What the pipeline needs of retrieval (``rag.search.retrieval.HybridRetriever``; fakes in tests)."""

    embedder: Encoder

    def __len__(self) -> int: ...

    def search(self, query: str, k: int | None = None, *, also: Sequence[str] = ()) -> list[SearchHit]: ...

    def sentence_vectors(self, chunks: list[Chunk]) -> list[tuple[list[tuple[int, int]], np.ndarray]]: ...

    def languages(self) -> list[str]: ...

    def passage_counts(self) -> dict[str, int]: ...

    def all_passages(self) -> list[SearchHit]: ...


def validate_query(text: object, max_chars: int) -> str:
    """The stripped query, or a clear InvalidQuestionError."""
    if not isinstance(text, str):
        raise InvalidQuestionError("The question must be text.", code="question_not_text")
    query = text.strip()
    if not query:
        raise InvalidQuestionError("The question is empty: type a question about the articles.", code="question_empty")
    if len(query) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(query):,} characters long; the limit is {max_chars:,}. Please shorten it.",
            code="question_too_long", chars=len(query), limit=max_chars,
        )
    return query


@dataclass(frozen=True)
class AnswerPipeline:
    """Answers questions from ``retriever`` with a chat model, or by quoting the passages.

    ``engine`` names what was asked for (a backend name, or ``EXTRACTIVE``); the chat
    model is ``chat``, or what ``open_chat`` returns when one is first needed (after the
    checks that need none). When it cannot be opened or fails, the answers fall back
    to quotes with a note, unless ``llm.fallback_to_extractive`` is off.
    """

    settings: Settings
    retriever: Retriever
    engine: str = EXTRACTIVE
    chat: ChatBackend | None = None
    open_chat: Callable[[], ChatBackend] | None = None

    def whole_corpus(self, chat: ChatBackend, question: str, language: str) -> list[SearchHit] | None:
        """Every indexed passage, in a fixed order (the prompt's start then never changes),
        when together they fit in ``llm.whole_corpus_tokens`` and in the context window
        beside the question; else None."""
        cfg = self.settings.llm
        limit = cfg.whole_corpus_tokens
        if not limit or not 0 < len(self.retriever) <= limit // MIN_PASSAGE_TOKENS:
            return None
        every = self.retriever.all_passages()
        # Counted once: all of them fit the budget exactly when fit_passages would keep them all.
        tokens = [chat.count_tokens(format_passage(i, h)) for i, h in enumerate(every, 1)]
        if sum(tokens) > limit or sum(map(prompt_cost, tokens)) > passage_budget(chat, question, language, cfg):
            return None
        return every

    def prime(self, languages: Sequence[str] = SUPPORTED) -> list[str]:
        """Have the chat model read the start of each language's answer prompt now (whole-corpus
        mode), so the first question only costs its own words; returns the languages read."""
        if self.chat is None or not self.chat.reuses_prompt_state:
            return []
        read = []
        for lang in languages:
            every = self.whole_corpus(self.chat, "", lang)
            if every:
                prompt = answer_messages("", every, lang)
                self.chat.complete(prompt, timeout_s=self.settings.llm.timeout_s, max_tokens=1)
                read.append(lang)
        return read

    def stream(
        self,
        question: str,
        history: History | None = None,
        *,
        k: int,
        default_language: str = "en",
        t0: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Stream:
        """Yields a ``Stage`` as each step starts, draft text pieces as they are generated,
        then the final Answer (its timings count from ``t0``, e.g. when the caller began
        loading the index). Setting ``cancel`` stops the work at the next step or token
        (the chat model is freed at once) and ends with an Answer marked ``stopped``."""
        t0 = time.perf_counter() if t0 is None else t0
        q = validate_query(question, self.settings.retrieval.max_query_chars)
        choice = choose_answer_language(q, default_language)
        run = _Run(self, q, choice.answer_language, k, t0, cancel=cancel)
        if not choice.script_supported:
            yield run.finish(UNSUPPORTED_SCRIPT, OTHER_SCRIPT)
            return
        if not choice.supported:
            run.notes.append(OTHER_LANGUAGE_NOTE.format(language=choice.detected))
        try:
            yield from self._answer(run, history)
        except Cancelled:
            yield run.stopped()

    def _answer(self, run: _Run, history: History | None) -> Stream:
        run.check_cancel()  # stopped while the index loaded
        run.open_chat()
        if history:
            yield run.stage("rewriting")
            run.searched_for = condense_question(
                run.question, history, run.chat, run.lang, self.settings.llm.timeout_s
            )
        yield run.stage("searching")
        if not run.search():
            yield run.finish(EMPTY_STORE[run.lang])
            return
        verdict = run.gate()
        if not verdict.answerable:  # decided by retrieval, without calling the LLM
            yield run.refuse(verdict.reason)
            return
        # After the gate (calibrated on the question alone), so refusals stay LLM-free.
        # A corpus small enough is shown whole (retrieval can then not miss, and the
        # model's prompt starts the same for every question); else the retrieved passages,
        # found again with the question's translation.
        if not run.show_whole_corpus():
            if run.will_translate():
                yield run.stage("translating")
            run.translate()
        if run.chat is not None:
            yield run.stage("reading", passages=len(run.shown))
        claims = yield from run.generate()
        yield run.stage("checking")
        if run.chat is not None:  # the model answered: it did not fail or time out
            # It read the passages and found no answer, or wrote one that no passage
            # supports: say so. Quoting sentences instead would present text that does
            # not answer the question (measured on off-topic questions).
            if claims is None:
                yield run.refuse(DECLINED)
                return
            if not claims:
                if not self.settings.llm.quote_unverified:
                    yield run.refuse(UNVERIFIED)
                    return
                run.fallback_reason = UNVERIFIED
            elif not run.names_what_was_asked(claims):
                yield run.refuse(NO_NAME)
                return
            elif not run.answers_question(claims):
                yield run.refuse(NOT_ANSWERED)
                return
        yield run.cite(claims or run.extractive())


@dataclass
class _Run:
    """One question on its way through the pipeline: the state its steps share."""

    pipeline: AnswerPipeline
    question: str
    lang: str
    k: int
    t0: float
    searched_for: str = ""
    translated_query: str | None = None
    hits: list[SearchHit] = field(default_factory=list)
    # What the model reads and cites: the retrieved hits, or every passage (show_whole_corpus).
    shown: list[SearchHit] = field(default_factory=list)
    whole: bool = False
    relevance: float | None = None
    checker: SupportChecker | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # The chat model still in use (None once it failed, or when quoting was asked for).
    chat: ChatBackend | None = None
    # Why the chat model could not be used (shown in the fallback note).
    fallback_reason: str | None = None
    fell_back: bool = False
    cancel: threading.Event | None = None

    def __post_init__(self) -> None:
        self.settings = self.pipeline.settings
        self.searched_for = self.searched_for or self.question
        self.chat = self.pipeline.chat
        self.engine = self.pipeline.engine

    # endings ------------------------------------------------------------------
    def finish(
        self, text: str, refusal_reason: str | None = None, citations: Sequence = (), answerable: bool = False
    ) -> Answer:
        self.timings["total"] = time.perf_counter() - self.t0
        return Answer(
            question=self.question,
            text=text,
            language=self.lang,
            answerable=answerable,
            citations=list(citations),
            passages=list(self.hits),
            backend=self.engine,
            fell_back=self.fell_back,
            fallback_reason=self.fallback_reason if self.fell_back else None,
            refusal_reason=refusal_reason,
            relevance=self.relevance,
            searched_for=self.searched_for,
            translated_query=self.translated_query,
            read_whole_corpus=self.whole,
            note=" ".join(self.notes) or None,
            timings=dict(self.timings),
        )

    def stopped(self) -> Answer:
        self.notes.clear()  # a fallback note would describe an answer that was not given
        return replace(self.finish(STOPPED[self.lang], STOPPED_REASON), stopped=True)

    def refuse(self, reason: str) -> Answer:
        return self.finish(REFUSAL[self.lang], reason)

    def cite(self, claims: VerifiedClaims) -> Answer:
        """The claims with their citations, or a refusal when none could be cited."""
        text, citations = render(claims, self.shown)
        return self.finish(text, citations=citations, answerable=True) if citations else self.refuse(UNCITED)

    # progress -------------------------------------------------------------------
    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled

    def stage(self, name: StageName, passages: int = 0) -> Stage:
        """The step starting now (after the last chance to stop before it)."""
        self.check_cancel()
        return Stage(name, time.perf_counter() - self.t0, passages)

    # steps ----------------------------------------------------------------------
    def open_chat(self) -> None:
        """The engine's chat model, opened now if it was not given (loading it may fail)."""
        if self.chat is None and self.pipeline.open_chat is not None:
            try:
                self.chat = self.pipeline.open_chat()
            except RagError as err:
                self._backend_failed(err)
                return
            self.engine = self.chat.name

    def search(self) -> bool:
        """Passages for the question (and its translation, once made); False when the index is empty
        (not merely when nothing matched: BM25 alone finds nothing for a question with no word in common)."""
        t = time.perf_counter()
        also = [self.translated_query] if self.translated_query else []
        retriever = self.pipeline.retriever
        self.hits = retriever.search(self.searched_for, self.k, also=also)
        self.timings["retrieval"] = self.timings.get("retrieval", 0.0) + time.perf_counter() - t
        self._show(self.hits)
        return len(retriever) > 0

    def _show(self, hits: list[SearchHit]) -> None:
        self.shown = hits
        # The retriever already embedded these passages' sentences (re-score, earlier questions).
        retriever = self.pipeline.retriever
        self.checker = SupportChecker(hits, retriever.embedder, retriever.sentence_vectors([h.chunk for h in hits]),
                                      self.settings.retrieval.min_support)

    def show_whole_corpus(self) -> bool:
        """Show the model every indexed passage, in the index's order, when they fit in
        ``llm.whole_corpus_tokens`` (one article, or a few); True when it did."""
        every = self.chat and self.pipeline.whole_corpus(self.chat, self.searched_for, self.lang)
        if every:
            self._show(every)
            self.whole = True
        return self.whole

    def gate(self) -> Verdict:
        assert self.checker is not None
        self.relevance = self.checker.relevance(self.searched_for)
        # The kind of answer asked for is read from the user's own words: a follow-up
        # searched together with the previous question must not take on its kind.
        return judge(self.question, self.hits, self.relevance, self.settings.retrieval.min_relevance)

    def _translation_target(self) -> str | None:
        if self.chat is None or not self.settings.retrieval.translate_query:
            return None
        targets = [x for x in self.pipeline.retriever.languages() if x != self.lang and x in SUPPORTED]
        return targets[0] if targets else None

    def will_translate(self) -> bool:
        return self._translation_target() is not None

    def translate(self) -> None:
        """Search again with the question in the articles' other language, when they have one."""
        target = self._translation_target()
        if target is None:
            return
        t = time.perf_counter()
        try:
            self.translated_query = translate_question(
                self.chat, self.searched_for, self.lang, target, self.settings.llm.timeout_s
            )
        except BackendError as err:  # the backend is down: skip straight to the fallback
            self._backend_failed(err)
            return
        self.timings["translation"] = time.perf_counter() - t
        if self.translated_query:
            self.search()

    def generate(self) -> Generator[str | Stage, None, VerifiedClaims | None]:
        """Streams the model's draft; returns its verified claims, None when it declined,
        [] when none held or there is no usable model (then ``self.chat`` is None)."""
        if self.chat is None:
            return []
        assert self.checker is not None

        def first_token() -> None:
            self.timings.setdefault("first_token", time.perf_counter() - self.t0)

        draft = generate_checked(
            self.chat, self.searched_for, self.lang, self.shown, self.checker, self.settings.llm, first_token,
            self.cancel,
        )
        try:
            # closing: a stop closes the model's stream at once, which frees the shared model.
            with closing(draft):
                return (yield from self._until_cancelled(draft))
        except BackendError as err:
            self._backend_failed(err)
            return []

    def _until_cancelled(
        self, draft: Generator[str, None, VerifiedClaims | None]
    ) -> Generator[str | Stage, None, VerifiedClaims | None]:
        """``draft``'s pieces, checking ``cancel`` after each token (and the "writing" stage first)."""
        first = True
        while True:
            try:
                piece = next(draft)
            except StopIteration as done:
                return done.value
            self.check_cancel()
            if first:
                first = False
                yield self.stage("writing")
            yield piece

    def names_what_was_asked(self, claims: VerifiedClaims) -> bool:
        """False when the question asks for a name and the answer brings none of its own.
        Asked is read from the question as typed: a follow-up whose rewrite failed is
        searched for joined to the previous question, which may have asked for a name."""
        if not self.settings.llm.name_check or not asks_for_a_name(self.question):
            return True
        cited = " ".join(self.cited_sentences(claims))
        return gives_a_new_name(self.searched_for, " ".join(text for text, _ in claims), cited)

    def cited_sentences(self, claims: VerifiedClaims) -> list[str]:
        """The sentences the claims cite, once each, in order."""
        return list(dict.fromkeys(self.shown[s.hit].text[s.start : s.end] for _, supports in claims for s in supports))

    def answers_question(self, claims: VerifiedClaims) -> bool:
        """False when the chat model, shown only the sentences the claims cite, says
        they do not answer the question (``llm.answer_check``; rag/answer/check.py)."""
        if not self.settings.llm.answer_check or self.chat is None:
            return True
        t = time.perf_counter()
        quotes = self.cited_sentences(claims)
        verdict = cited_text_answers(self.chat, self.searched_for, quotes, self.settings.llm.timeout_s)
        self.timings["answer_check"] = time.perf_counter() - t
        return verdict is not False

    def extractive(self) -> VerifiedClaims:
        """The best-matching sentences, quoted; marked as a fallback unless asked for."""
        if self.engine != EXTRACTIVE:
            self.fell_back = True
            self.notes.append(FALLBACK_NOTE[self.lang].format(reason=self.fallback_reason))
        self.engine = EXTRACTIVE
        assert self.checker is not None
        return extractive_claims(self.searched_for, self.checker, self.lang)

    def _backend_failed(self, err: RagError) -> None:
        """Carry on without the chat model, or re-raise when falling back is turned off."""
        if not self.settings.llm.fallback_to_extractive:
            raise err
        self.chat, self.fallback_reason = None, str(err)
