"""The answer pipeline: language → (follow-up rewrite) → retrieval → refusal
gate → (question translation, second search) → generation under a token
budget → citation checks → refusal or fallback.

The default model is small, so the pipeline, not the model, guarantees the
properties users rely on: answerability is decided by retrieval scores,
citations are constrained by a grammar and then checked against the passages,
and the answer's language is checked.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING

from langchain_core.language_models.chat_models import BaseChatModel

from .answer_check import cited_text_answers
from .answerability import Verdict, judge
from .citations import SupportChecker, render
from .config import passage_count
from .errors import BackendError, RagError
from .extractive import extractive_claims
from .followup import History, condense_question
from .generate import VerifiedClaims, generate_checked
from .language import SUPPORTED, choose_answer_language
from .llm import create_chat_model
from .prompts import EMPTY_STORE, FALLBACK_NOTE, OTHER_LANGUAGE_NOTE, REFUSAL, UNSUPPORTED_SCRIPT
from .translate import translate_question
from .types import Answer, SearchHit

if TYPE_CHECKING:
    from .assistant import Assistant

# Why an answer was refused (Answer.refusal_reason) after the LLM was asked, or
# when no sentence could be cited at all.
DECLINED = "the model found no answer in the passages"
UNVERIFIED = "no sentence of the model's answer was supported by the passages"
UNCITED = "no sentence could be supported by a passage"
NOT_ANSWERED = "the sentences the answer cites do not answer the question (answer check)"
OTHER_SCRIPT = "the question is not written in the Latin alphabet (only Italian and English are supported)"


def answer_stream(
    assistant: Assistant,
    question: str,
    history: History | None = None,
    *,
    backend: str | None = None,
    k: int | None = None,
    default_language: str = "en",
    chat: BaseChatModel | None = None,
) -> Generator[str | Answer, None, None]:
    """Yields draft text pieces as they are generated, then the final Answer.

    ``chat`` replaces the configured backend with any LangChain chat model.
    """
    from .assistant import validate_query

    t0 = time.perf_counter()
    settings = assistant.settings
    q = validate_query(question, settings.retrieval.max_query_chars)
    choice = choose_answer_language(q, default_language)
    answer = Answer(
        question=q,
        text="",
        language=choice.answer_language,
        answerable=False,
        backend=backend or settings.llm.backend,
        searched_for=q,
    )
    run = _Run(assistant, answer, k, t0)
    if not choice.script_supported:
        yield run.finish(UNSUPPORTED_SCRIPT, OTHER_SCRIPT)
        return
    if not choice.supported:
        answer.note = OTHER_LANGUAGE_NOTE.format(language=choice.detected)
    run.open_chat(chat)
    if history:
        answer.searched_for = condense_question(q, history, run.chat, answer.language, settings.llm.timeout_s)
    if not run.search():
        yield run.finish(EMPTY_STORE[answer.language])
        return
    verdict = run.gate()
    if not verdict.answerable:  # decided by retrieval, without calling the LLM
        yield run.refuse(verdict.reason)
        return
    # After the gate (calibrated on the question alone), so refusals stay LLM-free.
    run.translate()
    claims = yield from run.generate()
    if run.chat is not None:  # the model answered: it did not fail or time out
        # It read the passages and found no answer, or wrote one that no passage
        # supports: say so. Quoting sentences instead would present text that does
        # not answer the question (measured on off-topic questions).
        if claims is None:
            yield run.refuse(DECLINED)
            return
        if not claims:
            if not settings.llm.quote_unverified:
                yield run.refuse(UNVERIFIED)
                return
            run.fallback_reason = UNVERIFIED
        elif not run.answers_question(claims):
            yield run.refuse(NOT_ANSWERED)
            return
    yield run.cite(claims or run.extractive())


class _Run:
    """One question on its way through the pipeline: the state its steps share."""

    def __init__(self, assistant: Assistant, answer: Answer, k: int | None, t0: float) -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        self.answer = answer
        self.lang = answer.language
        self.k = passage_count(k, self.settings.retrieval.k)
        self.t0 = t0
        self.chat: BaseChatModel | None = None
        # Why the chat model could not be used (shown in the fallback note).
        self.fallback_reason: str | None = None
        self.hits: list[SearchHit] = []
        self.checker: SupportChecker | None = None

    # endings ------------------------------------------------------------------
    def finish(self, text: str | None = None, refusal_reason: str | None = None) -> Answer:
        if text is not None:
            self.answer.text = text
        if refusal_reason:
            self.answer.refusal_reason = refusal_reason
        self.answer.timings["total"] = time.perf_counter() - self.t0
        return self.answer

    def refuse(self, reason: str) -> Answer:
        return self.finish(REFUSAL[self.lang], reason)

    def cite(self, claims: VerifiedClaims) -> Answer:
        """The claims with their citations, or a refusal when none could be cited."""
        self.answer.text, self.answer.citations = render(claims, self.hits)
        self.answer.answerable = bool(self.answer.citations)
        return self.finish() if self.answer.answerable else self.refuse(UNCITED)

    # steps ----------------------------------------------------------------------
    def open_chat(self, chat: BaseChatModel | None) -> None:
        """The caller's chat model, or the configured backend's (none for "extractive")."""
        if chat is not None:
            self.chat = chat
            self.answer.backend = getattr(chat, "_llm_type", "custom")
        elif self.answer.backend != "extractive":
            try:
                self.chat = create_chat_model(self.settings, self.answer.backend)
            except RagError as err:
                self._backend_failed(err)

    def search(self) -> bool:
        """Passages for the question (and its translation, once made); False when the index is empty
        (not merely when nothing matched: BM25 alone finds nothing for a question with no word in common)."""
        t = time.perf_counter()
        also = [self.answer.translated_query] if self.answer.translated_query else []
        retriever = self.assistant.retriever
        self.hits = retriever.search(self.answer.searched_for, self.k, also=also)
        self.answer.timings["retrieval"] = self.answer.timings.get("retrieval", 0.0) + time.perf_counter() - t
        self.answer.passages = self.hits
        # The retriever already embedded these passages' sentences for its re-score.
        self.checker = SupportChecker(
            self.hits, self.assistant.embedder, retriever.sentence_vectors([h.chunk for h in self.hits])
        )
        return len(retriever.store) > 0

    def gate(self) -> Verdict:
        assert self.checker is not None
        self.answer.relevance = self.checker.relevance(self.answer.searched_for)
        # The kind of answer asked for is read from the user's own words: a follow-up
        # searched together with the previous question must not take on its kind.
        return judge(self.answer.question, self.hits, self.answer.relevance, self.settings.retrieval.min_relevance)

    def translate(self) -> None:
        """Search again with the question in the articles' other language, when they have one."""
        if self.chat is None or not self.settings.retrieval.translate_query:
            return
        targets = [x for x in self.assistant.corpus_languages() if x != self.lang and x in SUPPORTED]
        if not targets:
            return
        t = time.perf_counter()
        try:
            self.answer.translated_query = translate_question(
                self.chat, self.answer.searched_for, self.lang, targets[0], self.settings.llm.timeout_s
            )
        except BackendError as err:  # the backend is down: skip straight to the fallback
            self._backend_failed(err)
            return
        self.answer.timings["translation"] = time.perf_counter() - t
        if self.answer.translated_query:
            self.search()

    def generate(self) -> Generator[str, None, VerifiedClaims | None]:
        """Streams the model's draft; returns its verified claims, None when it declined,
        [] when none held or there is no usable model (then ``self.chat`` is None)."""
        if self.chat is None:
            return []
        assert self.checker is not None
        try:
            return (
                yield from generate_checked(self.chat, self.answer, self.hits, self.checker, self.settings, self.t0)
            )
        except BackendError as err:
            self._backend_failed(err)
            return []

    def answers_question(self, claims: VerifiedClaims) -> bool:
        """False when the chat model, shown only the sentences the claims cite, says
        they do not answer the question (``llm.answer_check``; rag/answer_check.py)."""
        if not self.settings.llm.answer_check or self.chat is None:
            return True
        quotes = [self.hits[s.hit].text[s.start : s.end] for _, supports in claims for s in supports]
        t = time.perf_counter()
        verdict = cited_text_answers(
            self.chat, self.answer.searched_for, list(dict.fromkeys(quotes)), self.settings.llm.timeout_s
        )
        self.answer.timings["answer_check"] = time.perf_counter() - t
        return verdict is not False

    def extractive(self) -> VerifiedClaims:
        """The best-matching sentences, quoted; marked as a fallback unless asked for."""
        if self.answer.backend != "extractive":
            self.answer.fell_back = True
            self.answer.fallback_reason = self.fallback_reason
            note = FALLBACK_NOTE[self.lang].format(reason=self.fallback_reason)
            self.answer.note = " ".join(filter(None, [self.answer.note, note]))
        self.answer.backend = "extractive"
        assert self.checker is not None
        return extractive_claims(self.answer.searched_for, self.checker, self.lang)

    def _backend_failed(self, err: RagError) -> None:
        """Carry on without the chat model, or re-raise when falling back is turned off."""
        if not self.settings.llm.fallback_to_extractive:
            raise err
        self.chat, self.fallback_reason = None, str(err)
