"""The service every interface (Python, CLI, UI) goes through."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from .config import Settings, load_settings, passage_count
from .documents import decode_article, document_id
from .embed import Embedder, get_embedder
from .errors import DocumentError, InvalidQuestionError
from .indexer import SyncReport, indexed_manifest, load_documents, sync_index
from .ingest import IngestReport, ingest_paths
from .retrieve import HybridRetriever
from .types import Answer, SearchHit


def validate_query(text: object, max_chars: int) -> str:
    """The stripped query, or a clear InvalidQuestionError."""
    if not isinstance(text, str):
        raise InvalidQuestionError("The question must be text.")
    query = text.strip()
    if not query:
        raise InvalidQuestionError("The question is empty: type a question about the articles.")
    if len(query) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(query):,} characters long; the limit is {max_chars:,}. Please shorten it."
        )
    return query


class Assistant:
    """Cited question answering over the articles in ``docs_store/``.

    >>> a = Assistant()
    >>> hits = a.search("Chi ha firmato l'accordo?", k=4)
    >>> answer = a.ask("Who signed the mutual defence pact?")
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or load_settings(**overrides)
        self._lock = threading.RLock()
        self._retriever: HybridRetriever | None = None
        self.last_sync: SyncReport | None = None

    # components ------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings)

    def index(self, rebuild: bool = False, progress: bool = True) -> SyncReport:
        """Bring the index in step with the store (load, update or rebuild)."""
        with self._lock:
            store, report = sync_index(self.settings, self.embedder, rebuild=rebuild, progress=progress)
            self._retriever = HybridRetriever(store, self.embedder, self.settings.retrieval)
            self.last_sync = report
            return report

    @property
    def retriever(self) -> HybridRetriever:
        with self._lock:
            if self._retriever is None:
                self.index(progress=False)
            assert self._retriever is not None
            return self._retriever

    def corpus_languages(self) -> list[str]:
        """Languages of the indexed articles (read from the index itself, so an assistant
        over a prepared retriever, like the evaluation's, knows them too)."""
        languages = {c.language for c in self.retriever.store.chunks if c.language}
        if self.last_sync:  # an index from before chunks recorded their language
            languages.update(self.last_sync.languages)
        return sorted(languages)

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

    def _indexed_ids(self) -> set[str]:
        return {c.doc_id for c in self._retriever.store.chunks} if self._retriever else set()

    def documents(self) -> list[dict[str, Any]]:
        """Title, date, language and passage count of every indexed article."""
        retriever = self.retriever
        counts: dict[str, int] = {}
        for c in retriever.store.chunks:
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

    def ask(self, question: str, history: Sequence[tuple[str, str]] | None = None, **options: Any) -> Answer:
        """A cited answer in the question's language (see ``rag.answer``)."""
        answer: Answer | None = None
        for item in self.ask_stream(question, history, **options):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(
        self, question: str, history: Sequence[tuple[str, str]] | None = None, **options: Any
    ) -> Generator[str | Answer, None, None]:
        """Yields answer text as it is generated, then the final :class:`Answer`."""
        from .answer import answer_stream

        yield from answer_stream(self, question, history, **options)
