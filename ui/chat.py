"""The page's event handlers: chat turns, uploads, new conversation.

They only call the :class:`rag.Assistant`; every error a user can cause or
meet becomes a chat message (``RagError`` text, or a short generic one for
the unexpected, which is logged), so the page keeps working.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rag import Answer, Assistant, RagError

from .labels import count, label
from .render import answer_html, articles_html, draft_html, error_html, esc, notice_html, sources_html

log = logging.getLogger(__name__)

BACKENDS = ("llamacpp", "openai", "extractive")
# Gradio injects a progress tracker into parameters whose default is a Progress.
_PROGRESS = gr.Progress()


@dataclass
class Turn:
    """One exchange as shown in the chat. ``answer`` (validated text) feeds follow-ups."""

    question: str | None
    display: str
    answer: str | None = None


def chat_messages(turns: list[Turn]) -> list[dict[str, str]]:
    messages = []
    for t in turns:
        if t.question and t.question.strip():  # notices and empty questions have no user bubble
            messages.append({"role": "user", "content": html.escape(t.question, quote=False)})
        messages.append({"role": "assistant", "content": t.display})
    return messages


def conversation(turns: list[Turn]) -> list[tuple[str, str]]:
    """The (question, answer) pairs the assistant uses to rewrite follow-ups."""
    return [(t.question, t.answer) for t in turns if t.question and t.answer is not None]


class ChatHandlers:
    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def article_text(self, doc_id: str) -> str | None:
        try:
            return self.assistant.document_text(doc_id)
        except (KeyError, RagError):
            return None

    def respond(
        self, message: str, turns: list[Turn] | None, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        """Streams one answer. Outputs: textbox, chatbot, turns, sources panel, last answer."""
        turns = list(turns or [])
        question = message if isinstance(message, str) else ""
        history = conversation(turns)
        turn = Turn(question=question, display=f'<span class="thinking">{esc(label(lang, "thinking"))}</span>')
        turns.append(turn)
        yield "", chat_messages(turns), turns, gr.skip(), gr.skip()
        answer: Answer | None = None
        try:
            if backend not in BACKENDS:
                raise RagError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
            draft = ""
            stream = self.assistant.ask_stream(question, history, backend=backend, k=int(k), default_language=lang)
            for item in stream:
                if isinstance(item, Answer):
                    answer = item
                elif item:
                    draft += item
                    turn.display = draft_html(draft)
                    yield gr.skip(), chat_messages(turns), turns, gr.skip(), gr.skip()
        except RagError as err:
            turn.display = error_html(str(err), lang)
        except Exception:
            log.exception("answering %r failed", question)
            turn.display = error_html(label(lang, "unexpected_error"), lang)
        if answer is None:
            yield gr.skip(), chat_messages(turns), turns, gr.skip(), gr.skip()
            return
        # The validated answer replaces the streamed draft.
        turn.display, turn.answer = answer_html(answer, lang), answer.text
        sources = sources_html(answer, self.article_text, lang)
        yield gr.skip(), chat_messages(turns), turns, sources, answer

    def new_conversation(self, lang: str) -> tuple[Any, ...]:
        """Outputs: textbox, chatbot, turns, sources panel, last answer."""
        return "", [], [], sources_html(None, self.article_text, lang), None

    def upload(
        self, files: list[str] | str | None, turns: list[Turn] | None, lang: str, progress: gr.Progress = _PROGRESS
    ) -> tuple[Any, ...]:
        """Ingests uploaded articles. Outputs: file box, articles list, chatbot, turns."""
        turns = list(turns or [])
        paths = [files] if isinstance(files, str) else list(files or [])
        progress(0.05, desc=label(lang, "uploading"))
        notices: list[tuple[str, bool]] = []
        if not paths:
            notices.append((label(lang, "upload_nothing"), False))
        else:
            try:
                report = self.assistant.ingest(paths)
                passages = {d["doc_id"]: d["passages"] for d in self.assistant.documents()}
                for d in report.added:
                    when, size = d.date or label(lang, "no_date"), count(lang, passages.get(d.doc_id, 0))
                    notices.append((label(lang, "added", title=d.title, date=when, passages=size), True))
                for d in report.unchanged:
                    notices.append((label(lang, "unchanged", title=d.title), True))
                for e in report.errors:
                    notices.append((label(lang, "upload_error", error=_short_paths(e, paths)), False))
            except RagError as err:
                notices.append((label(lang, "upload_error", error=_short_paths(str(err), paths)), False))
            except Exception:
                log.exception("ingesting %s failed", paths)
                notices.append((label(lang, "upload_error", error=label(lang, "unexpected_error")), False))
        for text, ok in notices:
            turns.append(Turn(question=None, display=notice_html(text, ok)))
        progress(1.0)
        return None, self.articles(lang), chat_messages(turns), turns

    def articles(self, lang: str) -> str:
        try:
            docs = self.assistant.documents()
        except RagError as err:
            return error_html(str(err), lang)
        return articles_html(docs, lang)


def _short_paths(message: str, paths: list[str]) -> str:
    """Upload errors name Gradio's temporary copy; users know the file by its name."""
    for p in paths:
        message = message.replace(str(p), Path(p).name)
    return message
