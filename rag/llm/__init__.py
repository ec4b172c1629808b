"""Chat backends: one contract (``ChatBackend``), one file per implementation, one registry of names.

Only the names load eagerly (``rag.config`` reads them); the contract and the
registry, which pull in LangChain, load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .names import ANSWER_ENGINES, BACKENDS, DEFAULT_BACKEND, EXTRACTIVE

if TYPE_CHECKING:
    from .base import ChatBackend
    from .langchain import LangChainBackend
    from .registry import backend_identity, create_backend, describe_backend

_LAZY = {
    "ChatBackend": ".base",
    "LangChainBackend": ".langchain",
    "backend_identity": ".registry",
    "create_backend": ".registry",
    "describe_backend": ".registry",
}

__all__ = [
    "ANSWER_ENGINES",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "EXTRACTIVE",
    "ChatBackend",
    "LangChainBackend",
    "backend_identity",
    "create_backend",
    "describe_backend",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
