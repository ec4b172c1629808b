"""The page's handlers against a stand-in Assistant (fast, no models, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag import Answer, BackendError, InvalidQuestionError
from rag.corpus.ingest import IngestReport
from rag.types import Document
from ui.chat import ChatHandlers, Conversation, Turn, chat_messages


class FakeAssistant:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.closed: list[str] = []  # questions whose stream was closed before it ended

    def ask_stream(self, question: str, history: Any = None, **options: Any) -> Iterator[str | Answer]:
        self.calls.append({"question": question, "history": list(history or []), **options})
        if self.fail:
            raise self.fail
        try:
            yield "Bozza "
            yield "[1]"
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
                report.errors.append(f"{p}: is not valid UTF-8 (byte 3); save it as UTF-8 and try again.")
            else:
                report.added.append(Document("new", "Nuovo", "2024-07", p, "it", "testo"))
        return report


def _run(handlers: ChatHandlers, question: str, conv: Conversation | None = None) -> list[tuple[Any, ...]]:
    return list(handlers.respond(question, conv or Conversation(), "extractive", 4, "it"))


def test_answer_streams_then_the_validated_text_replaces_the_draft() -> None:
    fake = FakeAssistant()
    steps = _run(ChatHandlers(fake), "Chi?")
    assert steps[0][0] == "" and "Cerco negli articoli" in steps[0][1][-1]["content"]
    drafts = [s[1][-1]["content"] for s in steps[1:-1]]
    assert drafts and all('class="draft"' in d for d in drafts) and "Bozza" in drafts[-1]
    _, messages, _, sources, answer = steps[-1]
    assert messages[0] == {"role": "user", "content": "Chi?"}
    assert "Risposta a Chi?" in messages[-1]["content"] and "draft" not in messages[-1]["content"]
    assert isinstance(answer, Answer) and "Fonti per" in sources
    expected_call = {"question": "Chi?", "history": [], "backend": "extractive", "k": 4, "default_language": "it"}
    assert fake.calls[0] == expected_call


def test_follow_up_gets_the_history_and_shows_what_was_searched() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][2]
    last = _run(handlers, "E Kim?", conv)[-1]
    assert fake.calls[1]["history"] == [("Chi ha firmato?", "Risposta a Chi ha firmato? [1].")]
    assert "Cercato: «Chi ha firmato? E Kim?»" in last[1][-1]["content"]


def test_errors_become_chat_messages_and_stay_out_of_the_history() -> None:
    handlers = ChatHandlers(FakeAssistant(fail=InvalidQuestionError("The question is empty.")))
    _, messages, conv, _, _ = _run(handlers, "  ")[-1]
    assert "The question is empty." in messages[-1]["content"] and "chat-error" in messages[-1]["content"]
    assert conv.turns[-1].answer is None

    handlers = ChatHandlers(FakeAssistant(fail=BackendError("server <down>")))
    assert "server &lt;down&gt;" in _run(handlers, "Chi?")[-1][1][-1]["content"]

    # Anything unexpected: a short generic message, never a traceback.
    handlers = ChatHandlers(FakeAssistant(fail=ZeroDivisionError("division by zero")))
    content = _run(handlers, "Chi?")[-1][1][-1]["content"]
    assert "problema inatteso" in content and "ZeroDivision" not in content and "Traceback" not in content

    bad_backend = list(ChatHandlers(FakeAssistant()).respond("Chi?", Conversation(), "gpt-9", 4, "en"))[-1]
    assert "Unknown backend" in bad_backend[1][-1]["content"]


def test_upload_reports_added_articles_and_bad_files_in_the_chat(tmp_path: Path) -> None:
    handlers = ChatHandlers(FakeAssistant())
    bad = str(tmp_path / "gradio-tmp" / "bad.txt")
    good = str(tmp_path / "gradio-tmp" / "good.md")
    file_box, articles, messages, conv = handlers.upload([good, bad], Conversation(), "en")
    assert file_box is None and "Nuovo" in articles and "3 passages" in articles
    assert "Article added: “Nuovo” (2024-07, 3 passages)" in messages[0]["content"]
    # The temporary folder Gradio copied the upload to is not shown, only the file name.
    assert "Could not add the file: bad.txt: is not valid UTF-8" in messages[1]["content"]
    assert str(tmp_path) not in messages[1]["content"]
    assert "No file received" in handlers.upload(None, conv, "en")[2][-1]["content"]


def test_new_conversation_clears_everything() -> None:
    handlers = ChatHandlers(FakeAssistant())
    conv = _run(handlers, "Chi?")[-1][2]
    messages, cleared, sources, answer = handlers.new_conversation(conv, "en")
    assert (messages, cleared.turns, answer) == ([], [], None)
    assert "sources of the latest answer" in sources


def test_new_conversation_during_an_answer_stops_it_and_stays_cleared() -> None:
    fake = FakeAssistant()
    handlers = ChatHandlers(fake)
    conv = _run(handlers, "Chi ha firmato?")[-1][2]
    streaming = handlers.respond("E Kim?", conv, "extractive", 4, "it")
    next(streaming), next(streaming)  # "thinking…", then the first draft piece
    handlers.new_conversation(conv, "it")
    assert [step[1] for step in streaming] == [[]]  # it only shows the new, empty conversation
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
    messages = list(first)[-1][1]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Chi ha firmato?", "Dove?"]
    assert "Risposta a Chi ha firmato?" in messages[1]["content"] and "Risposta a Dove?" in messages[3]["content"]
    assert "Articolo aggiunto" in messages[-1]["content"]


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
    assert list(handlers.respond("", conv, "extractive", 4, "it")) == []  # Enter again on the cleared box
    list(first)
    assert [c["question"] for c in fake.calls] == ["Chi ha firmato?"]
    _run(handlers, "Chi ha firmato?", conv)  # asked again once answered: a real question
    assert len(fake.calls) == 2
