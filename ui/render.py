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


def with_badges(text: str, citations: Sequence[Citation] | None = None) -> str:
    """Escaped ``text`` with its [n] markers as badges (titled with their source). Given the
    answer's ``citations``, only their numbers are badges: a "[7]" quoted from an article stays text."""
    names = {c.number: f"{c.title}" + (f", {c.date}" if c.date else "") for c in citations or ()}

    def mark(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return badge(n, names.get(n)) if citations is None or n in names else m.group(0)

    return _MARKER.sub(mark, esc(text))


# Absolute paths of this machine ("/home/x/models/y.gguf") in messages: visitors see the file name.
_SERVER_PATH = re.compile(r"(?<![\w:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")


def public(message: str) -> str:
    """``message`` without the server's folders (a fallback reason may name a model file)."""
    return _SERVER_PATH.sub(r"\1", message)


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


def _marked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Escaped ``text`` with each span (overlapping ones merged) in <mark>."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts, at = [], 0
    for start, end in merged:
        parts += [_tidy(esc(text[at:start])), f"<mark>{esc(text[start:end])}</mark>"]
        at = end
    return "".join([*parts, _tidy(esc(text[at:]))])


def _article_view(citations: Sequence[Citation], article: str | None, lang: str) -> str:
    """The whole article once, with every span these citations quote from it marked."""
    if article is None:
        return ""
    # A citation whose quote is no longer at its place: the article changed; better no mark than a wrong one.
    valid = [c for c in citations if article[c.start : c.end] == c.quote]
    if not valid:
        return ""
    skip = _meta_end(article, min(c.start for c in valid))
    if len(valid) == 1:  # the cited passage around the quote is shaded too
        c = valid[0]
        body = highlight(
            article[skip:], c.start - skip, c.end - skip, context=(c.chunk_start - skip, c.chunk_end - skip)
        )
    else:
        body = _marked(article[skip:], [(c.start - skip, c.end - skip) for c in valid])
    return (
        f'<details class="in-article"><summary>{esc(label(lang, "show_in_article"))}</summary>'
        f'<div class="article-text">{body.lstrip()}</div></details>'
    )


def citation_card(citation: Citation, article_view: str, lang: str) -> str:
    passage = citation.passage
    quote_start = citation.start - citation.chunk_start
    skip = _meta_end(passage, quote_start)
    quote_end = citation.end - citation.chunk_start
    marked = highlight(passage[skip:], quote_start - skip, quote_end - skip).strip()
    return (
        f'<div class="source-card" id="source-{citation.number}">'
        f'<div class="source-head">{badge(citation.number)} {_where(citation.title, citation.date, lang)}</div>'
        f'<div class="passage">{marked}</div>'
        f"{article_view}"
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
    # Each cited article is sent once, in the card of its first citation, with all its quotes marked.
    shown: set[str] = set()
    for c in answer.citations:
        view = ""
        if c.doc_id not in shown:
            shown.add(c.doc_id)
            same = [x for x in answer.citations if x.doc_id == c.doc_id]
            view = _article_view(same, article_text(c.doc_id), lang)
        parts.append(citation_card(c, view, lang))
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
        meta.append(f'<span class="answer-note">{esc(public(answer.note))}</span>')
    if meta:
        lines.append('<div class="answer-meta">' + "<br>".join(meta) + "</div>")
    return "\n".join(lines)


def draft_html(draft: str) -> str:
    """The answer as the model writes it (replaced by the validated answer at the end)."""
    return f'<span class="draft">{with_badges(draft)}</span>'


def error_html(message: str, lang: str) -> str:
    return f'<span class="chat-error"><b>{esc(label(lang, "error"))}:</b> {esc(public(message))}</span>'


def notice_html(message: str, ok: bool = True) -> str:
    return f'<span class="{"chat-notice" if ok else "chat-error"}">{esc(public(message))}</span>'


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
