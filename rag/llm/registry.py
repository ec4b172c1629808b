"""The names of the chat backends, written once: config, CLI and UI read them here."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import LLMSettings
    from .base import ChatBackend

# name -> module whose ``create(cfg, home)`` builds it (imported on first use: each pulls a heavy client).
_MODULES = {"llamacpp": "rag.llm.llamacpp", "openai": "rag.llm.openai"}
BACKENDS: tuple[str, ...] = tuple(_MODULES)
# Not a backend: the answer is quoted from the passages, no chat model involved.
EXTRACTIVE = "extractive"
ANSWER_ENGINES: tuple[str, ...] = (*BACKENDS, EXTRACTIVE)


def backend_identity(name: str, cfg: LLMSettings) -> str:
    """Which model ``name`` would answer with, for caches keyed by model (no model loaded)."""
    return import_module(_MODULES[name]).identity(cfg)  # type: ignore[no-any-return]


def create_backend(name: str, cfg: LLMSettings, home: Path) -> ChatBackend:
    """The backend ``name``, configured by ``cfg`` (relative paths from ``home``)."""
    if name not in _MODULES:
        from ..errors import BackendError

        raise BackendError(f"Unknown chat backend {name!r}; choose one of {', '.join(ANSWER_ENGINES)}.")
    return import_module(_MODULES[name]).create(cfg, home)
