"""The page's HTML: escaping, highlighted spans, citation badges, labels (fast, no models)."""

from __future__ import annotations

import dataclasses
import re

from rag.errors import DocumentError, InvalidQuestionError
from rag.types import Answer, Chunk, Citation, SearchHit
from ui.labels import EXAMPLES, LABELS, error_text, label
from ui.render import (
    answer_html,
    articles_html,
    highlight,
    model_markdown,
    sources_block,
    stage_html,
    stopped_html,
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


def test_sources_highlight_the_cited_span_and_hide_uncited_passages() -> None:
    answer = _answer()
    html = sources_block(answer, lambda doc_id: ARTICLE, "it", "a3")
    # The cited span, escaped, inside <mark> (once in the passage, once in the article view).
    assert html.count("<mark>Putin &amp; Kim hanno firmato l&#x27;accordo.</mark>") == 2
    assert '<span class="cite-badge">[1]</span>' in html
    # The card has this answer's own id (its badges link there); open under the newest answer.
    assert 'id="a3-s1"' in html and html.startswith('<details class="answer-sources" open><summary>Fonti (1)')
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
    html = sources_block(_answer(), lambda doc_id: "something else entirely", "en", "a1")
    assert "in-article" not in html and "<mark>" in html
    assert "in-article" not in sources_block(_answer(), lambda doc_id: None, "en", "a1")


def test_an_answer_without_citations_has_no_sources_block() -> None:
    answer = dataclasses.replace(_answer(), citations=[])
    assert sources_block(answer, lambda d: ARTICLE, "en", "a1") == ""


def test_answer_message_links_badges_to_its_cards_and_keeps_internals_in_details() -> None:
    html = answer_html(_answer(searched_for="Chi ha firmato l'accordo di mutua difesa?"), "it", lambda d: ARTICLE, "a2")
    assert "Cercato: «Chi ha firmato l&#x27;accordo di mutua difesa?»" in html
    assert "&lt;b&gt;hanno&lt;/b&gt;" in html
    # The badge links to this answer's card and shows the quoted words on hover.
    badge = re.search(r'<a class="cite-badge" href="#a2-s1" title="([^"]*)">\[1\]</a>', html)
    assert badge and "Putin &amp; Kim hanno firmato" in badge.group(1) and 'id="a2-s1"' in html
    # Internals (note, engine, relevance) only inside the details toggle.
    details = html[html.index('<details class="answer-details">') :]
    assert "Una nota &lt;importante&gt;." in details and "extractive" in details
    assert "Una nota" not in html[: html.index('<details class="answer-details">')]
    assert "Cercato" not in answer_html(_answer(searched_for="Chi ha firmato?"), "it")


def test_a_rewrite_that_failed_its_checks_is_not_shown() -> None:
    # Without a usable rewrite, the previous question is searched joined to this one.
    joined = _answer(searched_for="Chi ha firmato l'accordo? Chi ha firmato?")
    assert "Cercato" not in answer_html(joined, "it")


def test_the_question_translation_is_a_detail() -> None:
    answer = dataclasses.replace(_answer(searched_for="Chi ha firmato?"), translated_query="Who <signed>?")
    html = answer_html(answer, "it")
    assert "Who &lt;signed&gt;?" in html[html.index('<details class="answer-details">') :]
    assert "Cercato:" not in html


def test_stages_and_stopped_answers() -> None:
    html = stage_html("reading", 3.46, "it", passages=7)
    assert "Leggo 7 passaggi…" in html and 'datetime="PT3.5S"' in html and 'role="status"' in html
    assert "Searching the articles…" in stage_html("searching", 0.0, "en")
    assert "Leggo 1 passaggio…" in stage_html("reading", 1.0, "it", passages=1)
    stopped = stopped_html("Putin <b>", "en")
    assert "Putin &lt;b&gt;" in stopped and label("en", "stopped") in stopped


def test_errors_are_said_in_the_pages_language() -> None:
    err = InvalidQuestionError("The question is 5,000 characters long", code="question_too_long",
                               chars=5000, limit=2000)
    text, details = error_text(err, "it")
    assert text.startswith("La domanda è lunga 5.000 caratteri; il limite è 2.000") and details is None
    binary = DocumentError("x/rotto.txt: looks like a binary file", code="binary", name="rotto.txt")
    assert error_text(binary, "en")[0] == "“rotto.txt” looks like a binary file, not a text article."
    # An error with no wording of its own: a general sentence, the English text as the detail.
    text, details = error_text(DocumentError("disk on fire"), "it")
    assert text == label("it", "err_generic") and details == "disk on fire"


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
    assert "/work" not in error_html("x", "cannot read /work/main/index/chunks.jsonl", lang="en")


def test_each_cited_article_is_sent_once_with_all_its_quotes_marked() -> None:
    first = _answer().citations[0]
    at = ARTICLE.index("Fine.")
    second = dataclasses.replace(first, number=2, start=at, end=at + 5, quote="Fine.")
    two = dataclasses.replace(_answer(), citations=[first, second])
    html = sources_block(two, lambda doc_id: ARTICLE, "en", "a1")
    assert html.count('class="in-article"') == 1 and html.count('class="source-card"') == 2
    view = html[html.index('class="in-article"') :]
    assert "<mark>Putin &amp; Kim hanno firmato l&#x27;accordo.</mark>" in view and "<mark>Fine.</mark>" in view
