"""The page's handlers against a stand-in Assistant (fast, no models, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag import ANSWER_ENGINES, Answer, BackendError, ConfigError, DocumentError, Settings, Stage
from rag.corpus.ingest import IngestReport
from rag.types import Document
from ui.chat import ChatHandlers, Conversation, Turn, chat_messages, conversation
from ui.labels import label


class FakeAssistant:
    settings = Settings()

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.closed: list[str] = []  # questions whose stream was closed before it ended
        self.tokens_after_stop = 0

    def ask_stream(self, question: str, history: Any = None, **options: Any) -> Iterator[str | Stage | Answer]:
        self.calls.append({"question": question, "history": list(history or []), **options})
        if options.get("backend") not in (None, *ANSWER_ENGINES):  # as the real one
            raise ConfigError(f"Unknown answer engine {options['backend']!r}.")
        if self.fail:
            raise self.fail
        cancel = options.get("cancel")
        try:
            yield Stage("searching", 0.1)
            yield Stage("reading", 0.2, passages=5)
            for piece in ("Bozza ", "[1]"):
                if cancel is not None and cancel.is_set():  # as the real pipeline, between tokens
                    yield Answer(question, "Risposta interrotta.", "it", False, stopped=True)
                    return
                yield piece
            searched = f"{history[-1][0]} {question}" if history else question
            yield Answer(question, f"Risposta a {question} [1].", "it", True, searched_for=searched)
        except GeneratorExit:
            self.closed.append(question)
            raise

    def document_text(self, doc_id: str) -> str:
        raise KeyError(doc_id)

    def documents(self) -> list[dict[str, Any]]:
        return [{"doc_id": "new", "title": "Nuovo", "date": "2024-07", "language": "it", "passages": 3}]

    def ingest(self, paths: list[str]) -> IngestReport:
        report = IngestReport()
        for p in paths:
            if p.endswith("bad.txt"):
                report.errors.append(DocumentError(
                    f"{p}: is not valid UTF-8 (byte 3); save it as UTF-8 and try again.", code="not_utf8",
                    name="bad.txt",
                ))
            else:
                report.added.append(Document("new", "Nuovo", "2024-07", p, "it", "testo"))
        return report


# The chat events' outputs (ui.app chat_outputs).
TEXTBOX, ERROR, MESSAGES, CONV, KEPT, SEND, STOP = range(7)


def _run(handlers: ChatHandlers, question: str, conv: Conversation | None = None) -> list[tuple[Any, ...]]:
    return list(handlers.respond(question, conv or Conversation(), "extractive", 4, "it"))


def _last(steps: list[tuple[Any, ...]]) -> str:
    return steps[-1][MESSAGES][-1]["content"]


def test_stages_show_at_once_then_the_draft_then_the_validated_answer() -> None:
    fake = FakeAssistant()
    steps = _run(ChatHandlers(fake), "Chi?")
    first = steps[0]
    assert first[TEXTBOX] == "" and "Cerco negli articoli" in first[MESSAGES][-1]["content"]
    assert first[SEND]["visible"] is False and first[STOP]["visible"] is True  # Stop replaces Send
    shown = [s[MESSAGES][-1]["content"] for s in steps[1:-1]]
    assert any("Leggo 5 passaggi" in d for d in shown)
    assert any('class="draft"' in d and "Bozza" in d for d in shown)
    assert all("<time class=\"elapsed\"" in d for d in shown)  # every step shows its elapsed time
    last = steps[-1]
    assert last[MESSAGES][0] == {"role": "user", "content": "Chi?"}
    assert "Risposta a Chi?" in _last(steps) and "draft" not in _last(steps) and "stage" not in _last(steps)
    assert last[SEND]["visible"] is True and last[STOP]["visible"] is False
    assert last[KEPT] == [{"q": "Chi?", "d": last[MESSAGES][-1]["content"], "a": "Risposta a Chi? [1].", "p": "a1"}]
    call = fake.calls[0]
    assert {k: call[k] for k in ("question", "history", "backend", "k", "default_language")} == {
        "question": "Chi?", "history": [], "backend": "extractive", "k": 4, "default_language": "it"}


def test_follow_up_gets_the_history() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][CONV]
    _run(handlers, "E Kim?", conv)
    assert fake.calls[1]["history"] == [("Chi ha firmato?", "Risposta a Chi ha firmato? [1].")]


def test_stop_ends_the_answer_keeps_the_history_and_marks_it() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][CONV]
    streaming = handlers.respond("E Kim?", conv, "extractive", 4, "it")
    for _ in range(3):  # thinking, searching, reading
        next(streaming)
    send, stop = handlers.stop(conv)
    assert send["visible"] and not stop["visible"]
    last = list(streaming)[-1]
    assert label("it", "stopped") in last[MESSAGES][-1]["content"]
    assert [m["content"] for m in last[MESSAGES] if m["role"] == "user"] == ["Chi ha firmato?", "E Kim?"]
    assert conv.turns[-1].answer is None  # a stopped answer is not used for follow-ups
    assert last[SEND]["visible"] and not last[STOP]["visible"]
    _run(handlers, "Chi è Kim?", conv)  # the next question is answered whole
    assert "Risposta a Chi è Kim?" in conv.turns[-1].display


def test_regenerate_asks_the_last_question_again_in_place() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][CONV]
    _run(handlers, "Dove?", conv)
    steps = list(handlers.regenerate(conv, "extractive", 4, "it"))
    users = [m["content"] for m in steps[-1][MESSAGES] if m["role"] == "user"]
    assert users == ["Chi ha firmato?", "Dove?"] and [c["question"] for c in fake.calls][-1] == "Dove?"
    assert fake.calls[-1]["history"] == [("Chi ha firmato?", "Risposta a Chi ha firmato? [1].")]
    nothing = list(handlers.regenerate(Conversation(), "extractive", 4, "en"))[-1]
    assert "no answer to regenerate" in nothing[MESSAGES][-1]["content"]


def test_edit_the_last_question_puts_it_back_in_the_box() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi ha firmato?")[-1][CONV]
    _run(handlers, "Dove?", conv)
    busy = handlers.edit_last(conv, "una domanda che sto scrivendo", "it")  # text in the box: not replaced
    assert not isinstance(busy[TEXTBOX], str) and busy[ERROR]["visible"] and len(conv.turns) == 2
    out = handlers.edit_last(conv, "", "it")
    assert out[TEXTBOX] == "Dove?" and [t.question for t in conv.turns] == ["Chi ha firmato?"]


def test_each_answer_keeps_its_own_sources_ids() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi?")[-1][CONV]
    _run(handlers, "Dove?", conv)
    assert [t.prefix for t in conv.turns] == ["a1", "a2"]


def test_errors_become_chat_messages_in_the_pages_language() -> None:
    handlers = ChatHandlers(FakeAssistant(fail=BackendError("server <down>")))
    content = _last(_run(handlers, "Chi?"))
    assert label("it", "err_generic") in content and "server &lt;down&gt;" in content  # the English under details
    assert content.index("Dettagli") < content.index("server &lt;down&gt;")

    # Anything unexpected: a short generic message, never a traceback.
    handlers = ChatHandlers(FakeAssistant(fail=ZeroDivisionError("division by zero")))
    content = _last(_run(handlers, "Chi?"))
    assert "problema inatteso" in content and "division by zero" not in content and "Traceback" not in content


def test_an_empty_or_over_long_question_keeps_the_text_in_the_box() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    for question, expected in (("   ", "La domanda è vuota"), ("x" * 5000, "lunga 5.000 caratteri")):
        conv = Conversation()
        (only,) = _run(handlers, question, conv)
        assert not isinstance(only[TEXTBOX], str)  # the box is not cleared: the text stays
        assert only[ERROR]["visible"] and expected in only[ERROR]["value"]
        assert conv.turns == [] and only[MESSAGES] == []  # no bubble
    assert fake.calls == []
    # The next good question hides the error.
    assert _run(handlers, "Chi?")[0][ERROR]["visible"] is False


def test_upload_reports_added_articles_and_bad_files_in_the_pages_language(tmp_path: Path) -> None:
    handlers = ChatHandlers(FakeAssistant())
    bad = str(tmp_path / "gradio-tmp" / "bad.txt")
    good = str(tmp_path / "gradio-tmp" / "good.md")
    file_box, articles, messages, conv, kept, _ = handlers.upload([good, bad], Conversation(), "it")
    assert file_box is None and "Nuovo" in articles and "3 passaggi" in articles
    assert "Articolo aggiunto: «Nuovo» (2024-07, 3 passaggi)" in messages[0]["content"]
    assert "File non aggiunto: «bad.txt» non è un testo UTF-8 valido" in messages[1]["content"]
    assert str(tmp_path) not in messages[1]["content"] and len(kept) == 2
    assert "No file received" in handlers.upload(None, conv, "en")[2][-1]["content"]


def test_new_conversation_clears_everything() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi?")[-1][CONV]
    out = handlers.new_conversation(conv)
    assert out[MESSAGES] == [] and out[CONV].turns == [] and out[KEPT] == []


def test_new_conversation_during_an_answer_stops_it_and_stays_cleared() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][CONV]
    streaming = handlers.respond("E Kim?", conv, "extractive", 4, "it")
    next(streaming), next(streaming)  # "thinking…", then the first stage
    handlers.new_conversation(conv)
    assert [step[MESSAGES] for step in streaming] == [[]]  # it only shows the new, empty conversation
    assert fake.closed == ["E Kim?"]  # and the answer's generation was stopped (frees the model)
    assert conv.turns == []
    _run(handlers, "Chi è Kim?", conv)
    assert fake.calls[-1]["history"] == []  # the cleared conversation is not used for follow-ups


def test_a_question_or_upload_during_an_answer_is_kept(tmp_path: Path) -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = Conversation()
    first = handlers.respond("Chi ha firmato?", conv, "extractive", 4, "it")
    next(first)
    _run(handlers, "Dove?", conv)  # asked while the first answer streams
    handlers.upload([str(tmp_path / "good.md")], conv, "it")
    messages = list(first)[-1][MESSAGES]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Chi ha firmato?", "Dove?"]
    assert "Risposta a Chi ha firmato?" in messages[1]["content"] and "Risposta a Dove?" in messages[3]["content"]
    assert "Articolo aggiunto" in messages[-1]["content"]


def test_the_conversation_comes_back_after_a_reload() -> None:
    handlers = ChatHandlers(FakeAssistant())
    kept = _run(handlers, "Chi?")[-1][KEPT]
    messages, conv = handlers.restore(kept, Conversation())
    assert [m["role"] for m in messages] == ["user", "assistant"] and "Risposta a Chi?" in messages[1]["content"]
    assert conversation(conv.turns) == [("Chi?", "Risposta a Chi? [1].")]  # follow-ups see it
    _run(handlers, "Dove?", conv)
    assert conv.turns[-1].prefix == "a2"  # the restored answer's card ids are not reused
    # Whatever else the browser sends is ignored.
    junk_prefix = [{"q": "a", "d": "x", "p": "<b>"}]
    for junk in (None, "x", [1], [{"q": 1, "d": "x"}], [{"q": "a", "d": "x" * 2_000_000}], junk_prefix):
        assert handlers.restore(junk, Conversation()) == ([], Conversation())


def test_card_ids_stay_unique_after_regenerate_and_reload() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi?")[-1][CONV]
    kept = list(handlers.regenerate(conv, "extractive", 4, "it"))[-1][KEPT]
    assert [t["p"] for t in kept] == ["a2"]
    _, restored_conv = handlers.restore(kept, Conversation())
    _run(handlers, "Dove?", restored_conv)
    assert [t.prefix for t in restored_conv.turns] == ["a2", "a3"]


def test_what_the_browser_keeps_is_bounded_newest_first() -> None:
    from ui.chat import STORED_CHARS, stored

    conv = Conversation(turns=[Turn(f"q{i}", "x" * (STORED_CHARS // 3), f"a{i}", f"a{i}") for i in range(5)])
    kept = stored(conv)
    assert [t["q"] for t in kept] == ["q3", "q4"]  # the newest that fit


def test_stop_right_after_asking_still_stops() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = Conversation()
    streaming = handlers.respond("Chi?", conv, "extractive", 4, "it")
    first = next(streaming)  # Stop is shown from here on: it must reach this answer
    assert first[STOP]["visible"]
    handlers.stop(conv)
    assert label("it", "stopped") in list(streaming)[-1][MESSAGES][-1]["content"]


def test_the_clock_moves_while_the_answer_is_written() -> None:
    import re
    import time

    class Slow(FakeAssistant):
        def ask_stream(self, question: str, history: Any = None, **options: Any) -> Iterator[Any]:
            yield Stage("writing", 1.0)
            for piece in ("Una ", "due ", "tre "):
                time.sleep(0.2)
                yield piece
            yield Answer(question, "Una due tre [1].", "it", True)

    steps = _run(ChatHandlers(Slow()), "Chi?")
    clocks = [float(m.group(1)) for s in steps
              if (m := re.search(r'datetime="PT([\d.]+)S"', s[MESSAGES][-1]["content"]))]
    assert clocks[-1] >= clocks[1] + 0.4  # drawn anew at every token, not frozen at the stage's start


def test_switching_the_page_language_redraws_earlier_answers() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi?")[-1][CONV]
    messages, _ = handlers.relabel(conv, "en")
    assert "Details" in messages[-1]["content"] and "Dettagli" not in messages[-1]["content"]


def test_an_upload_error_without_its_own_wording_keeps_the_details(tmp_path: Path) -> None:
    fake = FakeAssistant()
    fake.ingest = lambda paths: IngestReport(errors=[DocumentError("x/odd.txt: something odd")])  # type: ignore[method-assign]
    messages = ChatHandlers(fake).upload([str(tmp_path / "odd.txt")], Conversation(), "it")[2]
    notice = messages[-1]["content"]
    assert label("it", "err_generic") in notice and "Dettagli" in notice and "something odd" in notice


def test_chat_messages_escape_user_text() -> None:
    messages = chat_messages([Turn("<img src=x onerror=alert(1)>", "ok"), Turn(None, "notice"), Turn(" ", "err")])
    assert messages[0]["content"].startswith("&lt;img")
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "assistant"]


def test_a_double_click_asks_once() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = Conversation()
    first = handlers.respond("Chi ha firmato?", conv, "extractive", 4, "it")
    next(first)
    assert list(handlers.respond("Chi ha firmato?", conv, "extractive", 4, "it")) == []  # same question, pending
    list(first)
    assert [c["question"] for c in fake.calls] == ["Chi ha firmato?"]
    _run(handlers, "Chi ha firmato?", conv)  # asked again once answered: a real question
    assert len(fake.calls) == 2


def _access(tmp_path: Path, host: str = "127.0.0.1", **ui: Any) -> Any:
    from ui.access import Access

    return Access(Settings(home=tmp_path, ui=ui), host)


def test_uploads_follow_the_access_rules(tmp_path: Path) -> None:
    assert _access(tmp_path).may_change_articles(None)  # this machine only
    beyond = _access(tmp_path, "0.0.0.0")
    assert not beyond.may_change_articles(None) and "without a login" in beyond.warnings()[0]
    login = _access(tmp_path, "0.0.0.0", username="ann", password="pw")
    assert login.may_change_articles("ann") and not login.warnings()
    admin = _access(tmp_path, "0.0.0.0", username="ann", password="pw", admin_username="boss",
                    admin_password="pw2", uploads="admin")
    assert admin.may_change_articles("boss") and not admin.may_change_articles("ann")
    assert not _access(tmp_path, uploads="off").may_change_articles("ann")
    # "auto" with an admin account: only the admin, wherever the page is served.
    auto_admin = _access(tmp_path, username="ann", password="pw", admin_username="boss", admin_password="pw2")
    assert auto_admin.may_change_articles("boss") and not auto_admin.may_change_articles("ann")
    assert not auto_admin.may_change_articles(None)


def test_a_refused_upload_says_so_and_its_files_are_deleted(tmp_path: Path) -> None:
    upload = tmp_path / "gradio" / "abc" / "good.md"
    upload.parent.mkdir(parents=True)
    upload.write_text("# T\n\ntext")
    handlers = ChatHandlers(FakeAssistant(), _access(tmp_path, uploads="off"))
    messages = handlers.upload([str(upload)], Conversation(), "en")[2]
    assert "not allowed" in messages[-1]["content"] and not upload.exists() and not upload.parent.exists()


def test_too_many_files_in_one_upload_are_refused(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"a{i}.md"
        f.write_text("# T\n\ntext")
        files.append(str(f))
    fake = FakeAssistant()
    fake.settings = Settings(home=tmp_path, ui={"max_upload_files": 2})  # type: ignore[misc]
    messages = ChatHandlers(fake).upload(files, Conversation(), "en")[2]
    assert "Too many files at once: 3 files" in messages[-1]["content"]
    assert not any(Path(f).exists() for f in files)  # Gradio's copies go in any case


def test_an_accepted_upload_leaves_no_temporary_copy(tmp_path: Path) -> None:
    upload = tmp_path / "gradio" / "x" / "good.md"
    upload.parent.mkdir(parents=True)
    upload.write_text("# T\n\ntext")
    messages = ChatHandlers(FakeAssistant()).upload([str(upload)], Conversation(), "en")[2]
    assert "Article added" in messages[-1]["content"] and not upload.exists()


def test_an_accepted_long_question_stays_whole_in_the_history() -> None:
    question = "Chi ha firmato? " + "dettagli " * 60  # 556 characters: under the limit, over the display cut
    fake = FakeAssistant()
    conv = _run(ChatHandlers(fake), question)[-1][CONV]
    assert conv.turns[0].question == question
    assert conversation(conv.turns) == [(question, f"Risposta a {question} [1].")]


def test_remove_an_article_from_the_page(tmp_path: Path) -> None:
    fake = FakeAssistant()
    removed: list[list[str]] = []
    fake.remove = lambda ids: removed.append(ids) or [Document("new", "Nuovo", None, "x", "it", "t")]  # type: ignore[attr-defined]
    _, messages, _, _, picker = ChatHandlers(fake).remove("new", Conversation(), "it")
    assert removed == [["new"]] and "Articolo rimosso: «Nuovo»" in messages[-1]["content"]
    assert picker["visible"] and picker["choices"] == [("Nuovo · new", "new")]
    refused = ChatHandlers(fake, _access(tmp_path, uploads="off")).remove("new", Conversation(), "en")
    assert "not allowed" in refused[1][-1]["content"] and removed == [["new"]]
    assert not refused[4]["visible"]


def test_wrong_passwords_sent_in_parallel_wait_for_each_other(tmp_path: Path) -> None:
    import asyncio
    import time

    access = _access(tmp_path, "0.0.0.0", username="ann", password="right")
    check = access.auth()
    assert check is not None

    async def guesses() -> list[bool]:
        return list(await asyncio.gather(*(check("ann", f"guess{i}") for i in range(4))))

    t = time.perf_counter()
    assert asyncio.run(guesses()) == [False] * 4
    assert time.perf_counter() - t >= 0.5 + 0.5 + 1 + 2 - 0.1  # one after the other, not 0.5 s for all


def test_wrong_passwords_are_answered_ever_later(tmp_path: Path) -> None:
    import asyncio
    import time

    access = _access(tmp_path, "0.0.0.0", username="ann", password="right")
    check = access.auth()
    assert check is not None
    t = time.perf_counter()
    results = [asyncio.run(check("ann", "wrong")) for _ in range(4)]
    assert results == [False] * 4 and time.perf_counter() - t >= 0.5 + 0.5 + 1 + 2 - 0.1
    assert access.delay() == 4.0
    assert asyncio.run(check("ann", "right"))  # the right password still works (after no wait)
