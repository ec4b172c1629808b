"""The registry of chat backends: builds one by name (names in ``rag.llm.names``)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import LLMSettings
    from .base import ChatBackend

from .names import ANSWER_ENGINES, BACKEND_MODULES


def backend_identity(name: str, cfg: LLMSettings) -> str:
    """Which model ``name`` would answer with, for caches keyed by model (no model loaded)."""
    return import_module(BACKEND_MODULES[name]).identity(cfg)  # type: ignore[no-any-return]


def create_backend(name: str, cfg: LLMSettings, home: Path) -> ChatBackend:
    """The backend ``name``, configured by ``cfg`` (relative paths from ``home``)."""
    if name not in BACKEND_MODULES:
        from ..errors import BackendError

        raise BackendError(f"Unknown chat backend {name!r}; choose one of {', '.join(ANSWER_ENGINES)}.")
    # Each implementation is imported on first use: each pulls a heavy client.
    backend: ChatBackend = import_module(BACKEND_MODULES[name]).create(cfg, home)
    backend.name = name
    return backend
