"""The page's HTML: escaping, highlighted spans, citation badges, labels (fast, no models)."""

from __future__ import annotations

import dataclasses
import re

from rag.types import Answer, Chunk, Citation, SearchHit
from ui.labels import EXAMPLES, LABELS, label
from ui.render import (
    answer_html,
    articles_html,
    highlight,
    model_markdown,
    sources_html,
    with_badges,
)

ARTICLE = "date 2024-06 Un <titolo>\n\n\n\nPrima frase. Putin & Kim hanno firmato l'accordo. Terza frase.\n\nFine."


def _chunk(start: int, end: int, number: int = 0, title: str = "Un <titolo>") -> Chunk:
    return Chunk(f"doc:{number}", "doc", number, title, "2024-06", None, start, end, ARTICLE[start:end])


def _answer(searched_for: str = "Chi ha firmato?") -> Answer:
    first = _chunk(0, ARTICLE.index("Fine."), 0)
    second = _chunk(ARTICLE.index("Fine."), len(ARTICLE), 1)
    qs = ARTICLE.index("Putin")
    qe = ARTICLE.index(" Terza")
    citation = Citation(
        number=1,
        doc_id="doc",
        title=first.title,
        date=first.date,
        chunk_id=first.chunk_id,
        quote=ARTICLE[qs:qe],
        start=qs,
        end=qe,
        chunk_start=first.start,
        chunk_end=first.end,
        passage=first.text,
    )
    return Answer(
        question="Chi ha firmato?",
        text="Putin e Kim <b>hanno</b> firmato [1].",
        language="it",
        answerable=True,
        citations=[citation],
        passages=[SearchHit(first, 0.9, 1, 0.91), SearchHit(second, 0.5, 2, 0.83)],
        backend="extractive",
        searched_for=searched_for,
        note="Una nota <importante>.",
    )


def test_highlight_escapes_and_marks_the_span() -> None:
    text = "a <b> & c"
    assert highlight(text, 2, 5) == "a <mark>&lt;b&gt;</mark> &amp; c"
    # A context span wraps the mark; out-of-range offsets are clamped, not crashing.
    assert highlight(text, 2, 5, context=(0, 7)) == '<span class="context">a <mark>&lt;b&gt;</mark> &amp;</span> c'
    assert "<mark>" in highlight(text, -3, 99)


def test_badges_keep_the_marker_visible_and_escape_the_rest() -> None:
    out = with_badges("<script>x</script> Fatto [1][2].")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert out.count('class="cite-badge"') == 2 and "[1]</span>" in out and "[2]</span>" in out


def test_sources_panel_highlights_the_cited_span_and_hides_uncited_passages() -> None:
    answer = _answer()
    html = sources_html(answer, lambda doc_id: ARTICLE, "it")
    # The cited span, escaped, inside <mark> (once in the passage, once in the article view).
    assert html.count("<mark>Putin &amp; Kim hanno firmato l&#x27;accordo.</mark>") == 2
    assert '<span class="cite-badge">[1]</span>' in html
    assert "<titolo>" not in html and "Un &lt;titolo&gt;" in html
    assert "Mostra nell&#x27;articolo" in html and 'class="in-article"' in html
    # The metadata first line is not repeated as passage text.
    assert "date 2024-06" not in html
    # The retrieved-but-uncited passage is in a collapsed secondary section.
    secondary = html[html.index('class="other-passages"') :]
    assert secondary.startswith('class="other-passages"><summary>') and "Fine." in secondary
    cited_passage = html.split('<div class="passage">')[1].split("</div>")[0]
    assert "Fine." not in cited_passage


def test_article_view_is_dropped_when_the_article_changed() -> None:
    html = sources_html(_answer(), lambda doc_id: "something else entirely", "en")
    assert "in-article" not in html and "<mark>" in html
    assert "in-article" not in sources_html(_answer(), lambda doc_id: None, "en")


def test_sources_panel_without_answer_or_citations() -> None:
    assert "Le fonti" in sources_html(None, lambda d: None, "it")
    answer = dataclasses.replace(_answer(), citations=[])
    assert label("en", "no_citations") in sources_html(answer, lambda d: ARTICLE, "en")


