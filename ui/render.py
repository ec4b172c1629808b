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

from .labels import count, label, number

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


def badge(number: int, target: str | None = None, tip: str | None = None) -> str:
    """``[n]``; with ``target``, a link to that source card (the page's script scrolls to it and
    flashes it); ``tip`` shows on hover (the quoted words)."""
    title = f' title="{esc(tip)}"' if tip else ""
    if target:
        return f'<a class="cite-badge" href="#{target}"{title}>[{number}]</a>'
    return f'<span class="cite-badge"{title}>[{number}]</span>'


def card_id(prefix: str, number: int) -> str:
    return f"{prefix}-s{number}"


# A hover tip quotes this much of the cited span.
TIP_CHARS = 240


def _tip(citation: Citation) -> str:
    quote = " ".join(citation.quote.split())
    quote = quote if len(quote) <= TIP_CHARS else quote[: TIP_CHARS - 1] + "…"
    return f"«{quote}» — {citation.title}" + (f", {citation.date}" if citation.date else "")


def with_badges(text: str, citations: Sequence[Citation] | None = None, prefix: str | None = None) -> str:
    """Escaped ``text`` with its [n] markers as badges. Given the answer's ``citations``, only
    their numbers are badges (a "[7]" quoted from an article stays text), each showing its quote
    on hover and, given the answer's ``prefix``, linking to its source card."""
    cited = {c.number: c for c in citations or ()}

    def mark(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if citations is None:
            return badge(n)
        if n not in cited:
            return m.group(0)
        return badge(n, card_id(prefix, n) if prefix else None, _tip(cited[n]))

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


def citation_card(citation: Citation, article_view: str, lang: str, prefix: str = "a") -> str:
    passage = citation.passage
    quote_start = citation.start - citation.chunk_start
    skip = _meta_end(passage, quote_start)
    quote_end = citation.end - citation.chunk_start
    marked = highlight(passage[skip:], quote_start - skip, quote_end - skip).strip()
    return (
        f'<div class="source-card" id="{card_id(prefix, citation.number)}">'
        f'<div class="source-head">{badge(citation.number)} {_where(citation.title, citation.date, lang)}</div>'
        f'<div class="passage">{marked}</div>'
        f"{article_view}"
        "</div>"
    )


def _secondary(hits: Sequence[SearchHit], lang: str) -> str:
    items = []
    for hit in hits:
        text = hit.text[_meta_end(hit.text, len(hit.text) - 1) :].strip()
        items.append(
            f'<div class="source-card secondary"><div class="source-head">{_where(hit.title, hit.date, lang)}</div>'
            f'<div class="passage">{_tidy(esc(text))}</div></div>'
        )
    return (
        f'<details class="other-passages"><summary>{esc(label(lang, "other_passages"))} ({len(hits)})</summary>'
        f"{''.join(items)}</details>"
    )


def sources_block(
    answer: Answer, article_text: Callable[[str], str | None], lang: str, prefix: str, open_: bool = True
) -> str:
    """An answer's own sources, under it: the cited passages (cards its badges link to), then the
    other retrieved ones collapsed. Kept with the answer, so an earlier answer keeps its sources."""
    if not answer.citations:
        return ""
    cards: list[str] = []
    # Each cited article is sent once, in the card of its first citation, with all its quotes marked.
    shown: set[str] = set()
    for c in answer.citations:
        view = ""
        if c.doc_id not in shown:
            shown.add(c.doc_id)
            same = [x for x in answer.citations if x.doc_id == c.doc_id]
            view = _article_view(same, article_text(c.doc_id), lang)
        cards.append(citation_card(c, view, lang, prefix))
    cited = {c.chunk_id for c in answer.citations}
    uncited = [h for h in answer.passages if h.chunk_id not in cited and not answer.read_whole_corpus]
    if uncited:
        cards.append(_secondary(uncited, lang))
    summary = f"{label(lang, 'sources')} ({len(answer.citations)})"
    return (
        f'<details class="answer-sources"{" open" if open_ else ""}><summary>{esc(summary)}</summary>'
        f'{"".join(cards)}</details>'
    )


def details_block(answer: Answer, lang: str) -> str:
    """What the assistant did, for the curious: engine, search wordings, scores, reasons and
    timings — internals, so behind a toggle and not translated."""
    rows = [(label(lang, "answered_by"), answer.backend)]
    if answer.translated_query:
        rows.append((label(lang, "translated_query"), answer.translated_query))
    if answer.relevance is not None:
        rows.append((label(lang, "relevance"), f"{answer.relevance:.2f}"))
    for name, reason in (("refusal_reason", answer.refusal_reason), ("fallback_reason", answer.fallback_reason)):
        if reason:
            rows.append((label(lang, name), public(reason)))
    if answer.note and not answer.fell_back:
        rows.append((label(lang, "note"), public(answer.note)))
    timings = " · ".join(f"{k} {v:.1f}s" for k, v in answer.timings.items())
    if timings:
        rows.append((label(lang, "timings"), timings))
    body = "".join(f"<div><b>{esc(k)}:</b> {esc(v)}</div>" for k, v in rows)
    return f'<details class="answer-details"><summary>{esc(label(lang, "details"))}</summary>{body}</details>'


def shows_rewrite(answer: Answer) -> bool:
    """Whether the searched-for wording is worth showing: the model rewrote the follow-up and the
    rewrite passed its checks. (Without a usable rewrite the pipeline searches the previous
    question joined to this one, which holds this question verbatim: not shown.)"""
    searched, question = answer.searched_for.strip(), answer.question.strip()
    return bool(searched) and searched != question and question not in searched


def answer_html(
    answer: Answer,
    lang: str,
    article_text: Callable[[str], str | None] = lambda doc_id: None,
    prefix: str = "a",
    open_sources: bool = True,
) -> str:
    """The chat message of a final answer: text with linked badges, what was searched (when
    rewritten), a fallback notice, the answer's own sources, and the details toggle."""
    lines = [f'<div class="answer-text">{with_badges(answer.text, answer.citations, prefix)}</div>']
    meta = []
    if shows_rewrite(answer):
        searched = f"{label(lang, 'searched_for')}: «{answer.searched_for}»"
        meta.append(f'<span class="searched-for">{esc(searched)}</span>')
    if answer.fell_back:
        meta.append(f'<span class="answer-note">{esc(label(lang, "fell_back_note"))}</span>')
    if meta:
        lines.append('<div class="answer-meta">' + "<br>".join(meta) + "</div>")
    lines.append(sources_block(answer, article_text, lang, prefix, open_sources))
    lines.append(details_block(answer, lang))
    return "".join(lines)


def stage_html(name: str, elapsed: float, lang: str, passages: int = 0) -> str:
    """The step under way, with a ticking elapsed time (the page's script counts on from the
    ``datetime`` duration until the next update; the chat's sanitizer drops data- attributes)."""
    text = label(lang, f"stage_{name}", passages=count(lang, passages))
    return (
        f'<div class="stage" role="status"><span class="spinner" aria-hidden="true"></span> {esc(text)} '
        f'<time class="elapsed" datetime="PT{elapsed:.1f}S">{elapsed:.0f} s</time></div>'
    )


def progress_html(draft: str, stage: str) -> str:
    """The answer being prepared: the draft so far (replaced by the validated answer at the
    end), with the current stage under it."""
    text = f'<div class="draft">{with_badges(draft)}</div>' if draft else ""
    return f'<div class="thinking">{text}{stage}</div>'


def stopped_html(draft: str, lang: str) -> str:
    """An answer stopped by the reader: what was written so far (uncited, unchecked), marked."""
    text = f'<div class="draft stopped-draft">{esc(draft)}</div>' if draft.strip() else ""
    return f'{text}<span class="stopped">{esc(label(lang, "stopped"))}</span>'


def _technical(details: str | None, lang: str) -> str:
    """The technical text (English), if any, behind the "details" toggle."""
    if not details:
        return ""
    summary = f'<summary>{esc(label(lang, "details"))}</summary>'
    return f'<details class="error-details">{summary}{esc(public(details))}</details>'


def error_html(message: str, details: str | None = None, *, lang: str) -> str:
    """An error in the page's language; the technical text, if any, behind a toggle."""
    prefix = f'<b>{esc(label(lang, "error"))}:</b>'
    return f'<div class="chat-error">{prefix} {esc(message)}{_technical(details, lang)}</div>'


def notice_html(message: str, ok: bool = True, details: str | None = None, *, lang: str = "en") -> str:
    kind = "chat-notice" if ok else "chat-error"
    return f'<div class="{kind}">{esc(public(message))}{_technical(details, lang)}</div>'


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
        rows.append(f'<li class="more">{esc(label(lang, "articles_more", n=number(lang, len(docs) - shown)))}</li>')
    return f'<div class="articles"><ul>{"".join(rows)}</ul></div>'


def model_markdown(settings: Any, backend: str, lang: str) -> str:
    """Which models answer and search, for the settings panel."""
    model = label(lang, "model_none") if backend == EXTRACTIVE else f"`{describe_backend(backend, settings.llm)}`"
    embedding = Path(str(settings.embedding.model)).name
    return f"**{label(lang, 'model_in_use')}:** {model}  \n**{label(lang, 'embedding_model')}:** `{embedding}`"
