"""The one contract every chat backend meets, and the short constrained call built on it.

A backend streams text pieces for a list of LangChain messages, under a deadline,
optionally constrained by a GBNF grammar (only backends with ``supports_grammar``
honour one; the others get the same prompt without it), and counts tokens with
its own tokenizer, so prompt budgets are measured in the model's tokens.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from ..config import mask_url
from ..errors import BackendError, BackendTimeoutError, RagError

Messages = Sequence[BaseMessage]
# Called by a backend when the model starts on a request (after any queue), so the
# deadline counts the model's own time, not the wait behind other chats.
OnStart = Callable[[], None]


class Cancelled(Exception):
    """The caller's ``cancel`` event was set: the work stops here (not an error to report)."""


class ChatBackend(ABC):
    """A chat model the answer pipeline can use."""

    #: Its name in the registry (set there), or a caller's label for a plugged-in model.
    name: str = "custom"
    #: Whether ``grammar`` is honoured; without it the pipeline checks the output instead.
    supports_grammar: bool = False
    #: Whether a prompt read once makes later prompts starting the same way cheap (llama.cpp's
    #: prompt snapshots), so reading a fixed start ahead of the first question pays off.
    reuses_prompt_state: bool = False

    @abstractmethod
    def _pieces(
        self, messages: Messages, *, grammar: str | None, max_tokens: int | None, stop: list[str] | None,
        on_start: OnStart,
    ) -> Iterator[str]:
        """The model's reply as it is generated (implementations call ``on_start`` first)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model: here an estimate (a recent OpenAI vocabulary),
        for backends whose tokenizer is unknown; the prompt budget keeps headroom for it."""
        from ..text.tokens import count_tokens

        try:
            return count_tokens(text, "o200k_base")
        except RagError:  # vocabulary not prepared: about 3 characters a token, rounded up
            return len(text) // 3 + 1

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to free
        """Free the model (optional)."""

    def stream(
        self,
        messages: Messages,
        *,
        timeout_s: float,
        grammar: str | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Text pieces of the reply; BackendError on any failure, BackendTimeoutError past ``timeout_s``.
        ``cancel``, when set while the request waits for the model (behind other chats), raises
        Cancelled as its turn comes, before the model reads the prompt."""
        deadline = time.perf_counter() + timeout_s

        def started() -> None:
            nonlocal deadline
            if cancel is not None and cancel.is_set():
                raise Cancelled
            deadline = time.perf_counter() + timeout_s

        pieces = self._pieces(
            messages, grammar=grammar if self.supports_grammar else None, max_tokens=max_tokens, stop=stop,
            on_start=started,
        )
        try:
            for piece in pieces:
                if piece:
                    yield piece
                if time.perf_counter() > deadline:
                    raise BackendTimeoutError(f"the language model took longer than {timeout_s:.0f}s")
        except (RagError, Cancelled):
            raise
        except Exception as err:
            raise BackendError(mask_url(f"{type(err).__name__}: {err}")) from err
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # a generator holding the shared model frees it now, not at garbage collection

    def complete(self, messages: Messages, **options: Any) -> str:
        """The whole reply of a short call (translation, follow-up rewrite, answer check);
        ``options`` as for :meth:`stream`."""
        return "".join(self.stream(messages, **options))
