"""The exceptions the public API raises. Each carries a message meant for users.

Everything derives from :class:`RagError`, so callers (CLI, UI) catch one class
and show ``str(err)``; nothing here should ever surface as a traceback.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error the assistant reports to users.

    ``code`` (with ``params``) names the errors a person can cause and fix (an empty
    question, a binary upload, ...), so the page can say them in its own language;
    ``str(err)`` is the English message.
    """

    def __init__(self, message: str = "", *, code: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class InvalidQuestionError(RagError, ValueError):
    """The question or query is empty, too long or unusable."""


class DocumentError(RagError):
    """A document to ingest is missing, unreadable, binary or not UTF-8."""


class IndexCorruptError(RagError):
    """The index folder is damaged; run ``rag index --rebuild``."""


class IndexWriteError(RagError):
    """The index could not be saved (disk full, no permission); the articles are kept."""


class StoreUnavailableError(RagError):
    """The vector store cannot be opened now (a server down, Milvus Lite's file held by another process)."""


class ModelNotFoundError(RagError):
    """A model file or folder is missing or fails verification."""


class BackendError(RagError):
    """The language-model backend failed (unreachable, timeout, bad output)."""


class BackendTimeoutError(BackendError):
    """The language model did not finish within ``llm.timeout_s``."""


class ConfigError(RagError):
    """The settings are invalid."""
