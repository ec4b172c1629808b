"""HTML for the chat messages and the sources panel. Pure functions, no Gradio.

Everything that comes from articles, models or users is HTML-escaped here;
the only markup is ours. Citation markers ``[n]`` become badges that look
the same in the answer and in the sources panel, so a reader can match them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag import EXTRACTIVE, Answer, Citation, SearchHit
from rag.llm import describe_backend

from .labels import count, label

_MARKER = re.compile(r"\[(\d{1,3})\]")
# Articles separate paragraphs with runs of blank lines; two are enough on screen.
_BLANK_RUN = re.compile(r"\n{3,}")
# A metadata first line ("date 2024-06 Title") is shown as the card's title and date instead.
_META_LINE = re.compile(r"\s*date[ \t]+\d{4}(?:-\d{2}){0,2}[ \t]+[^\n]*\n\s*", re.IGNORECASE)

# Articles listed on the page; the rest are counted.
ARTICLES_SHOWN = 100


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _tidy(escaped: str) -> str:
    return _BLANK_RUN.sub("\n\n", escaped)


def badge(number: int, title: str | None = None) -> str:
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="cite-badge"{tip}>[{number}]</span>'


def with_badges(text: str, citations: Sequence[Citation] = ()) -> str:
    """Escaped ``text`` with every [n] marker turned into a badge (titled with its source)."""
    names = {c.number: f"{c.title}" + (f", {c.date}" if c.date else "") for c in citations}
    return _MARKER.sub(lambda m: badge(int(m.group(1)), names.get(int(m.group(1)))), esc(text))


def highlight(text: str, start: int, end: int, context: tuple[int, int] | None = None) -> str:
    """Escaped ``text`` with ``text[start:end]`` in <mark>, inside an optional context span."""
    n = len(text)
    cs, ce = context if context else (start, end)
    cs, ce = max(0, min(cs, n)), max(0, min(ce, n))
    start, end = max(cs, min(start, ce)), max(cs, min(end, ce))
    parts = [_tidy(esc(text[:cs]))]
    if context:
        parts.append('<span class="context">')
    parts += [
        _tidy(esc(text[cs:start])),
        f"<mark>{esc(text[start:end])}</mark>",
        _tidy(esc(text[end:ce])),
    ]
    if context:
        parts.append("</span>")
    parts.append(_tidy(esc(text[ce:])))
    return "".join(parts)


def _where(title: str, date: str | None, lang: str) -> str:
    when = esc(date or label(lang, "no_date"))
    return f'<span class="src-title">{esc(title)}</span> <span class="src-date">{when}</span>'


def _meta_end(text: str, keep_from: int) -> int:
    """Length of a leading metadata line of ``text``, if it ends before ``keep_from``."""
    meta = _META_LINE.match(text)
    return meta.end() if meta and meta.end() <= keep_from else 0


def _article_view(citation: Citation, article: str | None, lang: str) -> str:
    if article is None or article[citation.start : citation.end] != citation.quote:
        return ""  # the article changed or vanished: better no view than a wrong one
    skip = _meta_end(article, citation.start)
    body = highlight(
        article[skip:],
        citation.start - skip,
        citation.end - skip,
        context=(citation.chunk_start - skip, citation.chunk_end - skip),
    )
    return (
        f'<details class="in-article"><summary>{esc(label(lang, "show_in_article"))}</summary>'
        f'<div class="article-text">{body.lstrip()}</div></details>'
    )


def citation_card(citation: Citation, article: str | None, lang: str) -> str:
    passage = citation.passage
    quote_start = citation.start - citation.chunk_start
    skip = _meta_end(passage, quote_start)
    quote_end = citation.end - citation.chunk_start
    marked = highlight(passage[skip:], quote_start - skip, quote_end - skip).strip()
    return (
        f'<div class="source-card" id="source-{citation.number}">'
        f'<div class="source-head">{badge(citation.number)} {_where(citation.title, citation.date, lang)}</div>'
        f'<div class="passage">{marked}</div>'
        f"{_article_view(citation, article, lang)}"
        "</div>"
    )


def _secondary(hits: Sequence[SearchHit], lang: str) -> str:
    items = []
    for hit in hits:
        score = f" · {esc(label(lang, 'relevance'))} {hit.dense_score:.2f}" if hit.dense_score is not None else ""
        text = hit.text[_meta_end(hit.text, len(hit.text) - 1) :].strip()
        items.append(
            f'<div class="source-card secondary"><div class="source-head">{_where(hit.title, hit.date, lang)}'
            f'<span class="score">{score}</span></div>'
            f'<div class="passage">{_tidy(esc(text))}</div></div>'
        )
    return (
        f'<details class="other-passages"><summary>{esc(label(lang, "other_passages"))} ({len(hits)})</summary>'
        f"{''.join(items)}</details>"
    )


def sources_html(answer: Answer | None, article_text: Callable[[str], str | None], lang: str) -> str:
    """The sources panel for ``answer``: cited passages first, the other retrieved ones collapsed."""
    if answer is None:
        return f'<div class="sources-empty">{esc(label(lang, "sources_empty"))}</div>'
    parts = [f'<div class="sources-question">{esc(label(lang, "sources_for"))}: «{esc(answer.question)}»</div>']
    if not answer.citations:
        parts.append(f'<div class="sources-empty">{esc(label(lang, "no_citations"))}</div>')
    articles: dict[str, str | None] = {}
    for c in answer.citations:
        if c.doc_id not in articles:
            articles[c.doc_id] = article_text(c.doc_id)
        parts.append(citation_card(c, articles[c.doc_id], lang))
    cited = {c.chunk_id for c in answer.citations}
    uncited = [h for h in answer.passages if h.chunk_id not in cited]
    if uncited:
        parts.append(_secondary(uncited, lang))
    return f'<div class="sources">{"".join(parts)}</div>'


def answer_html(answer: Answer, lang: str) -> str:
    """The chat message of a final answer: text with badges, then what was searched and notes."""
    lines = [with_badges(answer.text, answer.citations)]
    meta = []
    rewritten = answer.searched_for and answer.searched_for.strip() != answer.question.strip()
    searched = [answer.searched_for] if rewritten else []
    searched += [answer.translated_query] if answer.translated_query else []
    if searched:
        wordings = " · ".join(f"«{esc(s)}»" for s in searched)
        meta.append(f'<span class="searched-for">{esc(label(lang, "searched_for"))}: {wordings}</span>')
    if answer.note:
        meta.append(f'<span class="answer-note">{esc(answer.note)}</span>')
    if meta:
        lines.append('<div class="answer-meta">' + "<br>".join(meta) + "</div>")
    return "\n".join(lines)


def draft_html(draft: str) -> str:
    """The answer as the model writes it (replaced by the validated answer at the end)."""
    return f'<span class="draft">{with_badges(draft)}</span>'


def error_html(message: str, lang: str) -> str:
    return f'<span class="chat-error"><b>{esc(label(lang, "error"))}:</b> {esc(message)}</span>'


def notice_html(message: str, ok: bool = True) -> str:
    return f'<span class="{"chat-notice" if ok else "chat-error"}">{esc(message)}</span>'


def articles_html(docs: Sequence[dict[str, Any]], lang: str, shown: int = ARTICLES_SHOWN) -> str:
    """A short description of the loaded articles: title, date, language, passage count
    (the first ``shown``; a store of thousands would make the page heavy)."""
    if not docs:
        return f'<div class="articles">{esc(label(lang, "articles_none"))}</div>'
    rows = []
    for d in docs[:shown]:
        facts = [
            esc(d.get("date") or label(lang, "no_date")),
            esc(str(d.get("language", "")).upper()),
            esc(count(lang, int(d.get("passages", 0)))),
        ]
        rows.append(f'<li><span class="src-title">{esc(d["title"])}</span> · {" · ".join(facts)}</li>')
    if len(docs) > shown:
        more = f"{len(docs) - shown:,}".replace(",", "." if lang == "it" else ",")
        rows.append(f'<li class="more">{esc(label(lang, "articles_more", n=more))}</li>')
    return f'<div class="articles"><ul>{"".join(rows)}</ul></div>'


def model_markdown(settings: Any, backend: str, lang: str) -> str:
    """Which models answer and search, for the settings panel."""
    model = label(lang, "model_none") if backend == EXTRACTIVE else f"`{describe_backend(backend, settings.llm)}`"
    embedding = Path(str(settings.embedding.model)).name
    return f"**{label(lang, 'model_in_use')}:** {model}  \n**{label(lang, 'embedding_model')}:** `{embedding}`"
