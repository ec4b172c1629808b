"""The page's event handlers: chat turns, stop, regenerate, edit, uploads, new conversation.

They only call the :class:`rag.Assistant`; every error a user can cause or
meet becomes a message in the page's language (the technical text, if any,
behind a "details" toggle), so the page keeps working.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from rag import Answer, Assistant, InvalidQuestionError, RagError, Stage
from rag.answer.pipeline import validate_query

from .access import Access
from .labels import count, error_text, label
from .render import (
    answer_html,
    articles_html,
    error_html,
    notice_html,
    progress_html,
    stage_html,
    stopped_html,
)

log = logging.getLogger(__name__)

# Gradio injects a progress tracker into parameters whose default is a Progress.
_PROGRESS = gr.Progress()


@dataclass
class Turn:
    """One exchange as shown in the chat. ``answer`` (validated text) feeds follow-ups;
    ``prefix`` makes the ids of this answer's source cards unique on the page."""

    question: str | None
    display: str
    answer: str | None = None
    prefix: str = ""


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
    # Numbers the answers (their source cards' ids); never reused within a page.
    answers: int = 0


def _session(conv: Conversation | None) -> Conversation:
    return conv if isinstance(conv, Conversation) else Conversation()


def chat_messages(turns: list[Turn]) -> list[dict[str, str]]:
    messages = []
    for t in turns:
        if t.question and t.question.strip():  # notices have no user bubble
            messages.append({"role": "user", "content": html.escape(t.question, quote=False)})
        messages.append({"role": "assistant", "content": t.display})
    return messages


def conversation(turns: list[Turn]) -> list[tuple[str, str]]:
    """The (question, answer) pairs the assistant uses to rewrite follow-ups."""
    return [(t.question, t.answer) for t in turns if t.question and t.answer is not None]


# What the browser keeps of a conversation (history across a reload): bounded, since it
# comes back from the browser; anything else found there is ignored.
STORED_TURNS = 50
STORED_DISPLAY_CHARS = 400_000


def stored(conv: Conversation) -> list[dict[str, str | None]]:
    return [{"q": t.question, "d": t.display, "a": t.answer} for t in conv.turns[-STORED_TURNS:]]


def restored(value: Any) -> list[Turn]:
    """The turns kept by the browser, or none when what it sent is not what the page stored."""
    if not isinstance(value, list):
        return []
    turns = []
    for item in value[-STORED_TURNS:]:
        if not isinstance(item, dict):
            return []
        q, d, a = item.get("q"), item.get("d"), item.get("a")
        if not isinstance(d, str) or len(d) > STORED_DISPLAY_CHARS:
            return []
        if not all(x is None or isinstance(x, str) for x in (q, a)):
            return []
        turns.append(Turn(question=q, display=d, answer=a))
    return turns


def _close_sources(display: str) -> str:
    """An earlier answer's sources collapse when a new question is asked (its badges still open them)."""
    return display.replace('<details class="answer-sources" open>', '<details class="answer-sources">', 1)


