"""The service every interface (Python, CLI, UI) goes through.

The ``Assistant`` owns its components — settings, embedding model, index and
retriever, chat backends — builds each on first use (or takes them ready-made)
and hands them to the answer pipeline; no other module reaches back into it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer.followup import History
from .answer.pipeline import AnswerPipeline, Retriever, validate_query
from .config import Settings, load_settings, passage_count
from .corpus.chunking import chunk_document
from .corpus.documents import DocumentCache, decode_article, document_id
from .corpus.ingest import IngestReport, ingest_paths, remove_documents
from .corpus.screening import find_instructions
from .errors import ConfigError, DocumentError, RagError
from .llm import ANSWER_ENGINES, EXTRACTIVE, ChatBackend, LangChainBackend, create_backend
from .runtime import configure
from .search.embedding import Encoder, load_embedder
from .search.indexer import IndexBusy, SyncReport, indexed_manifest, load_documents, open_index, sync_index
from .search.retrieval import BM25_FILE, HybridRetriever
from .search.sentence_vectors import SentenceVectors
from .search.stores import VectorStore, manifest_stamp
from .types import Answer, Document, SearchHit, Stage

if TYPE_CHECKING:  # importing LangChain's chat models costs ~1 s of every start; only a user's model needs it
    from langchain_core.language_models.chat_models import BaseChatModel

# Folder of the index where the chat model's prompt states are saved (llm.prompt_cache_dir).
PROMPT_STATES = "prompt-states"


@dataclass
class _Models:
    """The chat backends of an assistant and of those derived from it, loaded once each.

    Their own lock: loading a model takes seconds and must not hold up searches.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    chats: dict[str, ChatBackend] = field(default_factory=dict)


