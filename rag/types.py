"""Typed records passed between modules and returned by the public API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args


@dataclass(frozen=True)
class Document:
    """One article. ``text`` is the whole file; spans index into it."""

    doc_id: str
    title: str
    date: str | None
    source: str
    language: str
    text: str
    # Where the body starts (after a metadata first line, if any).
    body_start: int = 0


@dataclass(frozen=True)
class Chunk:
    """A passage of a document. ``text == document.text[start:end]``."""

    chunk_id: str
    doc_id: str
    number: int
    title: str
    date: str | None
    heading: str | None
    start: int
    end: int
    text: str
    # The document's language (None in indexes made before it was recorded).
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk with its fused score and the component scores."""

    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    bm25_score: float | None = None

    # Flat accessors so callers read hit.text, hit.doc_id, ...
    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def date(self) -> str | None:
        return self.chunk.date

    @property
    def span(self) -> tuple[int, int]:
        return (self.chunk.start, self.chunk.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 6),
            **self.chunk.to_dict(),
        }


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer; ``quote == document.text[start:end]``."""

    number: int
    doc_id: str
    title: str
    date: str | None
    chunk_id: str
    quote: str
    start: int
    end: int
    # The chunk the quote comes from, for showing it in context.
    chunk_start: int
    chunk_end: int
    passage: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The steps of an answer, in order, as ``Stage.name`` reports them.
StageName = Literal["loading", "rewriting", "searching", "translating", "reading", "writing", "checking"]
STAGES: tuple[StageName, ...] = get_args(StageName)


@dataclass(frozen=True)
class Stage:
    """A step of the pipeline, reported as it starts (progress for the page and the CLI).

    ``name`` is one of ``STAGES``; ``passages`` is how many passages the model reads
    ("reading"); ``elapsed`` counts seconds from when the question was asked.
    """

    name: StageName
    elapsed: float
    passages: int = 0


@dataclass(frozen=True)
class Answer:
    """A cited answer (or a refusal), built once when the pipeline ends."""

    question: str
    text: str
    language: str
    answerable: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[SearchHit] = field(default_factory=list)
    backend: str = ""
    fell_back: bool = False
    fallback_reason: str | None = None
    refusal_reason: str | None = None
    # Best question/sentence cosine among the passages (the refusal signal).
    relevance: float | None = None
    searched_for: str = ""
    # The question translated into the articles' language, searched beside it.
    translated_query: str | None = None
    # The model read every indexed passage, not only ``passages`` (llm.whole_corpus_tokens).
    read_whole_corpus: bool = False
    note: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Stopped by the caller (``cancel``) before it was complete: ``text`` says so, nothing is cited.
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "searched_for": self.searched_for,
            "translated_query": self.translated_query,
            "read_whole_corpus": self.read_whole_corpus,
            "text": self.text,
            "language": self.language,
            "answerable": self.answerable,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [h.to_dict() for h in self.passages],
            "backend": self.backend,
            "fell_back": self.fell_back,
            "fallback_reason": self.fallback_reason,
            "refusal_reason": self.refusal_reason,
            "relevance": None if self.relevance is None else round(self.relevance, 4),
            "note": self.note,
            "stopped": self.stopped,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
