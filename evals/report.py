"""Reports: one JSON file per benchmark, a combined Markdown page and a recall@k plot.

Layout under the results folder (``results/`` by default)::

    eval-retrieval.json  eval-article.json  eval-answers.json
    eval-report.md       recall_at_k.png

Each ``rag eval`` subcommand rewrites its own JSON; the Markdown page is then
rebuilt from whichever JSON files exist, so it always shows the latest numbers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

SECTIONS = ("retrieval", "article", "answers")
PLOT = "recall_at_k.png"
MARKDOWN = "eval-report.md"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **payload}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def save_section(results_dir: Path, section: str, payload: dict[str, Any]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"eval-{section}.json"
    _write(path, json.dumps(payload, ensure_ascii=False, indent=2))
    return path


def load_sections(results_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for s in SECTIONS:
        p = results_dir / f"eval-{s}.json"
        if p.exists():
            try:
                out[s] = json.loads(p.read_text("utf-8"))
            except ValueError:
                continue  # a damaged old report is simply not shown
    return out


# --- plot ---------------------------------------------------------------------
def plot_recall(results_dir: Path, retrieval: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lang in zip(axes, ("it", "en"), strict=True):
        for method, by_lang in retrieval["table"].items():
            curve = by_lang.get(lang, {})
            ks = sorted(int(k.split("@")[1]) for k in curve if k.startswith("recall@"))
            ax.plot(ks, [curve[f"recall@{k}"] for k in ks], marker="o", label=retrieval["labels"].get(method, method))
        ax.set_title({"it": "Italian → Italian", "en": "English → Italian"}[lang])
        ax.set_xlabel("k (paragraphs)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall@k")
    axes[0].set_ylim(0, 1.0)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"SQuAD-it retrieval: {retrieval['paragraphs']} paragraphs, {retrieval['questions']} questions")
    fig.tight_layout()
    path = results_dir / PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- markdown -------------------------------------------------------------------
def retrieval_table(retrieval: dict[str, Any]) -> str:
    lines = [
        "| method | it R@1 | it R@5 | it MRR | en→it R@1 | en→it R@5 | en→it MRR |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, by_lang in retrieval["table"].items():
        cells = [f"{by_lang[lang][m]:.3f}" for lang in ("it", "en") for m in ("recall@1", "recall@5", "mrr")]
        lines.append(f"| {retrieval['labels'].get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _retrieval_md(r: dict[str, Any]) -> list[str]:
    timing = ", ".join(f"{k} {v:.0f}s" for k, v in r.get("timings", {}).items() if v >= 1)
    return [
        "## Retrieval (SQuAD-it)",
        "",
        f"{r['paragraphs']} Italian paragraphs ({r['chunks']} chunks), {r['questions']} questions asked in "
        "Italian and in English; a paragraph counts at the rank of its best chunk. MRR is cut at rank 10.",
        "",
        retrieval_table(r),
        "",
        f"![recall@k]({PLOT})",
        "",
        f"Run on {r['machine']['cpus']} CPUs, {r['date']}; {timing}.",
        "",
        *_cost_md(r.get("cost")),
    ]


def _cost_md(cost: dict[str, Any] | None) -> list[str]:
    """Each embedding model's cost on this machine (``rag eval retrieval --cost``)."""
    if not cost:
        return []
    out = ["### Cost per embedding model", "",
           "| model | dim | load s | ingest passages/s | query p50 ms | query p95 ms | vectors MB / 1k passages "
           "| peak RAM MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, c in cost.items():
        if "error" in c:
            out.append(f"| {key} | failed: {c['error']} |||||||")
            continue
        out.append(f"| {c['model_id']} | {c['dim']} | {c['load_s']:.1f} | {c['passages_per_s']:.1f} "
                   f"| {c['query_p50_ms']} | {c['query_p95_ms']} | {c['vectors_mb_per_1k_passages']:.2f} "
                   f"| {c['peak_rss_mb']} |")
    return [*out, "", "Query latency: the product's retriever with the real model, one question at a time "
            "(no translation), over the whole corpus; each model measured in its own process.", ""]


def _tuning_md(t: dict[str, Any]) -> list[str]:
    rows = t["rows"]
    keys = list(rows[0]) if rows else []
    out = [f"## Hybrid weights for {t['method']} (SQuAD-it dev, {t['questions']} questions)", "",
           "| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys)]
    out += ["| " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |" for r in rows]
    return [*out, ""]


def _calibration_md(c: dict[str, Any]) -> list[str]:
    out = ["## Thresholds per embedding model (SQuAD-it dev)", "",
           f"{c['questions']} dev questions in both languages; {c['pairs']} English/Italian answer-sentence pairs. "
           "Each model's thresholds let through the same share as e5's hand-set ones (evals/calibrate.py).", "",
           "| model | min_relevance | answerable pass | off-topic refused | min_support | true pairs supported "
           "| best wrong sentence supported |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in c["models"].values():
        out.append(f"| {m['model_id']} | {m['min_relevance']:.3f} | {m['answerable_pass']:.3f} "
                   f"| {m['off_topic_refused']:.3f} | {m['min_support']:.3f} | {m['true_supported']:.3f} "
                   f"| {m['false_supported']:.3f} |")
    return [*out, ""]


def _article_md(a: dict[str, Any]) -> list[str]:
    out = ["## Article QA", ""]
    out += [
        "| backend | correct | answerable right | unanswerable refused | citation precision | citation recall "
        "| fell back | s/question |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in a["runs"]:
        t = run["totals"]
        out.append(
            f"| {run['backend']} | {t['correct']}/{t['questions']} | {t['answerable_correct']}/{t['answerable']} "
            f"| {t['unanswerable_refused']}/{t['unanswerable']} | {t['citation_precision']:.2f} "
            f"| {t['citation_recall']:.2f} | {t['fell_back']} | {t['mean_seconds']:.1f} |"
        )
    for run in a["runs"]:
        out += ["", f"### {run['backend']}: per question", "", "| id | lang | ok | failed | relevance | answer |",
                "|---|---|---|---|---:|---|"]
        for q in run["questions"]:
            answer = q["answer"].replace("|", "\\|").replace("\n", " ")
            answer = answer if len(answer) <= 140 else answer[:137] + "…"
            out.append(
                f"| {q['id']} | {q['lang']} | {'✅' if q['correct'] else '❌'} | {', '.join(q['failed'])} "
                f"| {q['best_relevance']:.3f} | {answer} |"
            )
        out += _sweep_md(run["threshold"])
    out.append("")
    return out


def _news_md(n: dict[str, Any]) -> list[str]:
    out = ["## News QA (one-article corpora)", "", f"{len(n['articles'])} articles, questions from "
           f"`{n['questions_file']}`.", ""]
    out += ["| backend | lang | answerable right | unanswerable refused |", "|---|---|---:|---:|"]
    for run in n["runs"]:
        for lang, t in run["summary"]["by_language"].items():
            out.append(f"| {run['backend']} | {lang} | {t['answerable_correct']}/{t['answerable']} "
                       f"| {t['unanswerable_refused']}/{t['unanswerable']} |")
    for run in n["runs"]:
        s = run["summary"]
        out += ["", f"### {run['backend']}: errors by kind", "", "| kind | it | en | all |", "|---|---:|---:|---:|"]
        for kind, count in s["errors"].items():
            per = [s["errors_by_language"].get(lang, {}).get(kind, 0) for lang in ("it", "en")]
            out.append(f"| {kind} | {per[0]} | {per[1]} | {count} |")
        if s["false_refusal_causes"]:
            out += ["", "False refusals by cause: "
                    + "; ".join(f"{k}: {v}" for k, v in s["false_refusal_causes"].items()) + "."]
        out += ["", "| id | lang | error | answer |", "|---|---|---|---|"]
        for q in run["questions"]:
            if q["error"]:
                answer = q["answer"].replace("|", "\\|").replace("\n", " ")
                answer = answer if len(answer) <= 140 else answer[:137] + "…"
                out.append(f"| {q['id']} | {q['lang']} | {q['error']} | {answer} |")
        out += _sweep_md(run["threshold"])
    out.append("")
    return out


def _sweep_md(th: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"Refusal threshold (`retrieval.min_relevance`): chosen {th['chosen']:.3f}; best range on this set "
        f"{th['best_range'][0]:.3f}–{th['best_range'][1]:.3f}.",
        "",
        "| threshold | answered correctly | refused wrongly | refused rightly | answered wrongly |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in th["sweep"]:
        mark = " ←" if abs(p["threshold"] - th["chosen"]) < 1e-9 else ""
        out.append(
            f"| {p['threshold']:.3f}{mark} | {p['answered_correctly']} | {p['refused_wrongly']} "
            f"| {p['refused_rightly']} | {p['answered_wrongly']} |"
        )
    return out


def _answers_md(a: dict[str, Any]) -> list[str]:
    out = [
        "## Answers (SQuAD-it sample)",
        "",
        f"{a['sample']} dev questions (seed {a['seed']}), each asked in Italian and English, answered over all "
        f"{a['paragraphs']} paragraphs. EM/F1 against the gold answers in the question's language.",
        "",
        "| backend | lang | EM | F1 | contains gold | citation precision | cites gold | gold retrieved | language ok "
        "| refused | s/question |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in a["runs"]:
        for lang, t in [*run["by_language"].items(), ("all", run["totals"])]:
            if not t.get("questions"):
                continue
            out.append(
                f"| {run['backend']} | {lang} | {t['exact_match']:.3f} | {t['f1']:.3f} | {t['contains_gold']:.3f} "
                f"| {t['citation_precision']:.3f} "
                f"| {t['cites_gold']:.3f} | {t['gold_retrieved']:.3f} | {t['language_accuracy']:.3f} | {t['refused']} "
                f"| {t['mean_seconds']:.1f} |"
            )
    if a.get("hard_negatives"):
        out += [
            "",
            "### Gold paragraph removed",
            "",
            "Each question asked again with its gold paragraph left out of the index (the rest of its article "
            "stays): the right outcome is a refusal, or the gold answer found in another paragraph.",
            "",
            "| backend | lang | questions | refused | answered with the gold answer | answered otherwise |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for run in a["runs"]:
            for lang, h in run["hard_negatives"].items():
                out.append(
                    f"| {run['backend']} | {lang} | {h['questions']} | {h['refused']} | {h['answered_with_gold']} "
                    f"| {h['answered_without_gold']} |"
                )
        for run in a["runs"]:
            out += ["", f"#### {run['backend']}: refusal threshold, both sets",
                    "", "Answered correctly = the answer contains the gold answer."]
            out += _sweep_md(run["threshold"])
    out.append("")
    return out


def write_markdown(results_dir: Path) -> Path:
    sections = load_sections(results_dir)
    lines = ["# Evaluation report", "", "Generated by `rag eval`; each section shows its latest run.", ""]
    for name, render in (
        ("retrieval", _retrieval_md), ("tuning", _tuning_md), ("calibration", _calibration_md),
        ("article", _article_md), ("news", _news_md), ("answers", _answers_md),
    ):
        if name in sections:
            try:
                lines += render(sections[name])
            except (KeyError, TypeError, ValueError):  # a report written by an older version
                lines += [f"## {name}", "", f"(outdated report format: rerun `rag eval {name}`)", ""]
    path = results_dir / MARKDOWN
    results_dir.mkdir(parents=True, exist_ok=True)
    _write(path, "\n".join(lines))
    return path


def publish(results_dir: Path, section: str, payload: dict[str, Any]) -> list[Path]:
    """Save one section (JSON, plot for retrieval) and rebuild the Markdown page."""
    paths = [save_section(results_dir, section, payload)]
    if section == "retrieval":
        paths.append(plot_recall(results_dir, payload))
    paths.append(write_markdown(results_dir))
    return paths
