"""The running chat page through its API (gradio_client): answers, follow-ups, uploads,
concurrent chats, and the ``rag ui`` command with a password.

The app runs in this process on a free port, over a private home holding a
copy of the seed article (the repo's docs_store/ and index/ are never touched).
"""

from __future__ import annotations

import html
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file

from rag import Assistant, RagError
from rag.config import DEFAULT_E5_DIR, DEFAULT_GGUF
from tests.conftest import REPO, SEED, make_settings
from ui.app import launch, stop

pytestmark = [
    pytest.mark.slow,
    # Gradio's queue statistics use pandas options that pandas 3 deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]

NEW_ARTICLE = (
    "date 2024-10 La sagra della castagna di Borgo Alto\n\n"
    "La sagra della castagna di Borgo Alto si è svolta il primo weekend di ottobre in piazza Garibaldi. "
    "Il premio per la migliore torta di castagne è stato vinto da Giulia Ferrari, pasticcera di Trento. "
    "Gli organizzatori hanno contato oltre tremila visitatori.\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_home(root: Path) -> Path:
    (root / "docs_store").mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, root / "docs_store" / SEED.name)
    return root


@contextmanager
def running_app(home: Path, **overrides: Any) -> Iterator[str]:
    """The page served in a background thread; yields its URL."""
    port = free_port()
    assistant = Assistant(make_settings(home, **overrides))
    demo = launch(assistant, host="127.0.0.1", port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(demo)


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text, whatever shape the client returns it in."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def chat_of(result: tuple[Any, ...]) -> list[Any]:
    """The chat messages among an event's outputs (the client leaves out session state)."""
    return next(x for x in result if isinstance(x, list) and all(isinstance(m, dict) and "role" in m for m in x))


def last_reply(result: tuple[Any, ...]) -> str:
    return message_text(chat_of(result)[-1])


def articles_of(result: tuple[Any, ...]) -> str:
    return next(x for x in result if isinstance(x, str) and 'class="articles"' in x)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The "openai" backend points at a port nobody listens on: a backend that is down.
    down = {"openai_base_url": f"http://127.0.0.1:{free_port()}/v1", "timeout_s": 60}
    with running_app(private_home(tmp_path_factory.mktemp("ui-api-home")), llm=down) as url:
        yield url


def ask(client: Client, question: str, backend: str = "extractive", lang: str = "it") -> tuple[Any, ...]:
    return client.predict(question, backend, 4, lang, api_name="/chat")


def test_chat_endpoint_answers_with_citation_and_highlighted_source(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    result = ask(client, "Chi ha firmato l'accordo di mutua difesa?")
    reply = last_reply(result)
    assert "Putin" in reply and 'class="cite-badge"' in reply and 'href="#a1-s1"' in reply
    # The answer's own sources, under it: the card its badge links to, the span highlighted.
    assert 'id="a1-s1"' in reply and "<mark>" in reply and "Un accordo di mutua difesa" in reply
    assert "2024-06" in reply

    # Follow-up in the same session: the conversation is used (no model here to rewrite it,
    # so no "searched for" line: the joined wording is not shown).
    follow = ask(client, "E cosa ha detto Kim di lui?")
    assert len(chat_of(follow)) == 4 and "Cercato" not in last_reply(follow)

    # Empty message: a friendly error beside the box, no bubble, and the page keeps answering.
    empty = ask(client, "   ")
    assert "La domanda è vuota" in str(empty) and len(chat_of(empty)) == 4
    assert "Putin" in last_reply(ask(client, "Who signed the mutual defence pact?", lang="en"))

    # The OpenAI-compatible server is down: still a cited answer, with a note saying why.
    down = last_reply(ask(client, "Chi ha firmato l'accordo di mutua difesa?", backend="openai"))
    assert 'class="answer-note"' in down and "cite-badge" in down and "Traceback" not in down

    cleared = client.predict(api_name="/new_conversation")
    assert chat_of(cleared) == []
    fresh = ask(client, "E cosa ha detto Kim di lui?")
    assert len(chat_of(fresh)) == 2  # the history is gone too


def test_uploaded_article_is_searchable_without_restart(app_url: str, tmp_path: Path) -> None:
    client = Client(app_url, verbose=False)
    article = tmp_path / "sagra-castagna.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    added = client.predict([handle_file(str(article))], "en", api_name="/upload")
    articles = articles_of(added)
    assert "La sagra della castagna di Borgo Alto" in articles and "2024-10" in articles
    assert "Article added" in last_reply(added)
    # Gradio's copy of the upload is gone: the store holds the article now.
    assert not list(Path(os.environ["GRADIO_TEMP_DIR"]).rglob("sagra-castagna.txt"))

    reply = last_reply(ask(client, "Chi ha vinto il premio per la migliore torta di castagne?"))
    assert "Giulia Ferrari" in reply

    bad = tmp_path / "rotto.txt"
    bad.write_bytes(b"caf\xe9 \xff\xfe non utf-8")
    notice = last_reply(client.predict([handle_file(str(bad))], "en", api_name="/upload"))
    assert "File not added: “rotto.txt” is not valid UTF-8 text" in notice
    assert "/tmp" not in notice


def _concurrently(app_url: str, jobs: list[tuple[str, str, str]]) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Each (question, backend, lang) from its own client (own session), all started together."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(i: int, question: str, backend: str, lang: str) -> None:
        try:
            client = Client(app_url, verbose=False)
            barrier.wait(timeout=60)
            job = client.submit(question, backend, 4, lang, api_name="/chat")
            results[i] = (job.result(timeout=600), job.outputs())
        except BaseException as err:  # reported in the main thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=700)
    assert not errors, errors
    return results


def test_concurrent_chats_get_their_own_answers(app_url: str) -> None:
    jobs = [
        ("Di quali colori era decorata la piazza?", "extractive", "it"),
        ("Chi ha firmato l'accordo di mutua difesa?", "extractive", "it"),
        ("Che cosa ha offerto Kim all'intervento russo in Ucraina?", "extractive", "it"),
    ]
    expected = ["bandiere", "firmato un accordo", "sostegno"]
    for (question, _, _), want, (final, _) in zip(jobs, expected, _concurrently(app_url, jobs), strict=True):
        assert want in last_reply(final), (question, last_reply(final))
        # Its own question in its own chat, with its own sources, nobody else's.
        assert [message_text(m) for m in chat_of(final) if m["role"] == "user"] == [question]
        assert html.escape(want) in last_reply(final).split('class="answer-sources"')[1]


def test_concurrent_chats_with_the_embedded_model(app_url: str) -> None:
    """The shared llama.cpp model serves two chats at once: no crash, no mixed-up answers,
    and the answers stream (drafts before the final text)."""
    jobs = [
        ("Who signed the mutual defence pact?", "llamacpp", "en"),
        ("Che cosa ha offerto Kim all'intervento russo in Ucraina?", "llamacpp", "it"),
    ]
    (en, en_steps), (it, it_steps) = _concurrently(app_url, jobs)
    en_text, it_text = (last_reply(x).split("<details", 1)[0] for x in (en, it))  # the words, not the sources
    assert "Putin" in en_text and "sostegno" not in en_text
    assert "sostegno" in it_text and "Putin signed" not in it_text
    for final, steps in ((en, en_steps), (it, it_steps)):
        assert "cite-badge" in last_reply(final) and "<mark>" in last_reply(final)
        drafts = [s for s in steps if s and 'class="draft"' in str(s)]
        # Answered by llama.cpp itself: streamed drafts, and no fallback note.
        assert drafts, "no streamed draft"
        assert 'class="answer-note"' not in last_reply(final), last_reply(final)


def test_rag_ui_command_serves_the_page_with_a_password(tmp_path: Path) -> None:
    """`rag ui` as users start it: settings from the environment, login required, wrong
    passwords answered ever later, and no temporary file left once it stops."""
    home = private_home(tmp_path / "home")
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "RAG_HOME": str(home),
        "RAG_EMBEDDING__MODEL": str(REPO / DEFAULT_E5_DIR),
        "RAG_LLM__MODEL_PATH": str(REPO / DEFAULT_GGUF),
        "RAG_LLM__BACKEND": "extractive",
        "RAG_UI__USERNAME": "reader",
        "RAG_UI__PASSWORD": "s3cret",
    }
    env.pop("GRADIO_TEMP_DIR", None)  # this test process's own page (a fixture) must not decide where
    rag = Path(sys.executable).with_name("rag")
    proc = subprocess.Popen(
        [str(rag), "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "rag ui exited"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "rag ui did not start"
            time.sleep(0.5)
        assert httpx.get(url + "config", timeout=10).status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            Client(url, verbose=False)
        client = Client(url, auth=("reader", "s3cret"), verbose=False)
        assert "Putin" in last_reply(ask(client, "Chi ha firmato l'accordo di mutua difesa?"))
        t = time.monotonic()
        for _ in range(4):
            guess = httpx.post(url + "login", data={"username": "reader", "password": "guess"}, timeout=30)
            assert guess.status_code != 200
        assert time.monotonic() - t >= 3.5  # 0.5 + 0.5 + 1 + 2 s: guessing is slow
        assert list(temp.iterdir()), "the page keeps its files in its own temporary folder"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode is not None and not list(temp.iterdir()), list(temp.rglob("*"))


def test_busy_port_is_one_clear_error_before_the_models_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.app

    loaded: list[Assistant] = []  # preload runs in a thread of its own: recorded, not raised
    monkeypatch.setattr(ui.app, "preload", loaded.append)
    assistant = Assistant(make_settings(private_home(tmp_path)))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RagError, match=f"127.0.0.1:{port} .*already running.*--port"):
            launch(assistant, host="127.0.0.1", port=port, block=False)
    with pytest.raises(RagError, match="--host"):
        launch(assistant, host="10.255.255.1", port=port, block=False)
    assert not loaded, "the models were loaded before the port was checked"
