"""The registry of chat backends: builds one by name (names in ``rag.llm.names``)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import LLMSettings
    from .base import ChatBackend

from ..errors import BackendError
from .names import BACKEND_MODULES, BACKENDS


def _module(name: str) -> ModuleType:
    if name not in BACKEND_MODULES:
        raise BackendError(f"{name!r} is not a chat backend; the chat backends are {', '.join(BACKENDS)}.")
    return import_module(BACKEND_MODULES[name])


def backend_identity(name: str, cfg: LLMSettings) -> str:
    """Which model ``name`` would answer with, for caches keyed by model (no model loaded)."""
    return _module(name).identity(cfg)  # type: ignore[no-any-return]


def describe_backend(name: str, cfg: LLMSettings) -> str:
    """The model ``name`` would answer with, in a few words for people (no model loaded)."""
    return _module(name).describe(cfg)  # type: ignore[no-any-return]


def create_backend(name: str, cfg: LLMSettings, home: Path) -> ChatBackend:
    """The backend ``name``, configured by ``cfg`` (relative paths from ``home``)."""
    module = _module(name)
    # Each implementation is imported on first use: each pulls a heavy client.
    backend: ChatBackend = module.create(cfg, home)
    backend.name = name
    return backend