class Assistant:
    """Cited question answering over the articles in ``docs_store/``.

    >>> a = Assistant()
    >>> hits = a.search("Chi ha firmato l'accordo?", k=4)
    >>> answer = a.ask("Who signed the mutual defence pact?")

    Components can be passed in ready-made (tests, evaluation): ``embedder``, a
    ``retriever`` over a prepared index (used instead of indexing ``docs_store/``),
    and a ``chat`` backend (a ``ChatBackend`` or any LangChain chat model) that
    answers for the engine ``llm.backend`` names.
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
        # Guards the components; held only for moments, never while indexing.
        self._lock = threading.RLock()
        # One writer of the index at a time in this process (sync_index also locks the folder
        # against other processes); searches go on against the previous index meanwhile.
        self._write_lock = threading.Lock()
        self._embedder = embedder
        self._retriever = retriever
        self._models = _Models()
        # When this process last read the index's manifest: another process (`rag ingest`,
        # `rag remove` beside the page) that rewrites it makes the next search reload it.
        self._seen_manifest: tuple[int, int] | None = None
        self._generation: str | None = None
        # The store's articles as last read: a sync or ingest reads only files that changed.
        self._documents = DocumentCache()
        self._sentences: SentenceVectors | None = None
        if chat is not None:
            self._models.chats[self.settings.llm.backend] = as_backend(chat)

    # components ------------------------------------------------------------
    @property
    def embedder(self) -> Encoder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings)
            return self._embedder

    @property
    def sentence_vectors(self) -> SentenceVectors | None:
        """The passages' sentence vectors saved beside the index (``index.sentence_vectors``)."""
        if not self.settings.index.sentence_vectors:
            return None
        with self._lock:
            if self._sentences is not None:
                return self._sentences
        embedder = self.embedder
        loaded = SentenceVectors(self.settings.index_dir, embedder.model_id, embedder.dim)  # reads files: unlocked
        with self._lock:
            if self._sentences is None:
                self._sentences = loaded
            return self._sentences

    def index(self, rebuild: bool = False, progress: bool = True) -> SyncReport:
        """Bring the index in step with the store (load, update or rebuild).

        The new index is built beside the one in use and swapped in when ready, so
        questions asked meanwhile are answered from the previous one. Passages indexed
        without their sentence vectors (``index.sentence_vectors``) get them here.
        """
        with self._write_lock:
            return self._sync(rebuild, progress, fill_sentences=True)

    def _sync(self, rebuild: bool, progress: bool, wait: bool = True, fill_sentences: bool = False) -> SyncReport:
        with self._lock:  # the index in hand, if still the saved one: updated without reading it again
            served = self._retriever
            current = (served.store, self._generation) if isinstance(served, HybridRetriever) else None
            self._generation = None  # until this sync succeeds (a failed one may leave rows behind)
        store, report = sync_index(
            self.settings, self.embedder, rebuild=rebuild, progress=progress, wait=wait, current=current,
            documents=self._documents, sentences=self.sentence_vectors, fill_sentences=fill_sentences,
        )
        self._serve(store, report.stamp, report.generation)
        return report

    def _serve(self, store: VectorStore, stamp: tuple[int, int] | None, generation: str | None = None) -> None:
        """Answer from ``store`` from now on; ``stamp``: the manifest it was read from;
        ``generation``: the saved index it is, when this process synced it (None: re-read it
        before changing it)."""
        with self._lock:
            previous = self._retriever if isinstance(self._retriever, HybridRetriever) else None
        if previous is not None and previous.store is store:
            retriever = previous  # nothing changed
        else:  # the sentence vectors of passages already seen are kept
            retriever = HybridRetriever(
                store, self.embedder, self.settings.retrieval, carry=previous,
                bm25_file=self.settings.index_dir / BM25_FILE, sentences=self.sentence_vectors,
            )
        with self._lock:
            self._retriever, self._seen_manifest, self._generation = retriever, stamp, generation

    def _manifest_stamp(self) -> tuple[int, int] | None:
        return manifest_stamp(self.settings.index_dir)

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            current = self._retriever
            # An index given ready-made is not this process's to reload.
            changed = self._seen_manifest is not None and self._manifest_stamp() != self._seen_manifest
            if current is not None and not changed:
                return current
        if current is not None:
            # Changed by another process (`rag ingest` beside the page): open it as saved, without
            # waiting for any lock and without embedding anything in this question's time; when
            # this process is itself writing (an upload), the index in hand answers meanwhile.
            if self._write_lock.acquire(blocking=False):
                try:
                    self._reopen()
                finally:
                    self._write_lock.release()
            return self._retriever  # type: ignore[return-value]
        with self._write_lock:  # first use: load it (once, however many ask), bringing it up to date
            if self._retriever is None:
                try:
                    self._sync(rebuild=False, progress=False, wait=False)
                except IndexBusy:  # another process is writing it: its last saved state, or wait
                    if not self._reopen():
                        self._sync(rebuild=False, progress=False)
        assert self._retriever is not None
        return self._retriever

    def _reopen(self) -> bool:
        """The index as another process last saved it (``open_index``); False when unusable."""
        stamp = self._manifest_stamp()  # before reading: a later save is seen at the next question
        store = open_index(self.settings, self.embedder, self._documents)
        if store is None:
            return False
        if (sentences := self.sentence_vectors) is not None:
            sentences.refresh()  # the writer's new passages'
        self._serve(store, stamp)
        return True

    def chat_backend(self, name: str | None = None) -> ChatBackend:
        """The chat backend ``name`` (default ``llm.backend``), loaded once and shared by every chat."""
        name = name or self.settings.llm.backend
        if name == EXTRACTIVE:
            raise ConfigError("The extractive answer engine uses no chat model.")
        with self._models.lock:
            if name not in self._models.chats:
                llm = self.settings.llm
                if not llm.prompt_cache_dir:  # saved prompt states live with the index they were read from
                    llm = llm.model_copy(update={"prompt_cache_dir": str(self.settings.index_dir / PROMPT_STATES)})
                self._models.chats[name] = create_backend(name, llm, self.settings.home)
            return self._models.chats[name]

    def warm_up(self) -> list[str]:
        """Load the index and the configured chat model before the first question, and have
        the model read the articles when they are shown whole (``AnswerPipeline.prime``);
        returns what could not be loaded (the answers then fall back to quotes, saying why)."""
        retriever = self.retriever
        if self.settings.llm.backend == EXTRACTIVE:
            return []
        try:
            chat = self.chat_backend()
            AnswerPipeline(self.settings, retriever, chat.name, chat=chat).prime()
        except RagError as err:
            return [str(err)]
        return []

    def derive(self, *, settings: Settings | None = None, retriever: Retriever | None = None) -> Assistant:
        """An assistant sharing this one's models (embedder, chat backends) and, unless
        ``retriever`` is given, its index; with other ``settings`` if given (e.g. another
        refusal threshold: what the index was built with must stay the same). Settings with
        other folders (``docs_dir``/``index_dir``) get their own index, still sharing the models."""
        settings = settings or self.settings
        same_folders = (settings.docs_dir, settings.index_dir) == (self.settings.docs_dir, self.settings.index_dir)
        shared = self._retriever if same_folders else None
        other = Assistant(settings, embedder=self._embedder, retriever=retriever or shared)
        other._models = self._models  # a model loaded by either serves both
        if same_folders:
            other._documents, other._sentences = self._documents, self._sentences
        return other

    def close(self) -> None:
        """Free the chat models (of the assistants derived from this one too)."""
        with self._models.lock:
            for chat in self._models.chats.values():
                chat.close()
            self._models.chats.clear()

    # public API ------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> list[SearchHit]:
        """Top-k passages for ``query`` with scores, metadata and char spans."""
        q = validate_query(query, self.settings.retrieval.max_query_chars)
        return self.retriever.search(q, passage_count(k, self.settings.retrieval.k))

    def ingest(self, paths: Sequence[str | Path], progress: bool = True) -> IngestReport:
        """Add articles (files or folders); the index is updated for new ones.

        Also for articles already in the store but not in the index (added by another
        process, or whose indexing was interrupted: it resumes where it stopped): "already
        loaded" must mean searchable. ``progress``: bars on stderr for long work.
        """
        with self._write_lock:
            known = {d.doc_id for d in self._load_documents()}
            report = ingest_paths(
                [Path(p) for p in paths], self.settings.docs_dir, known, self.settings.max_document_bytes, self._vet,
                progress,
            )
            if report.added or not known <= self._indexed_ids():
                report.embedded = self._sync(rebuild=False, progress=progress).embedded_chunks
            return report

    def remove(self, doc_ids: Sequence[str]) -> list[Document]:
        """Remove articles from the store (by id, or an unambiguous id prefix) and the index.

        Raises DocumentError naming any id that matches no article (nothing is removed then).
        """
        with self._write_lock:
            docs = self._load_documents()
            chosen: set[str] = set()
            for wanted in doc_ids:
                matches = {d.doc_id for d in docs if d.doc_id.startswith(wanted.strip())} if wanted.strip() else set()
                if len(matches) != 1:
                    why = "matches no article" if not matches else f"matches {len(matches)} articles"
                    raise DocumentError(f"the article id {wanted!r} {why} (`rag documents` lists them).")
                chosen |= matches
            try:
                removed = remove_documents(chosen, self.settings.docs_dir, self.settings.max_document_bytes)
            finally:  # the index follows the store, also when a removal stopped half-way
                self._sync(rebuild=False, progress=False)
            return removed

    def _vet(self, doc: Document) -> None:
        """Refuse an article that addresses the assistant (unless allowed) or would make too many passages."""
        cfg = self.settings.ingest
        # The title too: one taken from the file name goes into every prompt citing the article.
        if cfg.instructions == "refuse" and (found := find_instructions(f"{doc.title}\n{doc.text}")):
            raise DocumentError(
                f"{doc.source}: refused, the text {found[0].reason} («{found[0].excerpt}…»). Articles are "
                "read as data, never as instructions; set ingest.instructions = \"allow\" for a trusted source.",
                code="instructions", name=Path(doc.source).name, excerpt=found[0].excerpt,
            )
        passages = len(chunk_document(doc, self.settings.chunking))
        if passages > cfg.max_passages:
            raise DocumentError(
                f"{doc.source}: would make {passages:,} passages; the limit is {cfg.max_passages:,} "
                "(ingest.max_passages). Split it into several articles.",
                code="too_many_passages", name=Path(doc.source).name, passages=passages, limit=cfg.max_passages,
            )

    def _load_documents(self) -> list[Document]:
        return load_documents(self.settings, cache=self._documents)[0]

    def _indexed_ids(self) -> set[str]:
        """The articles in the index: this process's, or as the saved index lists them (read
        without loading any model)."""
        if self._retriever is not None:
            return set(self._retriever.passage_counts())
        return set(indexed_manifest(self.settings).documents)

    def documents(self) -> list[dict[str, Any]]:
        """Title, date, language and passage count of every indexed article."""
        counts = self.retriever.passage_counts()
        docs = self._load_documents()
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
        for d in self._load_documents():
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
        cancel: threading.Event | None = None,
    ) -> Generator[str | Stage | Answer, None, None]:
        """Yields a :class:`Stage` as each step starts, answer text as it is generated,
        then the final :class:`Answer`.

        ``backend``: a name of ``rag.llm.ANSWER_ENGINES`` (default ``llm.backend``);
        ``chat``: any chat model for this call instead; ``cancel``: set it (from any
        thread) to stop the work at the next step or token; the last item is then an
        Answer with ``stopped`` true.
        """
        t0 = time.perf_counter()
        validate_query(question, self.settings.retrieval.max_query_chars)
        passages = passage_count(k, self.settings.retrieval.k)
        engine = backend or self.settings.llm.backend
        if engine not in ANSWER_ENGINES:
            raise ConfigError(f"Unknown answer engine {engine!r}; choose one of {', '.join(ANSWER_ENGINES)}.")
        needs_model = chat is None and engine != EXTRACTIVE
        cold = self._retriever is None or (needs_model and engine not in self._models.chats)
        if cold:  # the first question (or one asked while the page warms up) waits for the models
            yield Stage("loading", time.perf_counter() - t0)
        retriever = self.retriever
        if chat is not None:
            model = as_backend(chat)
            pipeline = AnswerPipeline(self.settings, retriever, model.name, chat=model)
        elif engine == EXTRACTIVE:
            pipeline = AnswerPipeline(self.settings, retriever, engine)
        else:  # opened by the pipeline when first needed: a refused question never loads it
            pipeline = AnswerPipeline(self.settings, retriever, engine, open_chat=lambda: self.chat_backend(engine))
        yield from pipeline.stream(
            question, history, k=passages, default_language=default_language, t0=t0, cancel=cancel
        )


def as_backend(chat: ChatBackend | BaseChatModel) -> ChatBackend:
    """A chat backend as is; any LangChain chat model through the adapter."""
    return chat if isinstance(chat, ChatBackend) else LangChainBackend(chat)
