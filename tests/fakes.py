"""Fakes for the unit tests: an embedding model, chat backends and a small indexed article.

Nothing here loads a model: the fake embedder turns a text into a normalised bag
of its stemmed words (so a sentence and a claim sharing words are close), and the
index is the product's own FAISS store and hybrid retriever over it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import Field

from rag import Assistant, BackendError, Settings
from rag.config import IndexSettings
from rag.llm import ChatBackend
from rag.llm.base import Messages, OnStart
from rag.search.faiss_store import Store
from rag.search.lexical import analyze
from rag.search.retrieval import HybridRetriever
from rag.types import Chunk

DIM = 512
# A few English words of the fake article's topic, in Italian: the fake "crosses languages" for them.
LEXICON = {
    "signed": "firmato", "pact": "accordo", "agreement": "accordo", "mutual": "mutua", "defence": "difesa",
    "offered": "offerto", "full": "pieno", "support": "sostegno", "russian": "russo", "ukraine": "ucraina",
    "intervention": "intervento", "friend": "amico", "korean": "coreano", "people": "popolo",
}


class FakeEmbedder:
    """Bag of Italian stems (English words of ``LEXICON`` translated), hashed into ``DIM``
    buckets and L2-normalised."""

    dim = DIM
    model_id = "fake-bag-of-stems"

    def __init__(self) -> None:
        self.calls = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(DIM, np.float32)
        italian = " ".join(LEXICON.get(w, w) for w in re.findall(r"[\w'-]+", text.lower()))
        for term in analyze(italian, "it"):
            v[int(hashlib.md5(term.encode()).hexdigest(), 16) % DIM] += 1.0
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.encode_queries(texts)


class ScriptedChat(ChatBackend):
    """Replies from a script, in order, and keeps every prompt and option it was sent."""

    name = "scripted"

    def __init__(self, *replies: str, grammar: bool = True, delay_s: float = 0.0) -> None:
        self.replies = list(replies)
        self.supports_grammar = grammar
        self.delay_s = delay_s
        self.calls: list[dict[str, Any]] = []
        self.streaming = 0  # replies started and not yet ended or closed (a stopped one must not stay open)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _pieces(
        self, messages: Messages, *, grammar: str | None, max_tokens: int | None, stop: list[str] | None,
        on_start: OnStart,
    ) -> Iterator[str]:
        on_start()
        self.calls.append({"messages": list(messages), "grammar": grammar, "max_tokens": max_tokens, "stop": stop})
        if not self.replies:
            raise AssertionError("the chat model was called more often than scripted")
        self.streaming += 1
        try:
            for word in self.replies.pop(0).split(" "):
                if self.delay_s:
                    time.sleep(self.delay_s)
                yield word + " "
        finally:
            self.streaming -= 1


class DownChat(ChatBackend):
    """A backend that is down: every call fails like a refused connection."""

    name = "down"

    def _pieces(self, messages: Messages, **_: Any) -> Iterator[str]:
        raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
        yield ""  # a generator, like real backends


class EndlessChat(ChatBackend):
    """Writes forever, slowly: only the deadline stops it."""

    name = "endless"

    def _pieces(self, messages: Messages, *, on_start: OnStart, **_: Any) -> Iterator[str]:
        on_start()
        while True:
            time.sleep(0.05)
            yield "bla "


class MustNotBeCalled(ChatBackend):
    name = "must-not-be-called"

    def _pieces(self, messages: Messages, **_: Any) -> Iterator[str]:
        raise BackendError("the LLM must not be called")
        yield ""


# A short Italian article, one passage a paragraph (title and date as the product stores them).
ARTICLE = [
    "Putin ha firmato un accordo di mutua difesa con Kim Jong-un a Pyongyang. "
    "L'accordo prevede assistenza militare reciproca in caso di aggressione.",
    "Kim ha offerto il suo pieno sostegno all'intervento russo in Ucraina. "
    "Ha definito Putin il più caro amico del popolo coreano.",
    "Gli Stati Uniti accusano la Corea del Nord di fornire missili e munizioni alla Russia. "
    "Washington ha annunciato nuove sanzioni.",
]


def article_chunks(paragraphs: list[str] = ARTICLE, language: str = "it") -> list[Chunk]:
    chunks, at = [], 0
    for i, text in enumerate(paragraphs):
        chunks.append(Chunk(f"doc1:{i:04d}", "doc1", i, "Un accordo di mutua difesa", "2024-06", None, at,
                            at + len(text), text, language))
        at += len(text) + 2
    return chunks


def fake_assistant(
    home: Path, chat: ChatBackend | None = None, paragraphs: list[str] = ARTICLE, **settings: Any
) -> Assistant:
    """An assistant over the fake article, with the fake embedder and ``chat`` for ``llm.backend``."""
    llm = {"backend": "llamacpp", "answer_check": False, **settings.pop("llm", {})}
    retrieval = {"min_relevance": 0.3, "translate_query": False, **settings.pop("retrieval", {})}
    s = Settings(home=home, llm=llm, retrieval=retrieval, **settings)
    embedder = FakeEmbedder()
    chunks = article_chunks(paragraphs)
    store = Store(DIM, IndexSettings())
    store.add(chunks, embedder.encode_passages([c.text for c in chunks]))
    return Assistant(s, embedder=embedder, retriever=HybridRetriever(store, embedder, s.retrieval), chat=chat)


class Recording(GenericFakeChatModel):
    """A LangChain chat model replying from a script and keeping every prompt it was sent."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _stream(self, messages: list[BaseMessage], *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        self.prompts.append(messages)
        yield from super()._stream(messages, *a, **k)


def recording(*replies: str) -> Recording:
    return Recording(messages=iter([AIMessage(r) for r in replies]), prompts=[])


class Exploding(GenericFakeChatModel):
    """A LangChain backend that is down: every call fails like a refused connection."""

    def _stream(self, messages: list[BaseMessage], *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
        yield ChatGenerationChunk(message=AIMessageChunk(content=""))  # a generator, like real backends