class ChatHandlers:
    """``access`` decides who may add and remove articles (None: everyone, for tests).

    A chat event's outputs are ``CHAT_OUTPUTS``: textbox, question error, chatbot,
    conversation, browser copy of it, send button, stop button.
    """

    def __init__(self, assistant: Assistant, access: Access | None = None) -> None:
        self.assistant = assistant
        self.access = access
        # The answers under way, by conversation: "stop" and "new conversation" set them.
        self._running: dict[int, set[threading.Event]] = {}
        self._lock = threading.Lock()

    def may_change_articles(self, request: gr.Request | None) -> bool:
        return self.access is None or self.access.may_change_articles(getattr(request, "username", None))

    def article_text(self, doc_id: str) -> str | None:
        try:
            return self.assistant.document_text(doc_id)
        except (KeyError, RagError):
            return None

    # --- chat ------------------------------------------------------------------------
    def _outputs(
        self,
        conv: Conversation,
        *,
        textbox: Any = None,
        error: Any = None,
        save: bool = False,
        busy: bool | None = None,
    ) -> tuple[Any, ...]:
        skip = gr.skip()
        buttons: tuple[Any, Any] = (skip, skip)
        if busy is not None:
            buttons = (gr.update(visible=not busy), gr.update(visible=busy))
        return (
            skip if textbox is None else textbox,
            skip if error is None else error,
            chat_messages(conv.turns),
            conv,
            stored(conv) if save else skip,
            *buttons,
        )

    def respond(
        self, message: str, conv: Conversation | None, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        """Streams one answer: the stages with their elapsed time, the draft, then the cited answer."""
        conv = _session(conv)
        question = message if isinstance(message, str) else ""
        try:
            validate_query(question, self.assistant.settings.retrieval.max_query_chars)
        except InvalidQuestionError as err:
            # Refused beside the box, which keeps the text: nothing is lost, no bubble is made.
            shown = error_html(*error_text(err, lang), lang=lang)
            yield self._outputs(conv, error=gr.update(value=shown, visible=True))
            return
        if question in conv.pending:
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
        for t in conv.turns:
            t.display = _close_sources(t.display)
        conv.answers += 1
        turn = Turn(question=question, display="", prefix=f"a{conv.answers}")
        stage = stage_html("searching", 0.0, lang)
        turn.display = progress_html("", stage)
        conv.turns.append(turn)
        hidden = gr.update(value="", visible=False)
        yield self._outputs(conv, textbox="", error=hidden, busy=True)
        cancel = threading.Event()
        with self._lock:
            self._running.setdefault(id(conv), set()).add(cancel)
        answer: Answer | None = None
        draft = ""
        try:
            stream = self.assistant.ask_stream(
                question, history, backend=backend, k=int(k), default_language=lang, cancel=cancel
            )
            try:
                for item in stream:
                    if conv.epoch != epoch:  # the conversation was cleared
                        break
                    if isinstance(item, Answer):
                        answer = item
                        continue
                    if isinstance(item, Stage):
                        stage = stage_html(item.name, item.elapsed, lang, item.passages)
                    elif item:
                        draft += item
                    turn.display = progress_html(draft, stage)
                    yield self._outputs(conv)
            finally:
                stream.close()  # now, not at garbage collection: it frees the shared model
        except RagError as err:
            turn.display = error_html(*error_text(err, lang), lang=lang)
        except Exception as err:
            log.exception("answering %r failed", question)
            turn.display = error_html(label(lang, "unexpected_error"), lang=lang, details=type(err).__name__)
        finally:
            with self._lock:
                self._running.get(id(conv), set()).discard(cancel)
        if conv.epoch != epoch:  # show the new conversation, not this answer
            yield self._outputs(conv, save=True, busy=self._busy(conv))
            return
        if answer is not None and answer.stopped:
            turn.display = stopped_html(draft, lang)
        elif answer is not None:
            # The validated answer replaces the streamed draft.
            turn.display = answer_html(answer, lang, self.article_text, turn.prefix)
            turn.answer = answer.text if answer.answerable else None
        yield self._outputs(conv, save=True, busy=self._busy(conv))

    def _busy(self, conv: Conversation) -> bool:
        with self._lock:
            return bool(self._running.get(id(conv)))

    def stop(self, conv: Conversation | None) -> tuple[Any, ...]:
        """Stops this conversation's answers (the model stops at its next token); the history stays."""
        conv = _session(conv)
        with self._lock:
            for cancel in self._running.get(id(conv), ()):
                cancel.set()
        return (gr.update(visible=True), gr.update(visible=False))

    def regenerate(
        self, conv: Conversation | None, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        """Asks the last question again, in place of its answer."""
        conv = _session(conv)
        if self._busy(conv):
            return  # an answer is under way: Stop it first
        last = self._last_question(conv)
        if last is None:
            conv.turns.append(Turn(question=None, display=notice_html(label(lang, "nothing_to_regenerate"), False)))
            yield self._outputs(conv, save=True)
            return
        question = conv.turns[last].question or ""
        del conv.turns[last:]
        yield from self.respond(question, conv, backend, k, lang)

    def edit_last(self, conv: Conversation | None, text: str) -> tuple[Any, ...]:
        """The last question back in the box (its answer removed), to change and send again."""
        conv = _session(conv)
        last = self._last_question(conv)
        if last is None:
            return self._outputs(conv)
        question = conv.turns[last].question or ""
        del conv.turns[last:]
        return self._outputs(conv, textbox=question, save=True)

    def _last_question(self, conv: Conversation) -> int | None:
        """Index of the last asked question's turn, when no answer is under way."""
        if self._busy(conv):
            return None
        for i in range(len(conv.turns) - 1, -1, -1):
            if conv.turns[i].question:
                return i
        return None

    def new_conversation(self, conv: Conversation | None) -> tuple[Any, ...]:
        """Stops the answers under way and clears the chat (in the browser's copy too)."""
        conv = _session(conv)
        self.stop(conv)
        conv.turns.clear()
        conv.epoch += 1
        return self._outputs(conv, textbox=None, error=gr.update(value="", visible=False), save=True, busy=False)

    def restore(self, value: Any, conv: Conversation | None) -> tuple[Any, ...]:
        """At page load: the conversation the browser kept (a reload keeps the chat)."""
        conv = _session(conv)
        if not conv.turns:
            conv.turns = restored(value)
            conv.answers = len(conv.turns)
        return chat_messages(conv.turns), conv

    # --- articles ----------------------------------------------------------------------
    def upload(
        self,
        files: list[str] | str | None,
        conv: Conversation | None,
        lang: str,
        request: gr.Request = None,  # type: ignore[assignment]  # filled in by Gradio
        progress: gr.Progress = _PROGRESS,
    ) -> tuple[Any, ...]:
        """Ingests uploaded articles. Outputs: upload button, articles list, chatbot, conversation,
        browser copy, removable list."""
        conv = _session(conv)
        paths = [files] if isinstance(files, str) else list(files or [])
        try:
            notices = self._ingest(paths, lang, request, progress)
        finally:
            _delete_uploads(paths)  # Gradio's copies: the store keeps what it took
        conv.turns.extend(Turn(question=None, display=notice_html(text, ok)) for text, ok in notices)
        progress(1.0)
        return None, self.articles(lang), chat_messages(conv.turns), conv, stored(conv), self.removable(request)

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
                notices.append((label(lang, "upload_error", error=error_text(e, lang)[0]), False))
        except RagError as err:
            notices.append((label(lang, "upload_error", error=error_text(err, lang)[0]), False))
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
        """Removes one article. Outputs: articles list, chatbot, conversation, browser copy, removable list."""
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
                notice = (label(lang, "remove_error", error=error_text(err, lang)[0]), False)
        conv.turns.append(Turn(question=None, display=notice_html(*notice)))
        return self.articles(lang), chat_messages(conv.turns), conv, stored(conv), self.removable(request)

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
            return error_html(*error_text(err, lang), lang=lang)
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
