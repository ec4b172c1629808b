"""The page's event handlers: chat turns, stop, regenerate, edit, uploads, new conversation.

They only call the :class:`rag.Assistant`; every error a user can cause or
meet becomes a message in the page's language (the technical text, if any,
behind a "details" toggle), so the page keeps working.
"""

from __future__ import annotations

import functools
import html
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
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


# Draws a turn's message again in a page language; ``latest``: the newest answer (its sources open).
Render = Callable[[str, bool], str]


@dataclass
class Turn:
    """One exchange as shown in the chat. ``answer`` (validated text) feeds follow-ups;
    ``prefix`` makes the ids of this answer's source cards unique on the page; ``render``
    draws the message again (another page language, an older answer's sources closed)."""

    question: str | None
    display: str
    answer: str | None = None
    prefix: str = ""
    render: Render | None = None

    def redraw(self, lang: str, latest: bool) -> None:
        if self.render is not None:
            self.display = self.render(lang, latest)
        elif not latest:  # kept by the browser: only its sources can be closed
            self.display = _close_sources(self.display)


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


# What the browser keeps of a conversation (history across a reload): bounded, newest
# turns first, within what browsers let a page store; it is checked again when it comes back.
STORED_TURNS = 50
STORED_CHARS = 1_500_000
_PREFIX = re.compile(r"a(\d{1,9})")


def stored(conv: Conversation) -> list[dict[str, str | None]]:
    kept: list[dict[str, str | None]] = []
    size = 0
    for t in reversed(conv.turns[-STORED_TURNS:]):
        size += len(t.display) + len(t.question or "") + len(t.answer or "")
        if size > STORED_CHARS:
            break
        kept.append({"q": t.question, "d": t.display, "a": t.answer, "p": t.prefix})
    return kept[::-1]


def restored(value: Any) -> list[Turn]:
    """The turns kept by the browser, or none when what it sent is not what the page stored."""
    if not isinstance(value, list) or len(value) > STORED_TURNS:
        return []
    turns, size = [], 0
    for item in value:
        if not isinstance(item, dict):
            return []
        q, d, a, p = item.get("q"), item.get("d"), item.get("a"), item.get("p", "")
        if not isinstance(d, str) or not all(x is None or isinstance(x, str) for x in (q, a)):
            return []
        if not isinstance(p, str) or (p and not _PREFIX.fullmatch(p)):
            return []
        size += len(d) + len(q or "") + len(a or "")
        if size > STORED_CHARS:
            return []
        turns.append(Turn(question=q, display=d, answer=a, prefix=p))
    return turns


def answers_numbered(turns: list[Turn]) -> int:
    """The highest answer number in ``turns`` (new answers' card ids continue after it)."""
    return max((int(m.group(1)) for t in turns if (m := _PREFIX.fullmatch(t.prefix))), default=0)


def _close_sources(display: str) -> str:
    """An earlier answer's sources collapse when a new question is asked (its badges still open them)."""
    return display.replace('<details class="answer-sources" open>', '<details class="answer-sources">', 1)


def _last_question(conv: Conversation) -> int | None:
    """Index of the last asked question's turn."""
    for i in range(len(conv.turns) - 1, -1, -1):
        if conv.turns[i].question:
            return i
    return None


# A notice in the chat: its text, whether it reports a success, the English details if any.
Notice = tuple[str, bool, str | None]


def _refused(err: BaseException, lang: str) -> Notice:
    """A file the store did not take, said in ``lang`` (with the English text as details
    when the error has no wording of its own: it names the file)."""
    text, details = error_text(err, lang)
    return label(lang, "upload_error", error=text), False, details


