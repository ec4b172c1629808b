"""The page's event handlers: chat turns, uploads, new conversation.

They only call the :class:`rag.Assistant`; every error a user can cause or
meet becomes a chat message (``RagError`` text, or a short generic one for
the unexpected, which is logged), so the page keeps working.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from rag import Answer, Assistant, RagError

from .access import Access
from .labels import count, label
from .render import answer_html, articles_html, draft_html, error_html, esc, notice_html, sources_html

log = logging.getLogger(__name__)

# Gradio injects a progress tracker into parameters whose default is a Progress.
_PROGRESS = gr.Progress()


@dataclass
class Turn:
    """One exchange as shown in the chat. ``answer`` (validated text) feeds follow-ups."""

    question: str | None
    display: str
    answer: str | None = None


@dataclass
class Conversation:
    """One browser session's chat, changed in place by every handler.

    Gradio hands each event of a session this same object, so an answer still
    streaming, a second question asked meanwhile and an upload notice all land
    in one list instead of each writing back its own copy. "New conversation"
    bumps ``epoch``: an answer started before it stops, and its last output is the
    new conversation.
    """

    turns: list[Turn] = field(default_factory=list)
    epoch: int = 0
    # Questions being answered: a double click or double Enter asks once.
    pending: set[str] = field(default_factory=set)


def _session(conv: Conversation | None) -> Conversation:
    return conv if isinstance(conv, Conversation) else Conversation()


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


# A question over the length limit is shown (and kept in the session) this short.
SHOWN_QUESTION_CHARS = 300


class ChatHandlers:
    """``access`` decides who may add and remove articles (None: everyone, for tests)."""

    def __init__(self, assistant: Assistant, access: Access | None = None) -> None:
        self.assistant = assistant
        self.access = access

    def may_change_articles(self, request: gr.Request | None) -> bool:
        return self.access is None or self.access.may_change_articles(getattr(request, "username", None))

    def article_text(self, doc_id: str) -> str | None:
        try:
            return self.assistant.document_text(doc_id)
        except (KeyError, RagError):
            return None

    def respond(
        self, message: str, conv: Conversation | None, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        """Streams one answer. Outputs: textbox, chatbot, conversation, sources panel, last answer."""
        conv = _session(conv)
        question = message if isinstance(message, str) else ""
        if question in conv.pending or (conv.pending and not question.strip()):
            return  # the second press of a double click / double Enter
        conv.pending.add(question)
        try:
            yield from self._respond(question, conv, backend, k, lang)
        finally:
            conv.pending.discard(question)

    def _respond(
        self, question: str, conv: Conversation, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        epoch = conv.epoch
        history = conversation(conv.turns)
        # Shown cut until it is accepted: an over-long one is refused and never stored or sent back whole.
        shown = question if len(question) <= SHOWN_QUESTION_CHARS else question[:SHOWN_QUESTION_CHARS] + "…"
        turn = Turn(question=shown, display=f'<span class="thinking">{esc(label(lang, "thinking"))}</span>')
        conv.turns.append(turn)
        yield "", chat_messages(conv.turns), conv, gr.skip(), gr.skip()
        answer: Answer | None = None
        try:
            draft = ""
            stream = self.assistant.ask_stream(question, history, backend=backend, k=int(k), default_language=lang)
            try:
                for item in stream:
                    if conv.epoch != epoch:  # the conversation was cleared: stop generating
                        break
                    if isinstance(item, Answer):
                        answer = item
                    elif item:
                        draft += item
                        turn.display = draft_html(draft)
                        yield gr.skip(), chat_messages(conv.turns), conv, gr.skip(), gr.skip()
            finally:
                stream.close()  # now, not at garbage collection: it frees the shared model
        except RagError as err:
            turn.display = error_html(str(err), lang)
        except Exception:
            log.exception("answering %r failed", question)
            turn.display = error_html(label(lang, "unexpected_error"), lang)
        if conv.epoch != epoch:  # show the new conversation, not this answer
            yield gr.skip(), chat_messages(conv.turns), conv, gr.skip(), gr.skip()
            return
        if answer is None:
            yield gr.skip(), chat_messages(conv.turns), conv, gr.skip(), gr.skip()
            return
        # The validated answer replaces the streamed draft.
        turn.question, turn.display, turn.answer = question, answer_html(answer, lang), answer.text
        sources = sources_html(answer, self.article_text, lang)
        yield gr.skip(), chat_messages(conv.turns), conv, sources, answer

    def new_conversation(self, conv: Conversation | None, lang: str) -> tuple[Any, ...]:
        """Outputs: chatbot, conversation, sources panel, last answer."""
        conv = _session(conv)
        conv.turns.clear()
        conv.epoch += 1
        return [], conv, sources_html(None, self.article_text, lang), None

    def upload(
        self,
        files: list[str] | str | None,
        conv: Conversation | None,
        lang: str,
        request: gr.Request = None,  # type: ignore[assignment]  # filled in by Gradio
        progress: gr.Progress = _PROGRESS,
    ) -> tuple[Any, ...]:
        """Ingests uploaded articles. Outputs: file box, articles list, chatbot, conversation, removable list."""
        conv = _session(conv)
        paths = [files] if isinstance(files, str) else list(files or [])
        try:
            notices = self._ingest(paths, lang, request, progress)
        finally:
            _delete_uploads(paths)  # Gradio's copies: the store keeps what it took
        conv.turns.extend(Turn(question=None, display=notice_html(text, ok)) for text, ok in notices)
        progress(1.0)
        return None, self.articles(lang), chat_messages(conv.turns), conv, self.removable(request)

    def _ingest(
        self, paths: list[str], lang: str, request: gr.Request | None, progress: gr.Progress
    ) -> list[tuple[str, bool]]:
        ui = self.assistant.settings.ui
        if not self.may_change_articles(request):
            return [(label(lang, "upload_not_allowed"), False)]
        if not paths:
            return [(label(lang, "upload_nothing"), False)]
        total = sum(_size(p) for p in paths)
        if len(paths) > ui.max_upload_files or total > ui.max_upload_bytes:
            return [(label(lang, "upload_too_much", files=len(paths), max_files=ui.max_upload_files,
                           mb=f"{total / 1e6:.1f}", max_mb=f"{ui.max_upload_bytes / 1e6:.0f}"), False)]
        progress(0.05, desc=label(lang, "uploading"))
        notices: list[tuple[str, bool]] = []
        try:
            report = self.assistant.ingest(paths)
            passages = {d["doc_id"]: d["passages"] for d in self.assistant.documents()}
            for d in report.added:
                when, size = d.date or label(lang, "no_date"), count(lang, passages.get(d.doc_id, 0))
                notices.append((label(lang, "added", title=d.title, date=when, passages=size), True))
            for d in report.unchanged:
                notices.append((label(lang, "unchanged", title=d.title), True))
            for e in report.errors:
                notices.append((label(lang, "upload_error", error=e), False))
        except RagError as err:
            notices.append((label(lang, "upload_error", error=str(err)), False))
        except Exception:
            log.exception("ingesting %s failed", paths)
            notices.append((label(lang, "upload_error", error=label(lang, "unexpected_error")), False))
        return notices

    def remove(
        self,
        doc_id: str | None,
        conv: Conversation | None,
        lang: str,
        request: gr.Request = None,  # type: ignore[assignment]  # filled in by Gradio
    ) -> tuple[Any, ...]:
        """Removes one article. Outputs: articles list, chatbot, conversation, removable list."""
        conv = _session(conv)
        if not self.may_change_articles(request):
            notice = (label(lang, "upload_not_allowed"), False)
        elif not doc_id:
            notice = (label(lang, "remove_nothing"), False)
        else:
            try:
                removed = self.assistant.remove([doc_id])
                notice = (label(lang, "removed", title=", ".join(d.title for d in removed)), True)
            except RagError as err:
                notice = (label(lang, "remove_error", error=str(err)), False)
        conv.turns.append(Turn(question=None, display=notice_html(*notice)))
        return self.articles(lang), chat_messages(conv.turns), conv, self.removable(request)

    def removable(self, request: gr.Request | None) -> Any:
        """The article picker for removal: (title, id) choices, shown only to who may remove."""
        allowed = self.may_change_articles(request)
        try:
            choices = [(f"{d['title']} · {d['doc_id'][:8]}", d["doc_id"]) for d in self.assistant.documents()]
        except RagError:
            choices = []
        return gr.update(choices=choices if allowed else [], value=None, visible=allowed)

    def articles(self, lang: str) -> str:
        try:
            docs = self.assistant.documents()
        except RagError as err:
            return error_html(str(err), lang)
        return articles_html(docs, lang)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _delete_uploads(paths: list[str]) -> None:
    """Gradio's temporary copies of uploaded files, and their folders once empty."""
    for p in paths:
        path = Path(p)
        try:
            path.unlink(missing_ok=True)
            path.parent.rmdir()  # Gradio makes one folder per file; fails harmlessly if not empty
        except OSError:
            pass
