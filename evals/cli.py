"""``rag eval article|retrieval|answers|all``: quality numbers, printed and saved.

Registered by ``rag.cli`` through :func:`add_eval_parser`. Bad input files
raise ``EvalInputError`` (a ``RagError``): one message on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rag import ANSWER_ENGINES, EXTRACTIVE
from rag.config import Settings, load_settings
from rag.runtime import configure

from .data import (
    EvalInputError,
    Paragraph,
    SquadQuestion,
    load_article_questions,
    load_corpus,
    load_squad_questions,
)
from .retrieval import DEFAULT_METHODS, LANGS, METHOD_GROUPS, METHOD_LABELS, METHODS, expand_methods
from .settings import EvalSettings, eval_defaults, load_eval_settings


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable totals only")
    p.add_argument("--results", type=Path, default=None, help="report folder (default: results/)")
    p.add_argument("--cache", type=Path, default=None, help="eval index/embedding cache (default: .cache/eval/)")
    p.add_argument("--no-report", action="store_true", help="do not write the JSON/Markdown report")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")


def _squad_inputs(p: argparse.ArgumentParser, cfg: EvalSettings) -> None:
    p.add_argument("--corpus", type=Path, default=cfg.corpus, help="paragraphs, JSON lines (.gz ok)")
    p.add_argument("--questions", type=Path, default=cfg.squad_questions, help="SQuAD-it style questions")
    # Small slices for quick checks (CI); the default is everything.
    p.add_argument("--max-questions", type=_positive, default=None, help="first N questions only")
    p.add_argument("--max-paragraphs", type=_positive, default=None,
                   help="the questions' gold paragraphs plus distractors, N in all")


def _backends(p: argparse.ArgumentParser, default_help: str) -> None:
    p.add_argument(
        "--backend", action="append", choices=ANSWER_ENGINES, default=None, help=f"repeatable; {default_help}"
    )


def _hard_negatives(p: argparse.ArgumentParser, cfg: EvalSettings) -> None:
    p.add_argument(
        "--hard-negatives",
        action=argparse.BooleanOptionalAction,
        default=cfg.hard_negatives,
        help="also ask each question with its gold paragraph left out of the index (should be refused); "
        "gives the refusal-threshold trade-off on this set",
    )


def add_eval_parser(subparsers: Any) -> None:
    cfg = eval_defaults()
    ev = subparsers.add_parser("eval", help="measure answer and retrieval quality (writes results/)")
    sub = ev.add_subparsers(dest="eval_command", required=True)

    a = sub.add_parser("article", help="article QA through Assistant.ask, per backend")
    a.add_argument("file", nargs="?", type=Path, default=cfg.article_questions, help="questions (article_dev format)")
    a.add_argument("--docs", nargs="+", type=Path, default=None, help="articles to index (default: docs_store/)")
    _backends(a, "default: extractive and the configured backend")
    _common(a)
    a.set_defaults(func=cmd_article)

    n = sub.add_parser(
        "news", help="news QA: each article its own one-article corpus; per language and kind of error"
    )
    n.add_argument("file", nargs="?", type=Path, default=cfg.news_questions,
                   help="questions with an \"article\" field (news_dev.jsonl format)")
    n.add_argument("--articles", type=Path, default=None,
                   help="folder of the <article>.txt files (default: articles/ beside the questions)")
    n.add_argument("--only", nargs="+", default=None, metavar="ARTICLE", help="these articles' questions only")
    n.add_argument("--lang", choices=("it", "en"), default=None, help="questions in this language only")
    _backends(n, "default: the configured backend")
    _common(n)
    n.set_defaults(func=cmd_news)

    r = sub.add_parser("retrieval", help="recall@k and MRR on SQuAD-it, it→it and en→it, with baselines")
    _squad_inputs(r, cfg)
    r.add_argument("--methods", nargs="+", choices=[*METHODS, *METHOD_GROUPS], default=DEFAULT_METHODS,
                   help="methods or groups: baselines (default), embeddings (e5 vs EmbeddingGemma; "
                        "needs `rag setup --embedding embeddinggemma`)")
    r.add_argument("--cost", action="store_true",
                   help="also measure each embedding model's load time, passages/s, query latency and peak RAM")
    _common(r)
    r.set_defaults(func=cmd_retrieval)

    k = sub.add_parser("calibrate", help="carry the refusal and support thresholds over to another embedding model")
    _squad_inputs(k, cfg)
    k.add_argument("--english", type=Path, default=cfg.squad_english, help="English SQuAD v1.1 dev (.json.gz)")
    k.add_argument("--models", nargs="+", choices=["gemma", "gemma256"], default=["gemma", "gemma256"],
                   help="models to calibrate against the configured one")
    _common(k)
    k.set_defaults(func=cmd_calibrate)

    t = sub.add_parser("tune", help="the hybrid's weights for one embedding model, on SQuAD-it dev")
    _squad_inputs(t, cfg)
    t.add_argument("--method", choices=[m for m, (_, mode) in METHODS.items() if mode == "hybrid"],
                   default="hybrid-gemma-translated")
    _common(t)
    t.set_defaults(func=cmd_tune)

    w = sub.add_parser("answers", help="EM/F1, citations and language on a sample of SQuAD-it questions")
    _squad_inputs(w, cfg)
    w.add_argument("--n", type=_positive, default=cfg.answers_n, help=f"questions sampled (default {cfg.answers_n})")
    w.add_argument("--seed", type=int, default=cfg.seed)
    _hard_negatives(w, cfg)
    _backends(w, "default: the configured backend")
    _common(w)
    w.set_defaults(func=cmd_answers)

    al = sub.add_parser("all", help="article, retrieval and answers in one run")
    al.add_argument("--article", type=Path, default=cfg.article_questions, help="article questions file")
    al.add_argument("--docs", nargs="+", type=Path, default=None)
    _squad_inputs(al, cfg)
    al.add_argument("--n", type=_positive, default=cfg.answers_n)
    al.add_argument("--seed", type=int, default=cfg.seed)
    _hard_negatives(al, cfg)
    _backends(al, "default: extractive and the configured backend (article), the configured one (answers)")
    _common(al)
    al.set_defaults(func=cmd_all)


# --- shared plumbing -------------------------------------------------------------
class _Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg = load_eval_settings()
        self.settings: Settings = load_settings()
        configure(self.settings)  # offline flags and vocabularies, before any model loads
        self.results = self.settings.resolve(args.results or self.cfg.results_dir)
        self.cache = self.settings.resolve(args.cache or self.cfg.cache_dir)
        # Checked now, not after an hour of questions whose results could not be saved.
        _writable_folder(self.cache, "--cache")
        if not args.no_report:
            _writable_folder(self.results, "--results")
        self.progress = not args.quiet and sys.stderr.isatty()
        self.squad: tuple[list[Paragraph], list[SquadQuestion]] | None = None

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def backends(self, default: list[str]) -> list[str]:
        return list(dict.fromkeys(self.args.backend or default))

    def publish(self, section: str, payload: dict[str, Any]) -> None:
        if self.args.no_report:
            return
        from .report import publish, stamp

        paths = publish(self.results, section, stamp(payload))
        self.log("wrote " + ", ".join(str(p) for p in paths))


def _writable_folder(folder: Path, option: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise EvalInputError(f"{option} {folder}: cannot write there ({err.strerror or err}).") from err


def _thresholds(cfg: EvalSettings, chosen: float) -> list[float]:
    """The sweep's thresholds; a range that misses the configured threshold (another embedding
    model's cosine scale) is moved to centre on it."""
    low, high = cfg.sweep_from, cfg.sweep_to
    if not low <= chosen <= high:
        half = (high - low) / 2
        low, high = round(chosen - half, 4), round(chosen + half, 4)
    n = round((high - low) / cfg.sweep_step) + 1
    return [round(low + i * cfg.sweep_step, 4) for i in range(max(n, 1))]


