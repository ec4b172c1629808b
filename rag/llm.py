"""Chat-model backends behind LangChain's chat-model interface; one factory picks.

- ``llamacpp``: the embedded GGUF model through llama-cpp-python, loaded once
  per process and shared; calls are serialised by a lock because a llama.cpp
  context is not thread-safe. Accepts a per-call GBNF ``grammar``. Reuses the
  previous prompt's cache without changing answers (``rag.llama_cache``).
- ``openai``: any OpenAI-compatible server (Ollama, vLLM, llama.cpp server…).
- ``extractive`` needs no chat model (see ``rag.extractive``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr, SecretStr

from .config import DEFAULT_GGUF, Settings
from .errors import BackendError, BackendTimeoutError, ModelNotFoundError, RagError

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


_LOAD_LOCK = threading.Lock()


def _load_llama(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """One shared model per file: concurrent first requests must not load it twice."""
    with _LOAD_LOCK:
        return _load_llama_once(path, n_ctx, n_threads)


@lru_cache(maxsize=2)
def _load_llama_once(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    try:
        from .llama_cache import aligned_llama_class

        llama_class = aligned_llama_class()
    except ImportError as err:
        raise ModelNotFoundError(
            "llama-cpp-python is not installed; run the README set-up or choose another backend."
        ) from err
    try:
        llama = llama_class(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as err:
        raise ModelNotFoundError(f"{path}: the model file could not be loaded ({err}); is it a valid GGUF?") from err
    return llama, threading.Lock()


class LlamaCppChat(BaseChatModel):
    """A minimal LangChain chat model over ``llama_cpp.Llama.create_chat_completion``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    temperature: float = 0.0
    max_tokens: int = 200
    _llama: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        if not Path(self.model_path).is_file():
            raise ModelNotFoundError(
                f"The chat model file {self.model_path} is missing. Run the README set-up command, "
                "set llm.model_path to a GGUF file, or use --backend extractive."
            )
        self._llama, self._lock = _load_llama(self.model_path, self.n_ctx, self.n_threads)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def count_tokens(self, text: str) -> int:
        """Exact count with the model's own tokenizer."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        from llama_cpp import LlamaGrammar

        grammar = kwargs.pop("grammar", None)
        return {
            "messages": [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages],
            "temperature": kwargs.pop("temperature", self.temperature),
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "stop": stop,
            "grammar": LlamaGrammar.from_string(grammar, verbose=False) if grammar else None,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(chunk.text for chunk in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        started = kwargs.pop("on_start", None)
        request = self._request(messages, stop, **kwargs)
        with self._lock:  # one generation at a time on the shared context
            if started:
                started()
            stream = self._llama.create_chat_completion(stream=True, **request)
            try:
                for part in stream:
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        if run_manager:
                            run_manager.on_llm_new_token(delta)
                        yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            finally:
                stream.close()


class TimedGeneration:
    """Streams one chat completion under a deadline, recording time to first token."""

    def __init__(self, chat: BaseChatModel, timeout_s: float, timings: dict[str, float], t0: float) -> None:
        self.chat, self.timeout_s, self.timings, self.t0 = chat, timeout_s, timings, t0

    def stream(self, messages: list[BaseMessage], **kwargs: Any) -> Iterator[str]:
        deadline = time.perf_counter() + self.timeout_s
        if isinstance(self.chat, LlamaCppChat):
            # The deadline counts from when the shared model starts on this request: time
            # queued behind other chats' answers is not this answer being slow.
            def started() -> None:
                nonlocal deadline
                deadline = time.perf_counter() + self.timeout_s

            kwargs["on_start"] = started
        try:
            for chunk in self.chat.stream(messages, **kwargs):
                piece = chunk.text if isinstance(chunk.text, str) else str(chunk.content)
                if piece:
                    self.timings.setdefault("first_token", time.perf_counter() - self.t0)
                    yield piece
                if time.perf_counter() > deadline:
                    raise BackendTimeoutError(f"the language model took longer than {self.timeout_s:.0f}s")
        except RagError:
            raise
        except Exception as err:
            raise BackendError(f"{type(err).__name__}: {err}") from err


def create_chat_model(settings: Settings, backend: str | None = None) -> BaseChatModel:
    """The configured chat model; raises ModelNotFoundError/BackendError with a clear message."""
    cfg = settings.llm
    backend = backend or cfg.backend
    if backend == "llamacpp":
        path = settings.resolve(cfg.model_path)
        if cfg.model_path == DEFAULT_GGUF and not path.exists():
            raise ModelNotFoundError(
                f"The embedded chat model is not prepared yet ({path}). Run the README set-up command "
                "(`make run` or `rag setup`), or use --backend extractive."
            )
        return LlamaCppChat(
            model_path=str(path),
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads or max(1, os.cpu_count() or 1),
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
        )
    if backend == "openai":
        from langchain_openai import ChatOpenAI

        # Local servers need no key, but the OpenAI client refuses to start without one.
        key = cfg.openai_api_key.get_secret_value()
        try:
            return ChatOpenAI(
                base_url=cfg.openai_base_url,
                api_key=SecretStr(key or "not-needed"),
                model=cfg.openai_model,
                temperature=cfg.temperature,
                max_completion_tokens=cfg.max_tokens,
                timeout=cfg.timeout_s,
                max_retries=0,
            )
        except Exception as err:  # any client set-up failure is the backend's, not a crash
            raise BackendError(f"The OpenAI-compatible backend could not be set up: {err}") from err
    raise BackendError(f"Unknown or non-LLM backend {backend!r}.")
