"""The answer check: a yes/no question about the cited sentences (fake chat models;
the real model's verdicts are covered by the end-to-end tests and `rag eval`)."""

from __future__ import annotations

import pytest

from rag import Assistant
from rag.answer.check import asks_for_a_name, cited_text_answers, gives_a_new_name
from rag.answer.pipeline import NO_NAME, NOT_ANSWERED
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


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Come si chiama il titolare del bar?", True),
        ("Qual è il nome della concessionaria?", True),
        ("Qual era il nome dell'indagine?", True),
        ("What is the name of the truck driver?", True),
        ("What's the name of the man who accused the officers?", True),
        ("What was the name of the operation?", True),
        ("Quali sono i nomi dei ladri?", True),
        ("Qual’è il nome dell’indagine?", True),
        ("What’s the name of the bar?", True),
        ("Chi ha firmato l'accordo?", False),
        ("What is a course of study called?", False),  # a term, not a name
        ("What is the name for a teacher of just one person?", False),
    ],
)
def test_questions_that_ask_for_a_name(question: str, asks: bool) -> None:
    assert asks_for_a_name(question) is asks


@pytest.mark.parametrize(
    ("question", "answer", "cited", "gives"),
    [
        ("Come si chiama la concessionaria di Bologna?", "Bologna [1].", "una concessionaria di Bologna",
         False),  # the question's own name
        ("What is the name of the truck driver?", "The name of the truck driver is the autista of the camion [1].",
         "l'autista di un camion ha sorpreso due ladri", False),  # a role
        ("What is the name of the man?", "The man is the Albanian worker [1].", "un operaio albanese di 40 anni",
         False),  # a demonym, lower case in Italian
        ("What is the name of the truck driver?", "The truck driver is Mario Rossi [1].",
         "l'autista, Mario Rossi, ha sorpreso due ladri", True),
        ("Come si chiama l'indagine?", "L'indagine si chiama «non plus ultra» [1].", "L'indagine \" Non plus ultra \"",
         True),  # a quoted title
        ("Qual era il nome del primo figlio?", "Jochi.", "il primo figlio, Jochi, nacque", True),
        ("What is the name of the driver?", 'The name is "the driver" [1].', "l'autista", False),  # not cited
        ("What is the name of the driver?", 'The name is "autista" [1].', "l'autista di un camion", False),
        ("Come si chiama l'indagine?", "L'indagine «fiore» [1].", "l'indagine, un fiore", False),  # not a title
        ("Come si chiama l'operazione?", "Si chiama Non plus ultra [1].", "L'operazione «Non plus ultra.»", True),
        # Sharing a stem with a word or a name of the question is not being in it.
        ("Come si chiama il regista?", "Il regista è Comencini [1].", "il regista Luigi Comencini", True),
        ("Come si chiama l'uomo di Castelnuovo?", "Castelli [1].", "Mario Castelli, di Castelnuovo", True),
        ("Come si chiama la figlia di Francesco Rossi?", "Francesca [1].", "la figlia Francesca", True),
        ("Come si chiama il bar bolognese?", "Bologna [1].", "un bar di Bologna", False),  # an inflection
        ("What is the name of the city?", "Lisbon [1].", "la città di Lisbona", True),  # an English name
        ("What is the name of the country?", "The country is North Korea [1].", "la Corea del Nord", True),
    ],
)
def test_answers_that_give_a_name(question: str, answer: str, cited: str, gives: bool) -> None:
    assert gives_a_new_name(question, answer, cited) is gives


def test_a_name_question_answered_with_a_role_is_refused_before_the_check(checking: Assistant) -> None:
    question = "What is the name of the leader who visited North Korea?"
    chat = recording("The leader who visited North Korea was the Russian president [1].", "yes")
    a = checking.ask(question, chat=chat)
    assert not a.answerable and a.refusal_reason == NO_NAME and a.text == REFUSAL["en"]
    assert len(chat.prompts) == 1  # no model call for the check
    named = checking.ask(question, chat=recording("The leader who visited North Korea was Vladimir Putin [1].", "yes"))
    assert named.answerable and "Putin" in named.text, named.refusal_reason


def test_the_name_check_reads_the_question_as_typed_and_can_be_turned_off(checking: Assistant) -> None:
    question = "What is the name of the leader who visited North Korea?"
    role = "The leader who visited North Korea was the Russian president [1]."
    checking.settings.llm.name_check = False
    assert checking.ask(question, chat=recording(role, "yes")).answerable
    checking.settings.llm.name_check = True
    # A follow-up whose rewrite gave nothing is searched for joined to the previous question:
    # that one asked for a name, this one does not.
    first = checking.ask(question, chat=recording("The leader who visited North Korea was Vladimir Putin [1].", "yes"))
    follow = checking.ask(
        "And what did he sign there?", chat=recording("", role, "yes"), history=[(question, first.text)]
    )
    assert follow.answerable, follow.refusal_reason
