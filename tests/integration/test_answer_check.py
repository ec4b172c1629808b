"""The answer check: a yes/no question about the cited sentences (fake chat models;
the real model's verdicts are covered by the end-to-end tests and `rag eval`)."""

from __future__ import annotations

import pytest

from rag import Assistant
from rag.answer.check import cited_text_answers
from rag.answer.pipeline import NOT_ANSWERED
from rag.answer.prompts import NO_ANSWER, REFUSAL
from rag.llm import LangChainBackend
from tests.fakes import Exploding, recording

QUOTE = "Putin ha firmato un accordo di mutua difesa con Kim Jong-un."
ANSWER = "Putin signed the pact with Kim Jong-un [1]."


@pytest.mark.parametrize(
    ("reply", "verdict"), [("yes", True), ("Yes.", True), ("Sì", True), ("no", False), ("No, it does not.", False),
                           ("maybe", None), ("", None)]
)
def test_verdicts(reply: str, verdict: bool | None) -> None:
    chat = recording(reply)
    assert cited_text_answers(LangChainBackend(chat), "Who signed the pact?", [QUOTE], 10) is verdict
    system, user = chat.prompts[0]
    assert "yes or no" in str(system.content)
    assert f"«{QUOTE}»" in str(user.content) and "Who signed the pact?" in str(user.content)


def test_a_failing_backend_gives_no_verdict() -> None:
    down = LangChainBackend(Exploding(messages=iter([])))
    assert cited_text_answers(down, "Who signed the pact?", [QUOTE], 10) is None


@pytest.fixture
def checking(assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> Assistant:
    monkeypatch.setattr(assistant.settings.llm, "answer_check", True)
    return assistant


def test_answer_whose_citations_do_not_answer_is_refused(checking: Assistant) -> None:
    chat = recording(ANSWER, "no")
    a = checking.ask("Who signed the mutual defence pact?", chat=chat)
    assert not a.answerable and not a.citations and a.text == REFUSAL["en"]
    assert a.refusal_reason == NOT_ANSWERED and "answer_check" in a.timings
    # The check sees the question and the cited sentence, not the model's answer.
    check = str(chat.prompts[1][-1].content)
    assert "Who signed the mutual defence pact?" in check and "Putin ha firmato" in check and ANSWER not in check


@pytest.mark.parametrize("verdict", ["yes", "maybe"])
def test_answer_stands_when_the_check_agrees_or_gives_no_verdict(checking: Assistant, verdict: str) -> None:
    a = checking.ask("Who signed the mutual defence pact?", chat=recording(ANSWER, verdict))
    assert a.answerable and a.text.startswith("Putin signed the pact") and a.refusal_reason is None


def test_no_check_when_the_model_declined_or_the_check_is_off(checking: Assistant, assistant: Assistant) -> None:
    chat = recording(NO_ANSWER["en"])
    assert not checking.ask("Who signed the mutual defence pact?", chat=chat).answerable
    assert len(chat.prompts) == 1
    checking.settings.llm.answer_check = False
    chat = recording(ANSWER)
    assert assistant.ask("Who signed the mutual defence pact?", chat=chat).answerable and len(chat.prompts) == 1
