"""Chat backends: one contract (``ChatBackend``), one file per implementation, one registry of names."""

from .base import ChatBackend
from .langchain import LangChainBackend
from .registry import ANSWER_ENGINES, BACKENDS, EXTRACTIVE, backend_identity, create_backend

__all__ = [
    "ANSWER_ENGINES",
    "BACKENDS",
    "EXTRACTIVE",
    "ChatBackend",
    "LangChainBackend",
    "backend_identity",
    "create_backend",
]