# --- article -----------------------------------------------------------------------
def _article(ctx: _Ctx, file: Path) -> dict[str, Any]:
    from .article import evaluate_article

    questions = load_article_questions(file)
    docs = ctx.args.docs or [ctx.settings.docs_dir]
    backends = ctx.backends([EXTRACTIVE, ctx.settings.llm.backend])
    result = evaluate_article(
        ctx.settings,
        questions,
        docs=docs,
        home=ctx.cache / "article",
        backends=backends,
        thresholds=_thresholds(ctx.cfg, ctx.settings.retrieval.min_relevance),
        progress=ctx.progress,
        log=ctx.log,
    )
    payload = {"questions_file": str(file), **result}
    ctx.publish("article", payload)
    return payload


def _print_article(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        t = run["totals"]
        print(f"\nArticle QA — backend {run['backend']}")
        for q in run["questions"]:
            mark = "ok  " if q["correct"] else "FAIL"
            why = f" ({', '.join(q['failed'])})" if q["failed"] else ""
            used = f" [{q['backend_used']}{', fell back' if q['fell_back'] else ''}]"
            print(f"  {mark} {q['id']} {q['lang']} relevance {q['best_relevance']:.3f}{why}{used}  {q['question']}")
            print(f"       → {q['answer'][:160]}")
        print(
            f"  correct {t['correct']}/{t['questions']}  (answerable {t['answerable_correct']}/{t['answerable']}, "
            f"unanswerable refused {t['unanswerable_refused']}/{t['unanswerable']}); "
            f"citation precision {t['citation_precision']:.2f}, recall {t['citation_recall']:.2f}; "
            f"fell back {t['fell_back']}; {t['mean_seconds']:.1f}s/question"
        )
        _print_sweep(run["threshold"])


def _print_sweep(th: dict[str, Any]) -> None:
    print(f"  refusal threshold: chosen {th['chosen']:.3f}, best range here {th['best_range'][0]:.3f}–"
          f"{th['best_range'][1]:.3f}")
    print("    threshold  answered-correctly  refused-wrongly  refused-rightly  answered-wrongly")
    for p in th["sweep"]:
        mark = "  ← chosen" if abs(p["threshold"] - th["chosen"]) < 1e-9 else ""
        print(f"    {p['threshold']:9.3f}  {p['answered_correctly']:18d}  {p['refused_wrongly']:15d}  "
              f"{p['refused_rightly']:15d}  {p['answered_wrongly']:16d}{mark}")


def _article_totals(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        run["backend"]: {
            **run["totals"],
            "threshold": {k: run["threshold"][k] for k in ("chosen", "best_range")},
        }
        for run in payload["runs"]
    }


def cmd_article(args: argparse.Namespace) -> int:
    ctx = _Ctx(args)
    payload = _article(ctx, args.file)
    if args.json:
        print(json.dumps(_article_totals(payload), indent=2))
    else:
        _print_article(payload)
    return 0


# --- news -----------------------------------------------------------------------------
def _news(ctx: _Ctx, file: Path) -> dict[str, Any]:
    from .news import evaluate_news

    a = ctx.args
    questions = [
        q for q in load_article_questions(file)
        if (a.only is None or q.article in a.only) and (a.lang is None or q.lang == a.lang)
    ]
    if not questions:
        raise EvalInputError(f"{file}: no questions left after --only/--lang.")
    result = evaluate_news(
        ctx.settings,
        questions,
        articles_dir=a.articles or file.parent / "articles",
        home=ctx.cache / "news",
        backends=ctx.backends([ctx.settings.llm.backend]),
        thresholds=_thresholds(ctx.cfg, ctx.settings.retrieval.min_relevance),
        progress=ctx.progress,
        log=ctx.log,
    )
    payload = {"questions_file": str(file), "settings": _answer_settings(ctx.settings), **result}
    ctx.publish("news", payload)
    return payload


def _answer_settings(settings: Settings) -> dict[str, Any]:
    """The knobs that decide answers, recorded with the results."""
    return {"retrieval": settings.retrieval.model_dump(), "llm": settings.llm.model_dump(mode="json")}


def _print_news(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        s = run["summary"]
        print(f"\nNews QA — backend {run['backend']}, {len(payload['articles'])} one-article corpora")
        for q in run["questions"]:
            if q["error"]:
                why = f": {q['refusal_reason']}" if q["refusal_reason"] and not q["unanswerable"] else ""
                print(f"  FAIL {q['id']} {q['lang']} [{q['error']}{why}]  {q['question']}")
                print(f"       → {q['answer'][:200]}")
                if q["draft"] and not q["answerable"]:
                    print(f"       (the model wrote: {q['draft'][:200]})")
        print(f"  {'':5} {'answerable right':>18} {'unanswerable refused':>22}")
        for lang, t in s["by_language"].items():
            if t["answerable"] or t["unanswerable"]:
                print(f"  {lang:5} {t['answerable_correct']:>8}/{t['answerable']:<3} ({_pct(t['answerable_rate'])})"
                      f" {t['unanswerable_refused']:>10}/{t['unanswerable']:<3} ({_pct(t['unanswerable_rate'])})")
        print("  errors: " + (", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"))
        if s["false_refusal_causes"]:
            print("  false refusals by cause: " + ", ".join(f"{k} {v}" for k, v in s["false_refusal_causes"].items()))
        print(f"  median {s['median_seconds']:.1f}s per question")
        _print_sweep(run["threshold"])


def _pct(rate: float | None) -> str:
    return "  –  " if rate is None else f"{rate:5.1%}"


def cmd_news(args: argparse.Namespace) -> int:
    ctx = _Ctx(args)
    payload = _news(ctx, args.file)
    if args.json:
        print(json.dumps({r["backend"]: r["summary"] for r in payload["runs"]}, indent=2))
    else:
        _print_news(payload)
    return 0


# --- SQuAD-it inputs -------------------------------------------------------------------
def _squad(ctx: _Ctx) -> tuple[list[Paragraph], list[SquadQuestion]]:
    """Corpus and questions (the requested slice), loaded once per command."""
    if ctx.squad is None:
        from .retrieval import subset

        a = ctx.args
        corpus = load_corpus(a.corpus)
        questions = load_squad_questions(a.questions, corpus)
        ctx.squad = subset(corpus, questions, a.max_paragraphs, a.max_questions)
    return ctx.squad


# --- retrieval ---------------------------------------------------------------------
def _retrieval(ctx: _Ctx) -> dict[str, Any]:
    from .retrieval import evaluate_retrieval

    a = ctx.args
    corpus, questions = _squad(ctx)
    t = time.perf_counter()
    run = evaluate_retrieval(
        ctx.settings,
        corpus,
        questions,
        cache_dir=ctx.cache,
        methods=expand_methods(getattr(a, "methods", DEFAULT_METHODS)),  # `all` runs the baselines
        ks=ctx.cfg.ks,
        progress=ctx.progress,
        log=ctx.log,
    )
    payload = {
        "corpus": str(a.corpus),
        "questions_file": str(a.questions),
        "paragraphs": run.paragraphs,
        "chunks": run.chunks,
        "questions": run.questions,
        "table": run.table(),
        "labels": {m: METHOD_LABELS[m] for m in run.table()},
        "retrieval_settings": ctx.settings.retrieval.model_dump(),
        "chunking": ctx.settings.chunking.model_dump(),
        "embedding_model": ctx.settings.embedding.model,
        "timings": {**{k: round(v, 2) for k, v in run.timings.items()}, "total": round(time.perf_counter() - t, 2)},
        "ranks": {f"{r.method}/{r.lang}": {q["id"]: q["rank"] for q in r.per_question} for r in run.results},
    }
    if getattr(a, "cost", False):
        from .embedding_cost import measure_costs

        keys = [k for k in dict.fromkeys(METHODS[m][0] for m in expand_methods(a.methods)) if k != "minilm"]
        ctx.log(f"measuring the cost of {', '.join(keys)} (one process each)")
        payload["cost"] = measure_costs(keys, a.corpus, a.questions, ctx.cache)
    ctx.publish("retrieval", payload)
    return payload


def _print_retrieval(payload: dict[str, Any]) -> None:
    print(f"\nRetrieval: {payload['paragraphs']} paragraphs ({payload['chunks']} chunks), "
          f"{payload['questions']} questions × {len(LANGS)} languages")
    print(f"  {'method':<52} {'it R@1':>7} {'it R@5':>7} {'it MRR':>7} {'en R@1':>7} {'en R@5':>7} {'en MRR':>7}")
    for method, by_lang in payload["table"].items():
        cells = " ".join(f"{by_lang[lang][m]:7.3f}" for lang in LANGS for m in ("recall@1", "recall@5", "mrr"))
        print(f"  {payload['labels'][method]:<52} {cells}")
    print(f"  total {payload['timings']['total']:.0f}s")
    for key, c in payload.get("cost", {}).items():
        print(f"  cost {key}: " + ", ".join(f"{k} {v}" for k, v in c.items()))


def cmd_retrieval(args: argparse.Namespace) -> int:
    payload = _retrieval(_Ctx(args))
    if args.json:
        print(json.dumps(payload["table"], indent=2))
    else:
        _print_retrieval(payload)
    return 0


# --- thresholds per embedding model -------------------------------------------------
def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate

    ctx = _Ctx(args)
    corpus, questions = _squad(ctx)
    payload = calibrate(ctx.settings, corpus, questions, args.english, args.models,
                        cache_dir=ctx.cache, progress=ctx.progress, log=ctx.log)
    ctx.publish("calibration", payload)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(f"\nThresholds carried over ({payload['questions']} questions, {payload['pairs']} translation pairs)")
    for key, m in payload["models"].items():
        print(f"  {key:<9} min_relevance {m['min_relevance']:.3f}: answerable pass {m['answerable_pass']:.3f}, "
              f"off-topic refused {m['off_topic_refused']:.3f} | min_support {m['min_support']:.3f}: "
              f"true {m['true_supported']:.3f}, false {m['false_supported']:.3f}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .retrieval import tune_hybrid

    ctx = _Ctx(args)
    corpus, questions = _squad(ctx)
    rows = tune_hybrid(ctx.settings, corpus, questions, args.method, cache_dir=ctx.cache, ks=ctx.cfg.ks,
                       progress=ctx.progress, log=ctx.log)
    ctx.publish("tuning", {"method": args.method, "questions": len(questions), "rows": rows})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"\n{args.method}: best mean recall@5 first")
    for r in rows:
        print("  " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    return 0


# --- answers -----------------------------------------------------------------------
def _answers(ctx: _Ctx) -> dict[str, Any]:
    from .answers import evaluate_answers

    a = ctx.args
    corpus, questions = _squad(ctx)
    result = evaluate_answers(
        ctx.settings,
        corpus,
        questions,
        n=a.n,
        seed=a.seed,
        backends=ctx.backends([ctx.settings.llm.backend]),
        cache_dir=ctx.cache,
        hard_negatives=a.hard_negatives,
        thresholds=_thresholds(ctx.cfg, ctx.settings.retrieval.min_relevance),
        progress=ctx.progress,
        log=ctx.log,
    )
    payload = {"corpus": str(a.corpus), "questions_file": str(a.questions), **result}
    ctx.publish("answers", payload)
    return payload


def _print_answers(payload: dict[str, Any]) -> None:
    print(f"\nAnswers: {payload['sample']} SQuAD-it questions × {len(LANGS)} languages")
    print(f"  {'backend':<11} {'lang':<4} {'EM':>6} {'F1':>6} {'contains':>8} {'cit.prec':>8} {'cites gold':>10} "
          f"{'lang ok':>7} {'refused':>7} {'s/q':>6}")
    for run in payload["runs"]:
        for lang, t in [*run["by_language"].items(), ("all", run["totals"])]:
            if t.get("questions"):
                print(f"  {run['backend']:<11} {lang:<4} {t['exact_match']:6.3f} {t['f1']:6.3f} "
                      f"{t['contains_gold']:8.3f} {t['citation_precision']:8.3f} {t['cites_gold']:10.3f} "
                      f"{t['language_accuracy']:7.3f} "
                      f"{t['refused']:7d} {t['mean_seconds']:6.1f}")
    for run in payload["runs"]:
        if "hard_negatives" in run:
            h = run["hard_negatives"]["all"]
            print(f"\n  {run['backend']}: gold paragraph removed, {h['questions']} questions: refused {h['refused']}, "
                  f"answered with the gold answer from another paragraph {h['answered_with_gold']}, "
                  f"answered otherwise {h['answered_without_gold']}")
            _print_sweep(run["threshold"])


def _answers_totals(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        run["backend"]: {
            "all": run["totals"],
            **run["by_language"],
            **({"hard_negatives": run["hard_negatives"]} if "hard_negatives" in run else {}),
            "threshold": {k: run["threshold"][k] for k in ("chosen", "best_range")},
        }
        for run in payload["runs"]
    }


def cmd_answers(args: argparse.Namespace) -> int:
    payload = _answers(_Ctx(args))
    if args.json:
        print(json.dumps(_answers_totals(payload), indent=2))
    else:
        _print_answers(payload)
    return 0


# --- all -----------------------------------------------------------------------------
def cmd_all(args: argparse.Namespace) -> int:
    ctx = _Ctx(args)
    # Fail on a bad input file before the long runs start.
    load_article_questions(args.article)
    _squad(ctx)
    retrieval = _retrieval(ctx)
    article = _article(ctx, args.article)
    answers = _answers(ctx)
    if args.json:
        print(json.dumps(
            {"retrieval": retrieval["table"], "article": _article_totals(article), "answers": _answers_totals(answers)},
            indent=2,
        ))
    else:
        _print_retrieval(retrieval)
        _print_article(article)
        _print_answers(answers)
    return 0
