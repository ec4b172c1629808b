"""End to end with the embedded model: real e5 embeddings, real FAISS index,
real Qwen2.5-1.5B through llama.cpp (grammar-constrained), product defaults
(the seed article is shown whole; past ``llm.whole_corpus_tokens`` the retrieved
passages are, and English questions are translated for retrieval)."""

from __future__ import annotations

import pytest

from rag import Assistant

pytestmark = pytest.mark.slow


def _question(dev: list[dict], qid: str) -> dict:
    return next(q for q in dev if q["id"] == qid)


# d04 and d06 are known misses of the embedded model (reported by `rag eval article`).
@pytest.mark.parametrize("qid", ["d03", "d02", "d08"])
def test_answers_in_the_question_language_citing_the_gold_passage(
    default_assistant: Assistant, dev_questions: list[dict], qid: str
) -> None:
    q = _question(dev_questions, qid)
    a = default_assistant.ask(q["q"], backend="llamacpp")
    assert a.backend == "llamacpp" and not a.fell_back, a.fallback_reason
    assert a.language == q["lang"] and a.answerable
    for group in q["expect_any"]:
        assert any(alt in a.text.lower() for alt in group), a.text
    assert any(q["gold"] in c.passage for c in a.citations), a.citations
    assert "first_token" in a.timings and "answer_check" in a.timings  # the check ran and agreed
    # One article fits: the model reads all of it, so no translation is needed to find the passage.
    assert a.read_whole_corpus and a.translated_query is None


def test_retrieved_passages_with_the_question_translated(
    default_assistant: Assistant, dev_questions: list[dict]
) -> None:
    q = _question(dev_questions, "d02")
    s = default_assistant.settings
    retrieved = default_assistant.derive(settings=s.model_copy(
        update={"llm": s.llm.model_copy(update={"whole_corpus_tokens": 0})}
    ))
    a = retrieved.ask(q["q"], backend="llamacpp")
    assert not a.read_whole_corpus and a.translated_query  # English questions meet the article in Italian too
    assert a.answerable and any(q["gold"] in c.passage for c in a.citations), a.citations


def test_answer_does_not_depend_on_earlier_questions(default_assistant: Assistant) -> None:
    # Before rag/llama_cache.py this question got "Putin ha firmato…" in a fresh process
    # but "Kim Jong-un ha firmato…" after these two other questions.
    question = "Chi ha firmato l'accordo di mutua difesa?"
    first = default_assistant.ask(question, backend="llamacpp").text
    for other in ("Cosa ha criticato Putin?", "Quali colori decoravano la piazza?"):
        default_assistant.ask(other, backend="llamacpp")
    assert default_assistant.ask(question, backend="llamacpp").text == first
    # Which signer the greedy answer names depends on the CPU's float kernels (Putin on
    # the Intel VMs, Kim Jong-un on AMD EPYC); both are right ("Putin ha firmato ... con Kim").
    assert "putin" in first.lower() or "kim" in first.lower(), first


def test_unanswerable_is_refused(default_assistant: Assistant, dev_questions: list[dict]) -> None:
    q = _question(dev_questions, "d09")
    a = default_assistant.ask(q["q"], backend="llamacpp")
    assert not a.answerable and not a.citations and a.language == "it"
    assert "non contengono" in a.text


def test_population_of_pyongyang_is_not_invented(default_assistant: Assistant) -> None:
    a = default_assistant.ask("What is the population of Pyongyang?", backend="llamacpp")
    assert not a.answerable and not a.citations and not any(ch.isdigit() for ch in a.text)