def _error_render(err: BaseException) -> Render:
    return lambda lang, latest: error_html(*error_text(err, lang), lang=lang)


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
        yield from self._respond(question, conv, backend, k, lang, self._start(conv))

    def _start(self, conv: Conversation) -> threading.Event:
        """An answer under way in ``conv``: what Stop sets. Registered before Stop is shown."""
        cancel = threading.Event()
        with self._lock:
            self._running.setdefault(id(conv), set()).add(cancel)
        return cancel

    def _end(self, conv: Conversation, cancel: threading.Event) -> None:
        with self._lock:
            running = self._running.get(id(conv), set())
            running.discard(cancel)
            if not running:
                self._running.pop(id(conv), None)

    def _respond(
        self, question: str, conv: Conversation, backend: str, k: float, lang: str, cancel: threading.Event
    ) -> Iterator[tuple[Any, ...]]:
        conv.pending.add(question)
        try:
            yield from self._stream(question, conv, backend, k, lang, cancel)
        finally:
            conv.pending.discard(question)
            self._end(conv, cancel)

    def _stream(
        self, question: str, conv: Conversation, backend: str, k: float, lang: str, cancel: threading.Event
    ) -> Iterator[tuple[Any, ...]]:
        epoch = conv.epoch
        history = conversation(conv.turns)
        for t in conv.turns:
            t.redraw(lang, latest=False)
        conv.answers += 1
        turn = Turn(question=question, display="", prefix=f"a{conv.answers}")
        # The step under way and when it started; its elapsed time is drawn anew at every update.
        current: Stage = Stage("rewriting" if history else "searching", 0.0)
        shown_at = time.perf_counter()
        draft = ""

        def progress() -> str:
            elapsed = current.elapsed + time.perf_counter() - shown_at
            return progress_html(draft, stage_html(current.name, elapsed, lang, current.passages))

        turn.display = progress()
        conv.turns.append(turn)
        hidden = gr.update(value="", visible=False)
        yield self._outputs(conv, textbox="", error=hidden, busy=True)
        answer: Answer | None = None
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
                        current, shown_at = item, time.perf_counter()
                    elif item:
                        draft += item
                    turn.display = progress()
                    yield self._outputs(conv)
            finally:
                stream.close()  # now, not at garbage collection: it frees the shared model
        except RagError as err:
            turn.render = _error_render(err)
        except Exception as err:
            log.exception("answering %r failed", question)
            name = type(err).__name__
            turn.render = lambda lang, latest: error_html(label(lang, "unexpected_error"), name, lang=lang)
        self._end(conv, cancel)
        if conv.epoch != epoch:  # show the new conversation, not this answer
            yield self._outputs(conv, save=True, busy=self._busy(conv))
            return
        if answer is not None and answer.stopped:
            written = draft
            turn.render = lambda lang, latest: stopped_html(written, lang)
        elif answer is not None:
            # The validated answer replaces the streamed draft.
            final, prefix, article_text = answer, turn.prefix, self.article_text
            # Cached: older answers are drawn again at every new question (their sources closed).
            turn.render = functools.lru_cache(maxsize=4)(
                lambda lang, latest: answer_html(final, lang, article_text, prefix, open_sources=latest)
            )
            turn.answer = answer.text if answer.answerable else None
        turn.redraw(lang, latest=True)
        yield self._outputs(conv, save=True, busy=self._busy(conv))

    def _busy(self, conv: Conversation) -> bool:
        with self._lock:
            return bool(self._running.get(id(conv)))

    def stop(self, conv: Conversation | None) -> tuple[Any, ...]:
        """Stops this conversation's answers (the model stops at its next token, or before it
        starts on one still waiting its turn); the history stays."""
        conv = _session(conv)
        with self._lock:
            for cancel in self._running.get(id(conv), ()):
                cancel.set()
        return (gr.update(visible=True), gr.update(visible=False))

    def regenerate(
        self, conv: Conversation | None, backend: str, k: float, lang: str
    ) -> Iterator[tuple[Any, ...]]:
        """Asks the last question again, in place of its answer (nothing while an answer is under
        way: Stop it first)."""
        conv = _session(conv)
        with self._lock:  # checked and taken at once: a double click regenerates once
            if self._running.get(id(conv)):
                return
            last = _last_question(conv)
            if last is not None:
                question = conv.turns[last].question or ""
                del conv.turns[last:]
                cancel = threading.Event()
                self._running[id(conv)] = {cancel}
        if last is None:
            nothing = notice_html(label(lang, "nothing_to_regenerate"), False, lang=lang)
            conv.turns.append(Turn(question=None, display=nothing))
            yield self._outputs(conv, save=True)
            return
        yield from self._respond(question, conv, backend, k, lang, cancel)

    def edit_last(self, conv: Conversation | None, text: str, lang: str) -> tuple[Any, ...]:
        """The last question back in the box (its answer removed), to change and send again;
        not over a question being typed, nor while an answer is under way."""
        conv = _session(conv)
        if isinstance(text, str) and text.strip():
            notice = error_html(label(lang, "edit_box_busy"), lang=lang)
            return self._outputs(conv, error=gr.update(value=notice, visible=True))
        with self._lock:
            last = None if self._running.get(id(conv)) else _last_question(conv)
            if last is None:
                return self._outputs(conv)
            question = conv.turns[last].question or ""
            del conv.turns[last:]
        return self._outputs(conv, textbox=question, error=gr.update(value="", visible=False), save=True)

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
            conv.answers = answers_numbered(conv.turns)
        return chat_messages(conv.turns), conv

    def relabel(self, conv: Conversation | None, lang: str) -> tuple[Any, ...]:
        """The chat drawn again in ``lang`` (the page's language changed)."""
        conv = _session(conv)
        answers = [i for i, t in enumerate(conv.turns) if t.prefix]
        for i, t in enumerate(conv.turns):
            t.redraw(lang, latest=bool(answers) and i == answers[-1])
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
        conv.turns.extend(Turn(question=None, display=notice_html(*notice, lang=lang)) for notice in notices)
        progress(1.0)
        return None, self.articles(lang), chat_messages(conv.turns), conv, stored(conv), self.removable(request)

    def _ingest(
        self, paths: list[str], lang: str, request: gr.Request | None, progress: gr.Progress
    ) -> list[Notice]:
        ui = self.assistant.settings.ui
        if not self.may_change_articles(request):
            return [(label(lang, "upload_not_allowed"), False, None)]
        if not paths:
            return [(label(lang, "upload_nothing"), False, None)]
        total = sum(_size(p) for p in paths)
        if len(paths) > ui.max_upload_files or total > ui.max_upload_bytes:
            return [(label(lang, "upload_too_much", files=len(paths), max_files=ui.max_upload_files,
                           mb=f"{total / 1e6:.1f}", max_mb=f"{ui.max_upload_bytes / 1e6:.0f}"), False, None)]
        progress(0.05, desc=label(lang, "uploading"))
        notices: list[Notice] = []
        try:
            report = self.assistant.ingest(paths)
            passages = {d["doc_id"]: d["passages"] for d in self.assistant.documents()}
            for d in report.added:
                when, size = d.date or label(lang, "no_date"), count(lang, passages.get(d.doc_id, 0))
                notices.append((label(lang, "added", title=d.title, date=when, passages=size), True, None))
            for d in report.unchanged:
                notices.append((label(lang, "unchanged", title=d.title), True, None))
            for e in report.errors:
                notices.append(_refused(e, lang))
        except RagError as err:
            notices.append(_refused(err, lang))
        except Exception:
            log.exception("ingesting %s failed", paths)
            notices.append((label(lang, "upload_error", error=label(lang, "unexpected_error")), False, None))
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
            notice: tuple[str, bool, str | None] = (label(lang, "upload_not_allowed"), False, None)
        elif not doc_id:
            notice = (label(lang, "remove_nothing"), False, None)
        else:
            try:
                removed = self.assistant.remove([doc_id])
                notice = (label(lang, "removed", title=", ".join(d.title for d in removed)), True, None)
            except RagError as err:
                text, details = error_text(err, lang)
                notice = (label(lang, "remove_error", error=text), False, details)
        conv.turns.append(Turn(question=None, display=notice_html(*notice, lang=lang)))
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
