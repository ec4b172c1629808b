"""Retrieval benchmark: index build time, warm search latency, cold `rag search`, recall.

    .venv/bin/python benchmarks/retrieval_bench.py [--queries 200] [--cold-runs 3] [--rebuild]

- Build time of the seed-article index (private temporary home) and of the
  2,010 SQuAD-it paragraphs (chunk + embed). The SQuAD embeddings are the eval
  cache (``.cache/eval/``): the first run measures a full build and records it;
  later runs reuse the vectors and show the recorded full-build time
  (``--rebuild`` measures again).
- Warm search latency p50/p95 (query embedding + dense + BM25 + sentence
  re-score) over distinct SQuAD-it dev questions, Italian and English, on the
  SQuAD index and on the seed-article index.
- Cold CLI: wall time of ``rag search "…"`` as a new process over the seed index.
- Recall@1/@5 (and MRR) on SQuAD-it, it→it and en→it, every method (as ``rag eval retrieval``).

Prints a table and writes ``results/retrieval_bench.json``. The repo's own
docs_store/ and index/ are never written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evals.data import (  # noqa: E402
    load_corpus,
    load_squad_questions,
)
from evals.retrieval import build_index, cache_path, chunk_corpus, evaluate_retrieval  # noqa: E402
from evals.settings import load_eval_settings  # noqa: E402
from rag import Assistant  # noqa: E402
from rag.config import DEFAULT_E5_DIR, Settings, load_settings  # noqa: E402
from rag.runtime import configure  # noqa: E402
from rag.search.embedding import load_embedder  # noqa: E402
from rag.search.retrieval import HybridRetriever  # noqa: E402

SEED = REPO / "docs_store" / "accordo-mutua-difesa.txt"
CACHE = REPO / ".cache" / "eval"
RECORD = CACHE / "build_times.json"
EVAL = load_eval_settings()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal"))
        mem = f", {mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        mem = ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs ({cpu}){mem}; load average {load:.1f} at start"


def private_settings(home: Path) -> Settings:
    (home / "docs_store").mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, home / "docs_store" / SEED.name)
    return Settings(home=home, embedding={"model": str(REPO / DEFAULT_E5_DIR)})


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def timed_searches(search: Any, queries: list[str]) -> dict[str, float]:
    for q in queries[:3]:  # warm-up: first calls pay lazy initialisation
        search(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - t)
    return percentiles(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200, help="distinct questions per latency measurement")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="measure the full SQuAD-it build again")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "retrieval_bench.json")
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    print(f"Machine: {out['machine']}", flush=True)

    settings = load_settings()
    configure(settings)
    t = time.perf_counter()
    embedder = load_embedder(settings)
    out["model_load_s"] = round(time.perf_counter() - t, 2)

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        home = Path(tmp)
        seed_settings = private_settings(home)
        assistant = Assistant(seed_settings, embedder=embedder)
        t = time.perf_counter()
        report = assistant.index(rebuild=True, progress=False)
        out["seed_build_s"] = round(time.perf_counter() - t, 2)
        out["seed_chunks"] = report.chunks
        print(f"seed index: {report.chunks} chunks in {out['seed_build_s']}s", flush=True)

        # SQuAD-it corpus: chunk + embed (full build measured once, then cached).
        corpus = load_corpus(EVAL.corpus)
        questions = load_squad_questions(EVAL.squad_questions, corpus)
        cache = Path(tempfile.mkdtemp(prefix="rag-bench-cache-", dir=tmp)) if args.rebuild else CACHE
        t = time.perf_counter()
        chunks = chunk_corpus(corpus, settings)
        chunk_s = time.perf_counter() - t
        fresh = not cache_path(cache, embedder, [c.text for c in chunks], queries=False).exists()
        index = build_index(chunks, embedder, cache, progress=sys.stderr.isatty())
        build_s = chunk_s + index.seconds
        record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        if fresh:  # the vectors were really computed: a full build
            record = {"squad_full_build_s": round(build_s, 1), "date": out["date"], "machine": out["machine"]}
            CACHE.mkdir(parents=True, exist_ok=True)
            RECORD.write_text(json.dumps(record, indent=2))
        out["squad_paragraphs"], out["squad_chunks"] = len(corpus), len(chunks)
        out["squad_build_s_this_run"] = round(build_s, 2)
        out["squad_full_build_s"] = record.get("squad_full_build_s")  # None: run once with --rebuild
        out["squad_full_build_recorded"] = record.get("date")
        print(f"SQuAD-it index: {len(chunks)} chunks; this run {build_s:.1f}s, full build "
              f"{record.get('squad_full_build_s', '?')}s (recorded {record.get('date')})", flush=True)

        # Warm latency: distinct questions, alternating Italian and English.
        qs = [q.question(lang) for q in questions for lang in ("it", "en")][: args.queries]
        squad = HybridRetriever(index.store, embedder, settings.retrieval)
        out["latency_squad"] = timed_searches(lambda q: squad.search(q, settings.retrieval.k), qs)
        seed_qs = [json.loads(line)["q"] for line in EVAL.article_questions
                   .read_text().splitlines() if line.strip()]
        out["latency_seed"] = timed_searches(lambda q: assistant.search(q), (seed_qs * 20)[: args.queries])
        print(f"warm search latency: SQuAD-it {out['latency_squad']}, seed {out['latency_seed']}", flush=True)

        # Cold CLI: a new process loads Python, torch, the model and the index.
        env = {**os.environ, "RAG_HOME": str(home), "RAG_EMBEDDING__MODEL": str(REPO / DEFAULT_E5_DIR)}
        cold = []
        for _ in range(args.cold_runs):
            t = time.perf_counter()
            subprocess.run([str(REPO / ".venv" / "bin" / "rag"), "search", "Chi ha firmato l'accordo?", "--json"],
                           env=env, check=True, capture_output=True, cwd=home)
            cold.append(time.perf_counter() - t)
        out["cold_cli_search_s"] = {"median": round(statistics.median(cold), 2), "min": round(min(cold), 2)}
        print(f"cold `rag search`: {out['cold_cli_search_s']}", flush=True)

    run = evaluate_retrieval(settings, corpus, questions, cache_dir=CACHE, progress=sys.stderr.isatty())
    out["recall"] = run.table()
    out["retrieval_settings"] = settings.retrieval.model_dump()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print_table(out)
    print(f"\nwrote {args.out}")


def print_table(out: dict[str, Any]) -> None:
    print(f"\n## Retrieval benchmark ({out['date']})\n\nMachine: {out['machine']}\n")
    print("| measure | value |\n|---|---|")
    rows = [
        ("embedding model load", f"{out['model_load_s']} s"),
        (f"index build, seed article ({out['seed_chunks']} chunks)", f"{out['seed_build_s']} s"),
        (f"index build, SQuAD-it {out['squad_paragraphs']} paragraphs ({out['squad_chunks']} chunks)",
         f"{out['squad_full_build_s'] or '? (run with --rebuild)'} s full "
         f"(recorded {out['squad_full_build_recorded']}); {out['squad_build_s_this_run']} s this run"),
        ("search latency warm, SQuAD-it index (p50 / p95)",
         f"{out['latency_squad']['p50_ms']} / {out['latency_squad']['p95_ms']} ms"),
        ("search latency warm, seed index (p50 / p95)",
         f"{out['latency_seed']['p50_ms']} / {out['latency_seed']['p95_ms']} ms"),
        ("cold `rag search` (new process, median / min)",
         f"{out['cold_cli_search_s']['median']} / {out['cold_cli_search_s']['min']} s"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n| method | it R@1 | it R@5 | it MRR | en→it R@1 | en→it R@5 | en→it MRR |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, by_lang in out["recall"].items():
        cells = " | ".join(f"{by_lang[lang][m]:.3f}" for lang in ("it", "en") for m in ("recall@1", "recall@5", "mrr"))
        print(f"| {method} | {cells} |")


if __name__ == "__main__":
    main()
