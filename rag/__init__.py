"""Offline, cited-answer chat assistant over news articles.

Public API::

    from rag import Assistant
    a = Assistant()
    a.search("Chi ha firmato l'accordo?", k=4)
    a.ask("Who signed the mutual defence pact?")
"""

from .assistant import Assistant
from .config import Settings, load_settings
from .errors import (
    BackendError,
    ConfigError,
    DocumentError,
    IndexCorruptError,
    IndexWriteError,
    InvalidQuestionError,
    ModelNotFoundError,
    RagError,
)
from .llm import ANSWER_ENGINES, BACKENDS, EXTRACTIVE, ChatBackend
from .types import STAGES, Answer, Chunk, Citation, Document, SearchHit, Stage

__all__ = [
    "ANSWER_ENGINES",
    "BACKENDS",
    "EXTRACTIVE",
    "STAGES",
    "Answer",
    "Assistant",
    "BackendError",
    "ChatBackend",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "DocumentError",
    "IndexCorruptError",
    "IndexWriteError",
    "InvalidQuestionError",
    "ModelNotFoundError",
    "RagError",
    "SearchHit",
    "Settings",
    "Stage",
    "load_settings",
]
