"""Any LangChain chat model as a backend (the OpenAI-compatible backend is one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .base import ChatBackend, Messages, OnStart

if TYPE_CHECKING:  # importing LangChain's chat models costs ~1 s of every start; only a user's model needs it
    from langchain_core.language_models.chat_models import BaseChatModel


class LangChainBackend(ChatBackend):
    """Wraps a LangChain ``BaseChatModel``; grammars are not passed (it has no such option)."""

    def __init__(self, chat: BaseChatModel, name: str | None = None) -> None:
        self.chat = chat
        self.name = name or getattr(chat, "_llm_type", "custom")

    def _pieces(
        self, messages: Messages, *, grammar: str | None, max_tokens: int | None, stop: list[str] | None,
        on_start: OnStart,
    ) -> Iterator[str]:
        on_start()
        kwargs: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
        for chunk in self.chat.stream(list(messages), stop=stop, **kwargs):
            yield chunk.text if isinstance(chunk.text, str) else str(chunk.content)
