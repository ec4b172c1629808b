"""Question translation for cross-language retrieval: validation, retrieval with
two wordings, and the answer pipeline's use of it (fake chat models)."""

from __future__ import annotations

import pytest

from rag import Assistant
from rag.answer.translate import acceptable, translate_question, translation_messages
from rag.llm import LangChainBackend
from tests.fakes import Exploding, recording

QUESTION_EN = "Who signed the mutual defence pact?"
QUESTION_IT = "Chi ha firmato il patto di mutua difesa?"


def test_prompt_has_examples_in_both_directions() -> None:
    to_it = translation_messages(QUESTION_EN, "en", "it")
    assert to_it[0].type == "system" and "italiano" in str(to_it[0].content)
    assert [m.type for m in to_it[1:-1]] == ["human", "ai"] * 3 and to_it[-1].content == QUESTION_EN
    assert str(to_it[1].content).startswith("Who founded") and str(to_it[2].content).startswith("Chi ha fondato")
    to_en = translation_messages(QUESTION_IT, "it", "en")
    assert str(to_en[1].content).startswith("Chi ha fondato") and str(to_en[2].content).startswith("Who founded")


@pytest.mark.parametrize(
    ("translation", "ok"),
    [
        (QUESTION_IT, True),
        ("", False),
        (QUESTION_EN, False),  # unchanged
        ("Who signed the pact with Russia in June?", False),  # English, not Italian
        ("Putin ha firmato il patto [1].", False),  # an answer with a citation
        ("Il patto è stato firmato da Putin e Kim Jong-un a Pyongyang, durante la visita di Stato del "
         "presidente russo, che ha incluso una parata militare e numerosi incontri ufficiali.", False),  # too long
        ("Chi ha firmato?\nPutin.", False),
    ],
)
def test_acceptable_translations(translation: str, ok: bool) -> None:
    assert acceptable(QUESTION_EN, translation, "it") is ok


def test_a_translation_cut_short_is_not_used() -> None:
    long_question = (
        "Considering the mutual defence pact signed in Pyongyang in June 2024, the military parade in Kim "
        "Il-sung Square, the gifts exchanged by the two leaders and the reaction of the United States and of "
        "South Korea, which of the two countries is expected to gain more from the agreement in the long run?"
    )
    cut = "Considerando il patto di mutua difesa firmato a Pyongyang nel giugno 2024, la parata militare"
    assert not acceptable(long_question, cut, "it")


def test_translate_question_uses_the_model_and_validates() -> None:
    chat = recording(f"«{QUESTION_IT}»")
    assert translate_question(LangChainBackend(chat), QUESTION_EN, "en", "it") == QUESTION_IT
    assert len(chat.prompts) == 1 and chat.prompts[0][-1].content == QUESTION_EN
    answering = LangChainBackend(recording("Putin and Kim Jong-un signed it."))
    assert translate_question(answering, QUESTION_EN, "en", "it") is None
    same = recording("unused")
    assert translate_question(LangChainBackend(same), QUESTION_IT, "it", "it") is None and not same.prompts


def test_search_with_a_translation_keeps_the_question_scores(assistant: Assistant) -> None:
    alone = assistant.retriever.search(QUESTION_EN, k=7)
    both = assistant.retriever.search(QUESTION_EN, k=7, also=[QUESTION_IT])
    assert "Putin ha firmato un accordo di mutua difesa" in both[0].text
    # Reported dense scores stay those of the question; the fused ranking score changes.
    dense = {h.chunk_id: h.dense_score for h in alone}
    assert all(h.dense_score == pytest.approx(dense[h.chunk_id]) for h in both)
    assert [h.score for h in both] != [h.score for h in alone]


@pytest.fixture(scope="module")
def retrieving(product_assistant: Assistant) -> Assistant:
    """The product's defaults, but the retrieved passages shown (``llm.whole_corpus_tokens = 0``): the
    seed article would otherwise be shown whole, and a whole article needs no translation to be found."""
    s = product_assistant.settings
    return product_assistant.derive(settings=s.model_copy(
        update={"llm": s.llm.model_copy(update={"whole_corpus_tokens": 0})}
    ))


def test_english_question_over_italian_articles_is_translated(retrieving: Assistant) -> None:
    chat = recording(QUESTION_IT, "Putin signed the pact with Kim Jong-un [1].")
    a = retrieving.ask(QUESTION_EN, chat=chat)
    assert a.translated_query == QUESTION_IT and a.answerable and not a.fell_back
    assert "translation" in a.timings and a.to_dict()["translated_query"] == QUESTION_IT
    # The translation serves retrieval; the answering prompt has the question as asked.
    prompt = str(chat.prompts[1][-1].content)
    assert QUESTION_EN in prompt and QUESTION_IT not in prompt


def test_question_in_the_articles_language_is_not_translated(retrieving: Assistant) -> None:
    chat = recording("Putin ha firmato il patto con Kim Jong-un [1].")
    a = retrieving.ask(QUESTION_IT, chat=chat)
    assert a.translated_query is None and len(chat.prompts) == 1 and a.answerable


def test_bad_translation_is_ignored(retrieving: Assistant) -> None:
    chat = recording("Putin did. [1]", "Putin signed the pact with Kim Jong-un [1].")
    a = retrieving.ask(QUESTION_EN, chat=chat)
    assert a.translated_query is None and a.answerable and not a.fell_back
    assert len(chat.prompts) == 2  # the translation was asked for, and dropped


def test_a_whole_article_is_not_translated_for(product_assistant: Assistant) -> None:
    chat = recording("Putin signed the pact with Kim Jong-un [1].")
    a = product_assistant.ask(QUESTION_EN, chat=chat)
    assert a.read_whole_corpus and a.translated_query is None and len(chat.prompts) == 1 and a.answerable


def test_refused_questions_are_not_translated(product_assistant: Assistant) -> None:
    chat = recording()  # any call would fail: the script is empty
    a = product_assistant.ask("How old is Kim Jong-un?", chat=chat)
    assert not a.answerable and not chat.prompts


def test_backend_down_at_translation_falls_back_once(product_assistant: Assistant) -> None:
    a = product_assistant.ask(QUESTION_EN, chat=Exploding(messages=iter([])))
    assert a.fell_back and "connection refused" in (a.fallback_reason or "") and a.citations