def test_answer_message_shows_rewritten_query_and_note() -> None:
    html = answer_html(_answer(searched_for="Chi ha firmato l'accordo di mutua difesa?"), "it")
    assert "Cercato: «Chi ha firmato l&#x27;accordo di mutua difesa?»" in html
    assert "&lt;b&gt;hanno&lt;/b&gt;" in html and "Una nota &lt;importante&gt;." in html
    assert 'title="Un &lt;titolo&gt;, 2024-06">[1]</span>' in html
    assert "Cercato" not in answer_html(_answer(searched_for="Chi ha firmato?"), "it")


def test_answer_message_shows_the_question_translation() -> None:
    answer = dataclasses.replace(_answer(searched_for="Chi ha firmato?"), translated_query="Who <signed>?")
    assert "Cercato: «Who &lt;signed&gt;?»" in answer_html(answer, "it")


def test_articles_description_and_model_info() -> None:
    docs = [{"doc_id": "d", "title": "A <b>", "date": None, "language": "it", "passages": 7}]
    html = articles_html(docs, "en")
    assert "A &lt;b&gt;" in html and "no date" in html and "7 passages" in html and "IT" in html
    assert label("it", "articles_none") in articles_html([], "it")
    assert "· 1 passaggio</li>" in articles_html([{**docs[0], "passages": 1}], "it")
    many = [{**docs[0], "title": f"Articolo {i}"} for i in range(1234)]
    html = articles_html(many, "it", shown=100)
    assert html.count("<li") == 101 and "Articolo 99<" in html and "Articolo 100<" not in html
    assert "…e altri 1.134 articoli" in html and "and 1,134 more" in articles_html(many, "en", shown=100)

    class S:
        class llm:  # a settings stand-in
            model_path = "/x/models/qwen.gguf"
            openai_base_url = "http://127.0.0.1:8000/v1"
            openai_model = "local-model"

        class embedding:
            model = "/x/models/multilingual-e5-small"

    assert "qwen.gguf" in model_markdown(S, "llamacpp", "en")
    assert "multilingual-e5-small" in model_markdown(S, "extractive", "en")
    assert "local-model" in model_markdown(S, "openai", "it")
    assert "nessun modello" in model_markdown(S, "extractive", "it")


def test_labels_exist_in_both_languages() -> None:
    assert LABELS["it"].keys() == LABELS["en"].keys()
    for lang in LABELS:
        for key, text in LABELS[lang].items():
            assert text.strip(), (lang, key)
            # Placeholders match across languages, so formatting never fails.
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", LABELS["en"][key]))
    assert any("'" in q or "Chi" in q for q in EXAMPLES) and any(q.startswith("Who") for q in EXAMPLES)


def test_only_the_answers_own_citation_numbers_become_badges() -> None:
    answer = _answer()
    html = with_badges("Quoted: «see note [7]» and the source [1].", answer.citations)
    assert html.count('class="cite-badge"') == 1 and "[7]" in html
    assert with_badges("draft [7]").count("cite-badge") == 1  # a streaming draft: the model's own markers


def test_server_paths_are_not_shown_to_visitors() -> None:
    from ui.render import error_html, public

    message = "The chat model file /work/main/models/x.gguf is missing."
    assert public(message) == "The chat model file x.gguf is missing."
    assert public("see http://host/a/b and 3/4") == "see http://host/a/b and 3/4"
    assert "/work" not in error_html("cannot read /work/main/index/chunks.jsonl", "en")


def test_each_cited_article_is_sent_once_with_all_its_quotes_marked() -> None:
    first = _answer().citations[0]
    at = ARTICLE.index("Fine.")
    second = dataclasses.replace(first, number=2, start=at, end=at + 5, quote="Fine.")
    two = dataclasses.replace(_answer(), citations=[first, second])
    html = sources_html(two, lambda doc_id: ARTICLE, "en")
    assert html.count('class="in-article"') == 1 and html.count('class="source-card"') == 2
    view = html[html.index('class="in-article"') :]
    assert "<mark>Putin &amp; Kim hanno firmato l&#x27;accordo.</mark>" in view and "<mark>Fine.</mark>" in view
