"""Hand-made cases for the pure scoring functions of ``rag eval``."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.gate import threshold_sweep
from evals.scoring import (
    ArticleVerdict,
    citation_precision_recall,
    contains_all_groups,
    contains_answer,
    dedupe_ranking,
    exact_match,
    gold_rank,
    language_ok,
    mean_reciprocal_rank,
    normalize_answer,
    passage_has_gold,
    recall_at_k,
    score_article_answer,
    strip_quotes,
    token_f1,
)


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("The Eiffel Tower!", "en", "eiffel tower"),
        ("  a   cat,  an apple ", "en", "cat apple"),
        ("La Commissione europea.", "it", "commissione europea"),
        ("dell' Europa", "it", "dell europa"),  # SQuAD-it's apostrophe quirk
        ("dell'Europa", "it", "dell europa"),
        ("l'accordo", "it", "accordo"),  # elided article dropped
        ("perché è così", "it", "perche e cosi"),  # accents folded
        ("Gli Stati Uniti e il Regno Unito", None, "stati uniti e regno unito"),
        ("1.000 dollari", "it", "1000 dollari"),
    ],
)
def test_normalize_answer(text: str, lang: str | None, expected: str) -> None:
    assert normalize_answer(text, lang) == expected


def test_exact_match() -> None:
    assert exact_match("the ESPN", ["ESPN"], "en") == 1.0
    assert exact_match("Il 1957.", ["nel 1957", "1957"], "it") == 1.0
    assert exact_match("1958", ["1957"], "en") == 0.0
    assert exact_match("anything", [], "en") == 0.0


def test_token_f1() -> None:
    # pred "radio corporation" vs gold "radio corporation of america": P=1, R=2/4
    assert token_f1("Radio Corporation", ["Radio Corporation of America"], "en") == pytest.approx(2 / 3)
    assert token_f1("la Commissione canadese", ["Commissione canadese per la radiotelevisione"], "it") == (
        pytest.approx(2 * 1 * 0.5 / 1.5)
    )
    # best gold wins
    assert token_f1("ESPN", ["ABC Sports", "ESPN"], "en") == 1.0
    assert token_f1("nothing shared", ["ESPN"], "en") == 0.0
    # articles only on both sides normalise to empty: equal
    assert token_f1("the", ["a"], "en") == 1.0
    assert token_f1("", ["ESPN"], "en") == 0.0


def test_contains_answer() -> None:
    assert contains_answer("Kim Jong-un presided over the ceremony [1].", ["Kim Jong-un"], "en") == 1.0
    assert contains_answer("Nel 1957 la ABC cambiò logo.", ["1957"], "it") == 1.0
    assert contains_answer("Nel 19570 la ABC cambiò logo.", ["1957"], "it") == 0.0  # whole words only
    assert contains_answer("anything", ["the"], "en") == 0.0  # an empty gold never matches


def test_ranking_metrics() -> None:
    ranked = dedupe_ranking(["p3", "p3", "p1", "p2", "p1"])
    assert ranked == ["p3", "p1", "p2"]
    assert gold_rank(ranked, "p1") == 2
    assert gold_rank(ranked, "p9") is None
    ranks = [1, 2, None, 5]
    assert recall_at_k(ranks, 1) == 0.25
    assert recall_at_k(ranks, 2) == 0.5
    assert recall_at_k(ranks, 5) == 0.75
    assert recall_at_k([], 5) == 0.0
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0 + 0.2) / 4)


def test_language_check_ignores_quotes() -> None:
    # The extractive engine quotes Italian passages inside English answers.
    answer = "From the articles (quoted in their original language): «Gli Stati Uniti accusano la Corea del Nord» [1]."
    assert strip_quotes(answer).strip().startswith("From the articles")
    assert "Corea" not in strip_quotes(answer)
    assert language_ok(answer, "en")
    assert not language_ok("Gli Stati Uniti accusano la Corea del Nord di fornire missili alla Russia.", "en")
    assert language_ok("Gli Stati Uniti accusano la Corea del Nord di fornire missili alla Russia [1].", "it")
    assert not language_ok("The United States accuse North Korea of sending missiles to Russia [1].", "it")
    # Names and numbers alone are language-neutral.
    assert language_ok("Kim Jong-un [1].", "en")
    assert language_ok("1957", "it")
    # A custom detector is used as given.
    assert not language_ok("one two three four", "it", detect=lambda _: "en")


def test_groups_and_gold() -> None:
    assert contains_all_groups("Putin and KIM stood there", [["putin"], ["kim"]])
    assert not contains_all_groups("Putin stood there", [["putin"], ["kim"]])
    assert contains_all_groups("Kim Jong Un", [["kim jong-un", "kim jong un"]])
    assert passage_has_gold("Ha inoltre criticato il \"ricatto\"\n occidentale.", 'criticato il "ricatto" occidentale')
    assert not passage_has_gold("ricatto occidentale", 'il "ricatto" occidentale')


def _score(**kw: object) -> ArticleVerdict:
    base: dict[str, object] = {
        "lang": "en",
        "unanswerable": False,
        "expect_any": [["north korea"]],
        "gold": "Gli Stati Uniti accusano la Corea del Nord",
        "answer_text": "The United States accuse North Korea of supplying missiles [1].",
        "answer_language": "en",
        "answerable": True,
        "cited_passages": ["Intanto, Gli Stati Uniti accusano la Corea del Nord di fornire missili."],
    }
    base.update(kw)
    return score_article_answer(**base)  # type: ignore[arg-type]


def test_article_scoring_answerable() -> None:
    v = _score()
    assert v.correct and v.failures() == [] and v.gold_citations == 1
    assert _score(answer_text="The United States accuse Pyongyang of supplying missiles [1].").failures() == ["facts"]
    assert _score(cited_passages=["Putin è arrivato a Pyongyang."]).failures() == ["citation"]
    assert _score(cited_passages=[]).failures() == ["citation"]
    wrong_lang = _score(
        answer_text="Gli Stati Uniti accusano la North Korea di fornire missili [1].", answer_language="it"
    )
    assert not wrong_lang.correct and "language" in wrong_lang.failures()


def test_article_scoring_unanswerable() -> None:
    refusal = "The available articles do not contain the answer to this question."
    ok = _score(unanswerable=True, gold=None, expect_any=[], answer_text=refusal, answerable=False, cited_passages=[])
    assert ok.correct and ok.refused
    cited = _score(unanswerable=True, gold=None, expect_any=[], answerable=True, cited_passages=["x"])
    assert not cited.correct
    italian = _score(
        unanswerable=True,
        gold=None,
        expect_any=[],
        answer_text="Gli articoli disponibili non contengono la risposta a questa domanda.",
        answer_language="it",
        answerable=False,
        cited_passages=[],
    )
    assert not italian.correct  # refused, but in the wrong language


def test_citation_precision_recall() -> None:
    good = _score()  # 1 citation, gold
    half = _score(cited_passages=["Gli Stati Uniti accusano la Corea del Nord.", "altro"])  # 2 citations, 1 gold
    miss = _score(cited_passages=["altro"])
    unans = _score(unanswerable=True, gold=None, expect_any=[], cited_passages=["x"])  # 1 wrong citation
    precision, recall = citation_precision_recall([(False, good), (False, half), (False, miss), (True, unans)])
    assert precision == pytest.approx(2 / 5)
    assert recall == pytest.approx(2 / 3)
    assert citation_precision_recall([]) == (1.0, 1.0)


def test_threshold_sweep() -> None:
    items = [
        (0.90, True, True),  # answerable, right
        (0.82, True, False),  # answerable, wrong
        (0.78, True, True),  # answerable, right but low score
        (0.80, False, False),  # unanswerable, pipeline would answer it
        (0.75, False, True),  # unanswerable, pipeline refuses anyway
    ]
    low, mid, high = threshold_sweep(items, [0.70, 0.79, 0.95])
    assert (low.answered_correctly, low.refused_wrongly, low.refused_rightly, low.answered_wrongly) == (2, 0, 1, 2)
    assert (mid.answered_correctly, mid.refused_wrongly, mid.refused_rightly, mid.answered_wrongly) == (1, 1, 1, 2)
    assert (high.answered_correctly, high.refused_wrongly, high.refused_rightly, high.answered_wrongly) == (0, 3, 2, 0)
    assert mid.right == 2


def _row(**kw: object) -> dict:
    base = {"id": "n01-q1", "lang": "it", "unanswerable": False, "correct": False, "answerable": True,
            "citations": [{"number": 1}], "failed": [], "refusal_reason": None, "seconds": 1.0}
    return {**base, **kw}


def test_news_errors_are_counted_by_kind_and_language() -> None:
    from evals.news import (
        CITATION_MISS,
        FALSE_REFUSAL,
        INVENTED,
        REFUSED_IN_WRONG_LANGUAGE,
        WRONG_FACT,
        WRONG_LANGUAGE,
        error_kind,
        summarize,
    )

    rows = [
        _row(correct=True),
        _row(answerable=False, citations=[], refusal_reason="no passage is relevant enough (0.70 < 0.76)"),
        _row(lang="en", failed=["facts", "citation"]),
        _row(lang="en", failed=["language"]),
        _row(failed=["citation"]),
        _row(unanswerable=True, answerable=True),
        _row(unanswerable=True, answerable=False, citations=[], lang="en"),
        _row(unanswerable=True, answerable=False, citations=[], correct=True),
    ]
    kinds = [error_kind(r) for r in rows]
    assert kinds == [None, FALSE_REFUSAL, WRONG_FACT, WRONG_LANGUAGE, CITATION_MISS, INVENTED,
                     REFUSED_IN_WRONG_LANGUAGE, None]
    s = summarize(rows)
    assert s["by_language"]["it"]["answerable_correct"] == 1 and s["by_language"]["it"]["answerable"] == 3
    assert s["by_language"]["all"]["unanswerable_refused"] == 1 and s["by_language"]["all"]["unanswerable"] == 3
    assert s["errors_by_language"]["en"] == {WRONG_FACT: 1, WRONG_LANGUAGE: 1, REFUSED_IN_WRONG_LANGUAGE: 1}
    assert s["false_refusal_causes"] == {"no passage is relevant enough": 1}


def test_news_questions_must_name_an_existing_article_file(tmp_path: Path) -> None:
    from evals.data import ArticleQuestion, EvalInputError
    from evals.news import evaluate_news
    from rag import Settings

    def run(q: ArticleQuestion) -> None:
        evaluate_news(Settings(home=tmp_path), [q], articles_dir=tmp_path, home=tmp_path / "h",
                      backends=["extractive"], thresholds=[0.7])

    with pytest.raises(EvalInputError, match="names no article"):
        run(ArticleQuestion("q1", "it", "Chi?", (("x",),), "x"))
    with pytest.raises(EvalInputError, match=r"no article file 42\.txt"):
        run(ArticleQuestion("q1", "it", "Chi?", (("x",),), "x", article="42"))
