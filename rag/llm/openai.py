"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, …), built by LangChain's
provider-agnostic ``init_chat_model`` (``langchain-openai``'s ``ChatOpenAI`` underneath)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from ..config import mask_url
from ..errors import BackendError
from .langchain import LangChainBackend

if TYPE_CHECKING:
    from ..config import LLMSettings


def identity(cfg: LLMSettings) -> str:
    return f"{mask_url(cfg.openai_base_url)} {cfg.openai_model}"


def describe(cfg: LLMSettings) -> str:
    return f"OpenAI-compatible · {cfg.openai_model} @ {mask_url(cfg.openai_base_url)}"


def create(cfg: LLMSettings, home: Path) -> LangChainBackend:
    """``home`` is unused: the server holds the model."""
    from langchain.chat_models import init_chat_model

    # Local servers need no key, but the OpenAI client refuses to start without one.
    key = cfg.openai_api_key.get_secret_value()
    try:
        chat = init_chat_model(
            cfg.openai_model,
            model_provider="openai",
            base_url=cfg.openai_base_url,
            api_key=SecretStr(key or "not-needed"),
            temperature=cfg.temperature,
            max_completion_tokens=cfg.max_tokens,
            timeout=cfg.timeout_s,
            max_retries=0,
        )
    except Exception as err:  # any client set-up failure is the backend's, not a crash
        raise BackendError(f"The OpenAI-compatible backend could not be set up: {err}") from err
    return LangChainBackend(chat)
