"""The chat page: layout, event wiring and launch. Logic lives in ``chat`` and ``render``."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag import ANSWER_ENGINES, Assistant, RagError

from .access import Access
from .chat import ChatHandlers, Conversation
from .labels import EXAMPLES, LANGUAGES, label
from .render import model_markdown

log = logging.getLogger(__name__)

# System font stacks only: the page must not fetch fonts (or anything) from the internet.
SANS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "DejaVu Sans", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "DejaVu Sans Mono", "monospace"]
# Colours are chosen for WCAG AA (4.5:1) in both themes (tests/integration/test_ui_browser.py
# measures them): highlights keep dark text on yellow, whatever the theme's text colour.
CSS = """
#header h1 { margin-bottom: 0; overflow-wrap: normal; word-break: normal; hyphens: manual; }
.cite-badge { display: inline-block; padding: 0 .35em; margin: 0 .1em; border-radius: .6em; font-size: .8em;
  font-weight: 600; line-height: 1.5; background: #dbeafe; color: #1e3a8a; border: 1px solid #93c5fd;
  vertical-align: baseline; white-space: nowrap; text-decoration: none; }
a.cite-badge { cursor: pointer; }
a.cite-badge:hover, a.cite-badge:focus-visible { background: #bfdbfe; outline: 2px solid #1d4ed8; }
.dark .cite-badge { background: #1e3a8a; color: #dbeafe; border-color: #3b82f6; }
.answer-meta { margin-top: .5em; font-size: .85em; }
.stage { font-style: italic; margin-top: .3em; }
.spinner { display: inline-block; width: .8em; height: .8em; border: 2px solid currentColor;
  border-right-color: transparent; border-radius: 50%; animation: rag-spin .8s linear infinite;
  vertical-align: -.1em; }
@keyframes rag-spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
.elapsed { font-variant-numeric: tabular-nums; margin-left: .3em; }
.draft { color: #374151; }
.dark .draft { color: #d1d5db; }
.stopped { font-style: italic; color: #92400e; }
.dark .stopped { color: #fcd34d; }
.chat-error { color: #b91c1c; }
.dark .chat-error { color: #fca5a5; }
.chat-notice { color: #166534; }
.dark .chat-notice { color: #86efac; }
#question-error .chat-error { margin: 0 0 .3em; }
.answer-sources { margin-top: .6em; }
.source-card { border: 1px solid #cbd5e1; border-radius: 8px; padding: .6em .8em; margin: .5em 0; }
.dark .source-card { border-color: #475569; }
.source-card.flash { animation: rag-flash 1.6s ease-out; }
@keyframes rag-flash { 0%, 40% { box-shadow: 0 0 0 3px #f59e0b; } 100% { box-shadow: none; } }
.source-head { margin-bottom: .35em; }
.src-title { font-weight: 600; }
.src-date { font-size: .85em; }
.passage, .article-text { white-space: pre-wrap; font-size: .92em; line-height: 1.45; }
.passage mark, .article-text mark { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
.dark .passage mark, .dark .article-text mark { background: #fcd34d; color: #111827; }
.article-text { border-top: 1px dashed #cbd5e1; margin-top: .4em; padding-top: .4em; }
.article-text .context { background: #eff6ff; color: #1f2937; }
.dark .article-text .context { background: #1e293b; color: #e5e7eb; }
details > summary { cursor: pointer; font-size: .9em; color: #1d4ed8; }
.dark details > summary { color: #93c5fd; }
.answer-details, .error-details { margin-top: .4em; font-size: .85em; }
.other-passages { margin-top: .8em; }
.source-card.secondary { border-style: dashed; font-size: .92em; }
.articles ul { margin: 0; padding-left: 1.1em; }
#chat .message { max-width: 100%; }
@media (max-width: 640px) {
  #header { flex-wrap: wrap; }
  #header > * { flex: 1 1 100% !important; min-width: 100% !important; }
  #header h1 { font-size: 1.5rem; }
  #chat { height: calc(100dvh - 350px) !important; min-height: 240px; }
}
"""

# The page's own script (Gradio runs it once at load):
# - the elapsed time of the step under way counts on between the server's updates;
# - a citation badge scrolls to its source card (opening the sources it sits in) and flashes it;
# - Esc stops the answer being written (as the Stop button does);
# - "show in the article" opens the whole article in the answer (no scroll box inside the
#   chat's own) and scrolls the chat to the highlighted span.
PAGE_JS = r"""
() => {
  const tick = () => {
    for (const el of document.querySelectorAll('time.elapsed[datetime]')) {
      if (!el.dataset.seen) el.dataset.seen = String(performance.now());
      const sent = parseFloat((el.getAttribute('datetime').match(/[\d.]+/) || ['0'])[0]);
      const s = sent + (performance.now() - parseFloat(el.dataset.seen)) / 1000;
      el.textContent = Math.floor(s) + ' s';
    }
  };
  setInterval(tick, 250);
  // Gradio's chat scrolls itself to the bottom 300 ms after an update that found it there, which
  // undoes a jump made meanwhile (a click right after an answer ends): so the target is kept in
  // view for a moment, until the reader scrolls or presses a key.
  const pin = (el, block) => {
    const chat = document.querySelector('#chat');
    const reader = new AbortController();
    for (const type of ['wheel', 'touchstart', 'keydown', 'pointerdown'])
      window.addEventListener(type, () => reader.abort(), {capture: true, passive: true, signal: reader.signal});
    const until = performance.now() + 2000;
    const shown = () => {
      const r = el.getBoundingClientRect();
      const c = chat ? chat.getBoundingClientRect() : {top: 0, bottom: window.innerHeight};
      return block === 'start' ? r.top >= c.top - 1 && r.top + 40 <= c.bottom
                               : r.top >= c.top && r.bottom <= c.bottom;
    };
    const keep = () => {
      if (reader.signal.aborted) return;
      if (!el.isConnected) { reader.abort(); return; }
      if (!shown()) el.scrollIntoView({block});
      if (performance.now() < until) requestAnimationFrame(keep); else reader.abort();
    };
    el.scrollIntoView({block});
    requestAnimationFrame(keep);
  };
  document.addEventListener('click', (event) => {
    // By its href: the chat's HTML sanitizer keeps it (it drops data- attributes).
    const badge = event.target.closest && event.target.closest('a.cite-badge[href^="#"]');
    if (!badge) return;
    event.preventDefault();
    event.stopPropagation();
    const card = document.getElementById(badge.getAttribute('href').slice(1));
    if (!card) return;
    for (let d = card.parentElement; d; d = d.parentElement) if (d.tagName === 'DETAILS') d.open = true;
    card.classList.remove('flash');
    void card.offsetWidth;
    card.classList.add('flash');
    pin(card, 'start');  // its head, however long the card
  }, true);
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const stop = document.querySelector('#stop');
    if (stop && stop.offsetParent !== null) { event.preventDefault(); stop.click(); }
  });
  document.addEventListener('toggle', (event) => {
    const box = event.target.querySelector && event.target.querySelector(':scope > .article-text');
    const mark = box && box.querySelector('mark');
    if (event.target.open && mark) pin(mark, 'center');
  }, true);
}
"""

# Both languages at once: a label that changes under the pointer confuses, and
# re-rendering the radio during its own change event drops its selection mark.
PAGE_LANGUAGE = "Lingua / Language"
# The chat takes the room the window has, up to a comfortable height.
CHAT_HEIGHT = "min(560px, calc(100vh - 260px))"
# Where the browser keeps the conversation across reloads.
STORAGE_KEY = "rag-conversation"


def _theme() -> gr.themes.Base:
    # Buttons at WCAG AA: white on blue-700 (6.7:1) and on red-700 (6.5:1), not Gradio's orange (2.8:1).
    return gr.themes.Default(font=SANS, font_mono=MONO).set(
        button_primary_background_fill="#1d4ed8",
        button_primary_background_fill_hover="#1e40af",
        button_primary_background_fill_dark="#1d4ed8",
        button_primary_background_fill_hover_dark="#1e40af",
        button_primary_text_color="#ffffff",
        button_primary_text_color_dark="#ffffff",
        button_primary_border_color="#1d4ed8",
        button_primary_border_color_dark="#1d4ed8",
        button_cancel_background_fill="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_background_fill_dark="#b91c1c",
        button_cancel_background_fill_hover_dark="#991b1b",
        button_cancel_text_color="#ffffff",
        button_cancel_text_color_dark="#ffffff",
        button_cancel_border_color="#b91c1c",
        button_cancel_border_color_dark="#b91c1c",
    )


def build_app(assistant: Assistant, access: Access | None = None) -> gr.Blocks:
    """The chat page over ``assistant`` (call ``launch`` to serve it with the right options).
    ``access`` decides who may add and remove articles (default: as served on ``ui.host``)."""
    settings = assistant.settings
    handlers = ChatHandlers(assistant, access or Access(settings, settings.ui.host))
    lang0 = settings.ui.language

    # delete_cache: Gradio's copies of uploads older than an hour go, checked every ten minutes.
    with gr.Blocks(title=label(lang0, "title"), analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        session = gr.State(Conversation())  # this browser session's chat
        kept = gr.BrowserState([], storage_key=STORAGE_KEY)  # the same, kept by the browser
        with gr.Row(elem_id="header", equal_height=True):
            header = gr.Markdown(_header(lang0), scale=4)
            language = gr.Radio(
                [(name, code) for code, name in LANGUAGES.items()],
                value=lang0,
                label=PAGE_LANGUAGE,
                scale=1,
                elem_id="page-language",
            )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label=label(lang0, "chat"),
                    show_label=False,
                    height=CHAT_HEIGHT,
                    elem_id="chat",
                    latex_delimiters=[],
                    # Messages are the page's own HTML (everything from articles and models escaped):
                    # no Markdown, so article text cannot make links, images or fake badges.
                    render_markdown=False,
                    sanitize_html=True,  # and sanitized again in the browser (history comes back from it)
                    feedback_options=None,
                    buttons=["copy"],
                    group_consecutive_messages=False,  # an error and a notice stay separate bubbles
                    placeholder=label(lang0, "chat_placeholder"),
                )
                question_error = gr.HTML("", elem_id="question-error", visible=False)
                with gr.Row(equal_height=True):
                    textbox = gr.Textbox(
                        placeholder=label(lang0, "placeholder"),
                        label=label(lang0, "question"),
                        show_label=False,
                        scale=5,
                        max_lines=4,
                        elem_id="question",
                        autofocus=True,
                    )
                    send = gr.Button(label(lang0, "send"), variant="primary", scale=1, elem_id="send")
                    stop = gr.Button(label(lang0, "stop"), variant="stop", scale=1, elem_id="stop", visible=False)
                with gr.Row():
                    regenerate = gr.Button(label(lang0, "regenerate"), size="sm", elem_id="regenerate")
                    edit_last = gr.Button(label(lang0, "edit_last"), size="sm", elem_id="edit-last")
                    new_conversation = gr.Button(
                        label(lang0, "new_conversation"), size="sm", elem_id="new-conversation"
                    )
                examples_title = gr.Markdown(f"**{label(lang0, 'examples')}**")
                with gr.Row():
                    example_buttons = [gr.Button(q, size="sm", elem_classes=["example"]) for q in EXAMPLES]
            with gr.Column(scale=2):
                with gr.Accordion(label(lang0, "articles"), open=True) as articles_box:
                    # Computed at each page load: articles added since the server started are listed.
                    articles = gr.HTML(lambda: handlers.articles(lang0), elem_id="articles")
                    upload = gr.UploadButton(
                        label(lang0, "upload"),
                        file_count="multiple",
                        file_types=[".txt", ".md"],
                        type="filepath",
                        elem_id="upload",
                        size="sm",
                        visible=False,  # shown at page load to whoever may add articles
                    )
                    with gr.Row(equal_height=True):
                        to_remove = gr.Dropdown(
                            [], label=label(lang0, "remove_pick"), elem_id="remove-pick", visible=False, scale=3
                        )
                        remove = gr.Button(label(lang0, "remove"), size="sm", elem_id="remove", visible=False, scale=1)
                with gr.Accordion(label(lang0, "settings"), open=False, elem_id="settings") as settings_box:
                    backend = gr.Radio(
                        list(ANSWER_ENGINES),
                        value=settings.llm.backend,
                        label=label(lang0, "backend"),
                        info=label(lang0, "backend_info"),
                        elem_id="backend",
                    )
                    k = gr.Slider(
                        1,
                        max(12, settings.retrieval.k),
                        value=settings.retrieval.k,
                        step=1,
                        label=label(lang0, "k"),
                        elem_id="k",
                    )
                    model_info = gr.Markdown(
                        model_markdown(settings, settings.llm.backend, lang0), elem_id="model-info"
                    )

        # --- events -----------------------------------------------------------------
        chat_inputs = [textbox, session, backend, k, language]
        chat_outputs = [textbox, question_error, chatbot, session, kept, send, stop]
        # "multiple": a question asked while an answer streams (or right after "new
        # conversation") is answered too, not silently dropped as Gradio's default "once"
        # does; the handlers share the session's Conversation, so nothing is lost.
        # No Gradio progress overlay: each answer shows its own stage and elapsed time.
        chat = {"show_progress": "hidden", "trigger_mode": "multiple"}
        textbox.submit(handlers.respond, chat_inputs, chat_outputs, api_name="chat", **chat)
        send.click(handlers.respond, chat_inputs, chat_outputs, api_visibility="private", **chat)
        for button in example_buttons:
            # The button's own text is the question.
            button.click(
                handlers.respond,
                [button, session, backend, k, language],
                chat_outputs,
                api_visibility="private",
                **chat,
            )
        # Instant handlers: never queued behind the answer they act on.
        instant = {"show_progress": "hidden", "concurrency_limit": None}
        stop.click(handlers.stop, [session], [send, stop], api_name="stop", **instant)
        regenerate.click(
            handlers.regenerate, [session, backend, k, language], chat_outputs, api_name="regenerate", **chat
        )
        edit_last.click(
            handlers.edit_last, [session, textbox, language], chat_outputs, api_visibility="private", **instant
        )
        # Not the textbox: a question typed meanwhile must survive.
        new_conversation.click(handlers.new_conversation, [session], chat_outputs, api_name="new_conversation",
                               **instant)
        # The chat's own trash button must forget the history too, not only the bubbles.
        chatbot.clear(handlers.new_conversation, [session], chat_outputs, api_visibility="private", **instant)
        upload.upload(
            handlers.upload,
            [upload, session, language],
            [upload, articles, chatbot, session, kept, to_remove],
            api_name="upload",
        )
        remove.click(
            handlers.remove,
            [to_remove, session, language],
            [articles, chatbot, session, kept, to_remove],
            api_name="remove",
        )

        def page_access(request: gr.Request) -> tuple[Any, ...]:
            allowed = handlers.may_change_articles(request)
            return gr.update(visible=allowed), handlers.removable(request), gr.update(visible=allowed)

        demo.load(page_access, None, [upload, to_remove, remove], api_visibility="private")
        demo.load(handlers.restore, [kept, session], [chatbot, session], api_visibility="private")
        backend.change(
            lambda b, lang: model_markdown(settings, b, lang), [backend, language], model_info, api_visibility="private"
        )

        def switch_language(lang: str, b: str) -> dict[Any, Any]:
            # A mapping, so each label is stated next to the component it belongs to.
            return {
                header: _header(lang),
                chatbot: gr.update(label=label(lang, "chat"), placeholder=label(lang, "chat_placeholder")),
                textbox: gr.update(placeholder=label(lang, "placeholder"), label=label(lang, "question")),
                send: gr.update(value=label(lang, "send")),
                stop: gr.update(value=label(lang, "stop")),
                regenerate: gr.update(value=label(lang, "regenerate")),
                edit_last: gr.update(value=label(lang, "edit_last")),
                examples_title: f"**{label(lang, 'examples')}**",
                new_conversation: gr.update(value=label(lang, "new_conversation")),
                articles_box: gr.update(label=label(lang, "articles")),
                articles: handlers.articles(lang),
                upload: gr.update(label=label(lang, "upload")),
                to_remove: gr.update(label=label(lang, "remove_pick")),
                remove: gr.update(value=label(lang, "remove")),
                settings_box: gr.update(label=label(lang, "settings")),
                backend: gr.update(label=label(lang, "backend"), info=label(lang, "backend_info")),
                k: gr.update(label=label(lang, "k")),
                model_info: model_markdown(settings, b, lang),
                question_error: gr.update(value="", visible=False),
            }

        # Earlier answers are drawn again in the new language too (their labels, not their text).
        language.change(handlers.relabel, [session, language], [chatbot, session], api_visibility="private")
        language.change(
            switch_language,
            [language, backend],
            list(switch_language(lang0, settings.llm.backend)),  # the components it updates
            api_visibility="private",
        )
    demo.queue(default_concurrency_limit=settings.ui.concurrency)
    return demo


def _header(lang: str) -> str:
    return f"# {label(lang, 'title')}\n{label(lang, 'subtitle')}"


def preload(assistant: Assistant) -> None:
    """Index and chat model into memory (and the articles read, when shown whole) before
    the first visitor, in a thread beside the page: it is served at once, and a question
    asked meanwhile waits for what it needs instead of loading it a second time.
    A model that fails to load is not fatal: the answers fall back to quotes, with a
    note saying why.
    """
    for problem in assistant.warm_up():
        log.warning("the chat model is not available: %s", problem)


def launch(
    assistant: Assistant,
    host: str | None = None,
    port: int | None = None,
    *,
    block: bool = True,
    temp_dir: Path | None = None,
) -> gr.Blocks:
    """Serve the page (``rag ui``). ``block=False`` returns once the server is up (tests).
    ``temp_dir``: the page's temporary folder, when the caller made it (deleted by ``stop``)."""
    ui = assistant.settings.ui
    host, port = host or ui.host, port or ui.port
    check_port(host, port)  # before the models load, not a minute later
    access = Access(assistant.settings, host)
    for warning in access.warnings():
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    threading.Thread(target=preload, args=(assistant,), name="preload", daemon=True).start()
    # Gradio keeps its copies of uploads in a folder of this page's own (inside the one the user
    # chose, if any), deleted when the page stops (stop()); the previous setting comes back then.
    previous = os.environ.get("GRADIO_TEMP_DIR")
    temp = temp_dir or Path(tempfile.mkdtemp(prefix="rag-ui-", dir=previous))
    os.environ["GRADIO_TEMP_DIR"] = str(temp)
    demo = build_app(assistant, access)
    _TEMP_DIRS[id(demo)] = (temp, previous)
    if block:  # Gradio's own start-up lines (with its share=True hint) are kept quiet
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"The chat page is at http://{shown}:{port}/ (Ctrl-C stops it).", file=sys.stderr, flush=True)
    try:
        if block and threading.current_thread() is threading.main_thread():
            # `kill` (SIGTERM) stops the page as Ctrl-C does, so its files are deleted too.
            signal.signal(signal.SIGTERM, _interrupt)
        demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            auth=access.auth(),
            prevent_thread_lock=not block,
            theme=_theme(),
            css=CSS,
            js=PAGE_JS.strip(),
            footer_links=[],
            show_error=False,
            quiet=True,
            # Oversized uploads stop at the door; smaller bad ones get the assistant's own message.
            max_file_size=4 * assistant.settings.max_document_bytes,
        )
    except OSError as err:  # the port was taken while the models loaded
        stop(demo)
        raise RagError(_cannot_serve(host, port, err)) from err
    except BaseException:
        stop(demo)
        raise
    if block:  # the server has stopped (Ctrl-C)
        stop(demo)
    return demo


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# Each served page's temporary folder and the GRADIO_TEMP_DIR before it, by id of its Blocks.
_TEMP_DIRS: dict[int, tuple[Path, str | None]] = {}


def stop(demo: gr.Blocks) -> None:
    """Stop serving ``demo`` and delete its temporary files (uploads included)."""
    with contextlib.suppress(Exception):
        demo.close()
    temp, previous = _TEMP_DIRS.pop(id(demo), (None, None))
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)
        if os.environ.get("GRADIO_TEMP_DIR") == str(temp):
            if previous is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = previous


def check_port(host: str, port: int) -> None:
    """A RagError when ``host:port`` cannot be listened on (taken, or not an address of this machine)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # As the web server does, so a port left in TIME_WAIT by a previous run counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as err:
        raise RagError(_cannot_serve(host, port, err)) from err


def _cannot_serve(host: str, port: int, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        hint = "is `rag ui` already running? Choose another port with --port or RAG_UI__PORT"
    else:
        hint = "choose an address of this machine with --host or RAG_UI__HOST (127.0.0.1: this machine only)"
    return f"cannot serve the chat page on {host}:{port} ({err.strerror or err}); {hint}."
