"""The embedded GGUF chat model through llama-cpp-python.

One model per backend object (the ``Assistant`` keeps one and shares it between
chats); calls are serialised by a lock because a llama.cpp context is not
thread-safe. Honours GBNF grammars. Reuses the previous prompt's cache without
changing answers (``rag.llm.llama_cache``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_GGUF, resolve_path
from ..errors import ModelNotFoundError
from .base import ChatBackend, Messages, OnStart

if TYPE_CHECKING:
    from ..config import LLMSettings

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class LlamaCppBackend(ChatBackend):
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        temperature: float = 0.0,
        max_tokens: int = 200,
        prompt_cache_mb: int = 0,
        prompt_cache_dir: Path | None = None,
    ) -> None:
        if not model_path.is_file():
            raise ModelNotFoundError(
                f"The chat model file {model_path} is missing. Run `rag setup` (the README set-up command), "
                "set llm.model_path to a GGUF file, or use --backend extractive."
            )
        try:
            from .llama_cache import aligned_llama_class

            llama_class = aligned_llama_class()
        except ImportError as err:
            raise ModelNotFoundError(
                "llama-cpp-python is not installed; run the README set-up or choose another backend."
            ) from err
        threads = n_threads or max(1, os.cpu_count() or 1)
        try:
            self.llama = llama_class(
                model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, verbose=False,
                prefix_cache_bytes=prompt_cache_mb * 2**20, prefix_cache_dir=prompt_cache_dir,
            )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelNotFoundError(
                f"{model_path}: the model file could not be loaded ({err}); is it a valid GGUF?"
            ) from err
        self.model_path = model_path
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.supports_grammar = True
        self.reuses_prompt_state = prompt_cache_mb > 0
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Exact count with the model's own tokenizer."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _pieces(
        self, messages: Messages, *, grammar: str | None, max_tokens: int | None, stop: list[str] | None,
        on_start: OnStart,
    ) -> Iterator[str]:
        from llama_cpp import LlamaGrammar

        request: dict[str, Any] = {
            "messages": [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages],
            "temperature": self.temperature,
            "max_tokens": max_tokens or self.max_tokens,
            "stop": stop,
            "grammar": LlamaGrammar.from_string(grammar, verbose=False) if grammar else None,
        }
        with self._lock:  # one generation at a time on the shared context
            on_start()
            stream = self.llama.create_chat_completion(stream=True, **request)
            try:
                for part in stream:
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
            finally:
                stream.close()

    def close(self) -> None:
        with self._lock:
            self.llama.prefix_states.flush()
            self.llama.close()


def identity(cfg: LLMSettings) -> str:
    return cfg.model_path


def describe(cfg: LLMSettings) -> str:
    return f"llama.cpp · {Path(cfg.model_path).name}"


def create(cfg: LLMSettings, home: Path) -> LlamaCppBackend:
    path = resolve_path(cfg.model_path, home)
    if cfg.model_path == DEFAULT_GGUF and not path.exists():
        raise ModelNotFoundError(
            f"The embedded chat model is not prepared yet ({path}). Run the README set-up command "
            "(`make run` or `rag setup`), or use --backend extractive."
        )
    return LlamaCppBackend(
        path,
        n_ctx=cfg.n_ctx,
        n_threads=cfg.n_threads,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        prompt_cache_mb=cfg.prompt_cache_mb,
        prompt_cache_dir=None if cfg.prompt_cache_dir in ("", "off") else resolve_path(cfg.prompt_cache_dir, home),
    )

