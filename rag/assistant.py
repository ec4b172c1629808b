"""The service every interface (Python, CLI, UI) goes through.

The ``Assistant`` owns its components — settings, embedding model, index and
retriever, chat backends — builds each on first use (or takes them ready-made)
and hands them to the answer pipeline; no other module reaches back into it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from .answer.followup import History
from .answer.pipeline import AnswerPipeline, Retriever, validate_query
from .config import Settings, load_settings, passage_count
from .corpus.documents import decode_article, document_id
from .corpus.ingest import IngestReport, ingest_paths
from .errors import ConfigError, DocumentError, RagError
from .llm import ANSWER_ENGINES, EXTRACTIVE, ChatBackend, LangChainBackend, create_backend
from .runtime import configure
from .search.embedding import Encoder, load_embedder
from .search.indexer import SyncReport, indexed_manifest, load_documents, sync_index
from .search.retrieval import HybridRetriever
from .types import Answer, SearchHit


class Assistant:
    """Cited question answering over the articles in ``docs_store/``.

    >>> a = Assistant()
    >>> hits = a.search("Chi ha firmato l'accordo?", k=4)
    >>> answer = a.ask("Who signed the mutual defence pact?")

    Components can be passed in ready-made (tests, evaluation): ``embedder``, a
    ``retriever`` over a prepared index (then ``docs_store/`` is not read), and a
    ``chat`` backend (a ``ChatBackend`` or any LangChain chat model) used for
    ``llm.backend``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Encoder | None = None,
        retriever: Retriever | None = None,
        chat: ChatBackend | BaseChatModel | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(**overrides)
        configure(self.settings)
        self._lock = threading.RLock()
        self._embedder = embedder
        self._retriever = retriever
        self._chats: dict[str, ChatBackend] = {}
        if chat is not None:
            self._chats[self.settings.llm.backend] = as_backend(chat)

    # components ------------------------------------------------------------
    @property
    def embedder(self) -> Encoder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings)
            return self._embedder

    def index(self, rebuild: bool = False, progress: bool = True) -> SyncReport:
        """Bring the index in step with the store (load, update or rebuild)."""
        with self._lock:
            store, report = sync_index(self.settings, self.embedder, rebuild=rebuild, progress=progress)
            self._retriever = HybridRetriever(store, self.embedder, self.settings.retrieval)
            return report

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self.index(progress=False)
            assert self._retriever is not None
            return self._retriever

    def chat_backend(self, name: str | None = None) -> ChatBackend:
        """The chat backend ``name`` (default ``llm.backend``), loaded once and shared by every chat."""
        name = name or self.settings.llm.backend
        if name == EXTRACTIVE:
            raise ConfigError("The extractive answer engine uses no chat model.")
        with self._lock:
            if name not in self._chats:
                self._chats[name] = create_backend(name, self.settings.llm, self.settings.home)
            return self._chats[name]

    def warm_up(self) -> list[str]:
        """Load the index and the configured chat model before the first question; returns
        what could not be loaded (the answers then fall back to quotes, saying why)."""
        self.retriever  # noqa: B018 - builds or loads the index
        if self.settings.llm.backend == EXTRACTIVE:
            return []
        try:
            self.chat_backend()
        except RagError as err:
            return [str(err)]
        return []

    def derive(self, *, settings: Settings | None = None, retriever: Retriever | None = None) -> Assistant:
        """An assistant sharing this one's models (embedder, chat backends) and, unless
        ``retriever`` is given, its index; with other ``settings`` if given (e.g. another
        refusal threshold: what the index was built with must stay the same)."""
        other = Assistant(settings or self.settings, embedder=self._embedder, retriever=retriever or self._retriever)
        other._chats = self._chats  # the same dict: a model loaded by either serves both
        return other

    def close(self) -> None:
        """Free the chat models."""
        with self._lock:
            for chat in self._chats.values():
                chat.close()
            self._chats.clear()

    # public API ------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> list[SearchHit]:
        """Top-k passages for ``query`` with scores, metadata and char spans."""
        q = validate_query(query, self.settings.retrieval.max_query_chars)
        return self.retriever.search(q, passage_count(k, self.settings.retrieval.k))

    def ingest(self, paths: Sequence[str | Path]) -> IngestReport:
        """Add articles (files or folders); the index is updated for new ones.

        Also for articles already in the store but not in this process's index (added
        by another process, or whose indexing failed before): "already loaded" must
        mean searchable.
        """
        with self._lock:
            known = {d.doc_id for d in load_documents(self.settings)[0]}
            report = ingest_paths(
                [Path(p) for p in paths], self.settings.docs_dir, known, self.settings.max_document_bytes
            )
            if report.added or (self._retriever is not None and not known <= self._indexed_ids()):
                self.index()
            return report

    def _chunks(self) -> list[Any]:
        store = getattr(self.retriever, "store", None)
        return store.chunks if store is not None else []

    def _indexed_ids(self) -> set[str]:
        return {c.doc_id for c in self._chunks()} if self._retriever is not None else set()

    def documents(self) -> list[dict[str, Any]]:
        """Title, date, language and passage count of every indexed article."""
        counts: dict[str, int] = {}
        for c in self._chunks():
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        docs, _ = load_documents(self.settings)
        return [
            {
                "doc_id": d.doc_id,
                "title": d.title,
                "date": d.date,
                "language": d.language,
                "source": d.source,
                "passages": counts.get(d.doc_id, 0),
            }
            for d in docs
        ]

    def document_text(self, doc_id: str) -> str:
        """An article's text: read from its file as indexed, or found in the store if it moved."""
        source = indexed_manifest(self.settings).documents.get(doc_id)
        if source:
            try:
                text = decode_article(Path(source).read_bytes(), source)
                if document_id(text) == doc_id:
                    return text
            except (OSError, DocumentError):
                pass
        for d in load_documents(self.settings)[0]:
            if d.doc_id == doc_id:
                return d.text
        raise KeyError(doc_id)

    def ask(self, question: str, history: History | None = None, **options: Any) -> Answer:
        """A cited answer in the question's language (see ``rag.answer.pipeline``)."""
        answer: Answer | None = None
        for item in self.ask_stream(question, history, **options):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        history: History | None = None,
        *,
        backend: str | None = None,
        k: int | None = None,
        default_language: str = "en",
        chat: ChatBackend | BaseChatModel | None = None,
    ) -> Generator[str | Answer, None, None]:
        """Yields answer text as it is generated, then the final :class:`Answer`.

        ``backend``: a name of ``rag.llm.ANSWER_ENGINES`` (default ``llm.backend``);
        ``chat``: any chat model for this call instead.
        """
        validate_query(question, self.settings.retrieval.max_query_chars)
        passages = passage_count(k, self.settings.retrieval.k)
        engine = backend or self.settings.llm.backend
        if engine not in ANSWER_ENGINES:
            raise ConfigError(f"Unknown answer engine {engine!r}; choose one of {', '.join(ANSWER_ENGINES)}.")
        model: ChatBackend | None = None
        error: str | None = None
        if chat is not None:
            model = as_backend(chat)
        elif engine != EXTRACTIVE:
            try:
                model = self.chat_backend(engine)
            except RagError as err:
                if not self.settings.llm.fallback_to_extractive:
                    raise
                error = str(err)
        engine = model.name if model is not None else engine
        pipeline = AnswerPipeline(self.settings, self.retriever, model, engine, error)
        yield from pipeline.stream(question, history, k=passages, default_language=default_language)


def as_backend(chat: ChatBackend | BaseChatModel) -> ChatBackend:
    """A chat backend as is; any LangChain chat model through the adapter."""
    return chat if isinstance(chat, ChatBackend) else LangChainBackend(chat)
