"""Fake chat models shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import Field


class Recording(GenericFakeChatModel):
    """Replies from a script and keeps every prompt it was sent."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _stream(self, messages: list[BaseMessage], *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        self.prompts.append(messages)
        yield from super()._stream(messages, *a, **k)


def recording(*replies: str) -> Recording:
    return Recording(messages=iter([AIMessage(r) for r in replies]), prompts=[])


class Exploding(GenericFakeChatModel):
    """A backend that is down: every call fails like a refused connection."""

    def _stream(self, messages: list[BaseMessage], *a: Any, **k: Any) -> Iterator[ChatGenerationChunk]:
        raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
        yield ChatGenerationChunk(message=AIMessageChunk(content=""))  # a generator, like real backends
