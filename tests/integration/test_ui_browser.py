"""End-to-end in Debian's Chromium (Playwright): a reader's session on the chat page.

Italian question with the embedded model (streamed, cited, highlighted source),
follow-up with "searched for", English page and question, an example click,
an empty message, a bad upload, a new conversation — and the page never asks
anything from outside 127.0.0.1. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.text.language import detect_language
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import REPO
from tests.integration.test_ui_api import NEW_ARTICLE, private_home, running_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # Gradio's queue statistics use pandas options that pandas 3 deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]

ARTIFACTS = REPO / "test-artifacts"
LLM_TIMEOUT_MS = 300_000  # the embedded model on 2 busy cores
QUICK_TIMEOUT_MS = 60_000

BOT = "#chat [data-testid='bot']"
USER = "#chat [data-testid='user']"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists() or not shutil.which("chromium"):
        pytest.fail("Debian Chromium is missing: run `make install-test` (apt-get install chromium)")
    # The real default backend (embedded llama.cpp model).
    with running_app(private_home(tmp_path_factory.mktemp("ui-browser-home"))) as url:
        yield url


def _wait_answer(page, count: int, timeout: int) -> str:  # type: ignore[no-untyped-def]
    """Waits for the ``count``-th assistant message to be final; returns its text."""
    try:
        page.wait_for_function(
            """([sel, n]) => document.querySelectorAll(sel).length >= n
                && !document.querySelector('#chat .thinking') && !document.querySelector('#chat .draft')""",
            arg=[BOT, count],
            timeout=timeout,
        )
    except Exception as err:  # what the page showed instead, for whoever reads the CI log
        page.screenshot(path=ARTIFACTS / "ui-failed-wait.png", full_page=True)
        shown = page.locator("#chat").inner_text()
        raise AssertionError(f"answer {count} not final; the chat shows: {shown!r}") from err
    return page.locator(BOT).nth(count - 1).inner_text()


def _ask(page, question: str) -> None:  # type: ignore[no-untyped-def]
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


def test_reader_session_in_chromium(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(app_url, wait_until="load")

            # The page in Italian (settings.ui.language), with the loaded article described.
            page.locator("#question textarea").wait_for()
            assert "Assistente notizie" in page.locator("h1").first.inner_text()
            articles = page.locator("#articles").inner_text()
            assert "Un accordo di mutua difesa" in articles and "2024-06" in articles
            assert re.search(r"\d+ passaggi", articles)
            assert "qwen2.5" in page.locator("#model-info").inner_text()
            page.screenshot(path=ARTIFACTS / "ui-01-start.png", full_page=True)

            # 1. Italian question, embedded model: the draft streams, then the cited answer.
            question = "Chi ha firmato l'accordo di mutua difesa?"
            _ask(page, question)
            page.locator("#chat .draft, #chat .chat-error").first.wait_for(timeout=LLM_TIMEOUT_MS)
            page.screenshot(path=ARTIFACTS / "ui-02-streaming.png")
            answer = _wait_answer(page, 1, LLM_TIMEOUT_MS)
            # Putin on Intel VMs, Kim Jong-un on AMD (CPU float kernels); both signed it.
            assert "[1]" in answer and ("Putin" in answer or "Kim" in answer), answer
            assert detect_language(re.sub(r"\[\d+\]", "", answer)) == "it", answer
            badge = page.locator(BOT).first.locator(".cite-badge").first
            assert badge.inner_text() == "[1]"
            sources = page.locator("#sources")
            assert question in sources.inner_text()
            card = sources.locator("#source-1")
            assert "Un accordo di mutua difesa" in card.inner_text() and "2024-06" in card.inner_text()
            assert card.locator(".cite-badge").inner_text() == "[1]"
            mark = card.locator(".passage mark")
            assert mark.count() == 1 and len(mark.inner_text()) > 20
            card.get_by_text("Mostra nell'articolo").click()
            article_mark = card.locator(".article-text mark")
            article_mark.wait_for()
            assert article_mark.inner_text() == mark.inner_text()
            # Uncited passages: one collapsed section (the article has more passages than it cites).
            assert sources.locator("details.other-passages").count() == 1
            assert sources.locator("details.other-passages[open]").count() == 0
            page.screenshot(path=ARTIFACTS / "ui-03-italian-answer.png", full_page=True)

            # 2. Follow-up: rewritten with the conversation before retrieval, shown to the reader.
            _ask(page, "E cosa ha detto Kim di lui?")
            follow = _wait_answer(page, 2, LLM_TIMEOUT_MS)
            assert "Cercato: «" in follow, follow
            assert "Kim" in follow
            page.screenshot(path=ARTIFACTS / "ui-04-follow-up.png", full_page=True)

            # 2b. "New conversation" while an answer streams: the chat stays cleared, the answer stops
            # (the shared model is free for the next question) and it is not used for follow-ups.
            _ask(page, "Che cosa ha offerto Kim all'intervento russo in Ucraina?")
            page.locator("#chat .draft").first.wait_for(timeout=LLM_TIMEOUT_MS)
            page.locator("#new-conversation").click()
            page.wait_for_function(
                "([sel]) => document.querySelectorAll(sel).length === 0", arg=[BOT], timeout=QUICK_TIMEOUT_MS
            )
            _ask(page, "Chi ha firmato l'accordo di mutua difesa?")
            fresh = _wait_answer(page, 1, LLM_TIMEOUT_MS)
            assert page.locator(USER).count() == 1 and "Cercato" not in fresh, fresh
            assert "[1]" in fresh, fresh

            # 3. English page labels; the quick extractive engine for the rest.
            page.locator("#page-language").get_by_label("English").check()
            page.get_by_role("button", name="New conversation").wait_for(timeout=QUICK_TIMEOUT_MS)
            assert page.locator("#send").inner_text().strip() == "Send"
            page.locator("#backend").get_by_label("extractive").check()
            page.wait_for_function(
                "document.querySelector('#model-info').innerText.includes('no language model')",
                timeout=QUICK_TIMEOUT_MS,
            )
            _ask(page, "What do the United States accuse North Korea of?")
            english = _wait_answer(page, 2, QUICK_TIMEOUT_MS)
            assert "From the articles" in english and "[1]" in english, english
            assert "Sources for: «What do the United States" in sources.inner_text()
            assert "Stati Uniti" in sources.locator("#source-1 .passage mark").inner_text()
            # The cited span is mid-article: "show in the article" opens scrolled to it.
            sources.locator("#source-1").get_by_text("Show in the article").click()
            box = sources.locator("#source-1 .article-text")
            box.locator("mark").wait_for()
            page.wait_for_function(
                "document.querySelector('#source-1 .article-text').scrollTop > 0", timeout=QUICK_TIMEOUT_MS
            )
            page.screenshot(path=ARTIFACTS / "ui-05-english.png", full_page=True)

            # 4. New conversation: chat and sources cleared.
            page.get_by_role("button", name="New conversation").click()
            page.wait_for_function(
                "([sel]) => document.querySelectorAll(sel).length === 0", arg=[BOT], timeout=QUICK_TIMEOUT_MS
            )
            assert "sources of the latest answer will appear here" in sources.inner_text()

            # 5. An example question, asked by clicking it (a fresh conversation: no rewrite).
            example = "Che cosa ha detto Kim di Putin?"
            page.get_by_role("button", name=example).click()
            said = _wait_answer(page, 1, QUICK_TIMEOUT_MS)
            assert page.locator(USER).first.inner_text().strip() == example
            assert "[1]" in said and "Kim" in said and "Searched for" not in said
            assert f"«{example}»" in sources.inner_text()

            # 6. Errors are chat messages and the page keeps working: empty message, bad upload.
            page.locator("#question textarea").fill("")
            page.locator("#send").click()
            empty = _wait_answer(page, 2, QUICK_TIMEOUT_MS)
            assert "Error" in empty and "empty" in empty
            assert page.locator(USER).count() == 1  # no empty bubble for the empty message
            bad = tmp_path / "rotto.txt"
            bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 not an article")
            page.locator("#upload input[type=file]").set_input_files(str(bad))
            _wait_answer(page, 3, QUICK_TIMEOUT_MS)
            upload_error = page.locator(BOT).nth(2).inner_text()
            assert "Could not add the file: rotto.txt" in upload_error and "binary" in upload_error
            _ask(page, "Who signed the mutual defence pact?")
            assert "Putin" in _wait_answer(page, 4, QUICK_TIMEOUT_MS)
            page.screenshot(path=ARTIFACTS / "ui-06-example-and-errors.png", full_page=True)

            # 7. The chat's own trash button also forgets the conversation: no rewrite afterwards.
            page.locator("#chat button[aria-label='Clear']").click()
            page.wait_for_function(
                "([sel]) => document.querySelectorAll(sel).length === 0", arg=[BOT], timeout=QUICK_TIMEOUT_MS
            )
            _ask(page, "Chi ha firmato l'accordo di mutua difesa?")
            fresh = _wait_answer(page, 1, QUICK_TIMEOUT_MS)
            assert "[1]" in fresh and "Searched for" not in fresh, fresh

            # 8. An uploaded article is listed for every page opened afterwards, not only this one.
            good = tmp_path / "sagra-castagna.txt"
            good.write_text(NEW_ARTICLE, encoding="utf-8")
            page.locator("#upload input[type=file]").set_input_files(str(good))
            _wait_answer(page, 2, QUICK_TIMEOUT_MS)
            assert "La sagra della castagna" in page.locator("#articles").inner_text()
            other = browser.new_page(viewport={"width": 1400, "height": 1000})
            other.goto(app_url, wait_until="load")
            other.wait_for_function(
                "document.querySelector('#articles')?.innerText.includes('La sagra della castagna')",
                timeout=QUICK_TIMEOUT_MS,
            )
        finally:
            browser.close()

    assert not page_errors, page_errors
    outside = sorted({u for u in requests if not u.startswith(app_url.rstrip("/")) and not u.startswith("data:")})
    assert not outside, f"the page fetched from outside: {outside}"
