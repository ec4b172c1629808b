"""Chat backends: one contract (``ChatBackend``), one file per implementation, one registry of names."""

from .base import ChatBackend
from .langchain import LangChainBackend
from .names import ANSWER_ENGINES, BACKENDS, EXTRACTIVE
from .registry import backend_identity, create_backend

__all__ = [
    "ANSWER_ENGINES",
    "BACKENDS",
    "EXTRACTIVE",
    "ChatBackend",
    "LangChainBackend",
    "backend_identity",
    "create_backend",
]
