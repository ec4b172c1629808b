"""Answer speed with the embedded model, every figure beside a baseline measured in the same run.

Baseline: llama.cpp alone (a plain ``llama_cpp.Llama``, nothing cached) reading a fixed
650-token prompt (the seed article) and giving one token. These VMs drift 1.5-2x within
a day, so the ratios to it are what compare across runs.

Measured for the default settings and for every cache off (``llm.whole_corpus_tokens=0``,
``llm.prompt_cache_mb=0``), side by side: warm time to first token and full answer
(answer check included) per language over the seed dev questions; cold `rag ask`
(a new process: first ever, then again with the saved prompt state); peak RAM.

    .venv/bin/python benchmarks/answer_bench.py [--rounds 2] [--json results/answer_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evals.settings import load_eval_settings  # noqa: E402

DEV = load_eval_settings().article_questions
BASELINE_TOKENS = 650
CACHES_OFF = {"whole_corpus_tokens": 0, "prompt_cache_mb": 0}
COLD_QUESTIONS = ("Chi ha firmato l'accordo di mutua difesa?", "Who signed the mutual defence pact?")


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def baseline(model_path: Path, threads: int | None, repeats: int = 3) -> float:
    """Seconds for llama.cpp alone to read BASELINE_TOKENS of the seed article and give one token."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model_path), n_ctx=2048, n_threads=threads or os.cpu_count(), verbose=False)
    article = next((REPO / "docs_store").glob("*.txt")).read_bytes()
    prompt = llm.tokenize(article)[:BASELINE_TOKENS]
    if len(prompt) < BASELINE_TOKENS:
        raise SystemExit("the seed article is shorter than the baseline prompt")
    times = []
    for _ in range(repeats):
        llm.reset()
        t = time.perf_counter()
        next(llm.generate(prompt, temp=0.0))
        times.append(time.perf_counter() - t)
    llm.close()
    return p50(times)


def warm(settings: Any, questions: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Time to first token and full answer per language, after one question has loaded everything."""
    from rag import Assistant

    a = Assistant(settings)
    a.index(progress=False)
    a.ask(COLD_QUESTIONS[0])  # loads the models (and reads the Italian prompt's start once)
    a.ask(COLD_QUESTIONS[1])
    by_lang: dict[str, dict[str, list[float]]] = {}
    answered = refused = 0
    for _ in range(rounds):
        for q in questions:
            ans = a.ask(q["q"])
            cell = by_lang.setdefault(q["lang"], {"first_token": [], "total": []})
            if "first_token" in ans.timings:
                cell["first_token"].append(ans.timings["first_token"])
                cell["total"].append(ans.timings["total"])
                answered += 1
            else:
                refused += 1
    a.close()
    return {
        "answered": answered,
        "refused_before_the_model": refused,
        **{lang: {k: p50(v) for k, v in cell.items()} for lang, cell in sorted(by_lang.items())},
        "all": {k: p50([x for c in by_lang.values() for x in c[k]]) for k in ("first_token", "total")},
    }


def cold(env: dict[str, str]) -> list[float]:
    """Wall time of `rag ask` in new processes: the first with an empty prompt-state folder, then again."""
    times = []
    for q in (*COLD_QUESTIONS, COLD_QUESTIONS[0]):
        t = time.perf_counter()
        r = subprocess.run([str(REPO / ".venv" / "bin" / "rag"), "ask", q], capture_output=True, text=True,
                           cwd=REPO, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1, help="passes over the dev questions")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    from rag.config import load_settings

    settings = load_settings()
    questions = [json.loads(x) for x in DEV.read_text(encoding="utf-8").splitlines() if x.strip()]
    model = settings.home / settings.llm.model_path
    base = baseline(model, settings.llm.n_threads)
    configs = {
        "default": settings,
        "caches off": settings.model_copy(update={"llm": settings.llm.model_copy(update=CACHES_OFF)}),
    }
    results: dict[str, Any] = {"baseline_s": base, "machine": f"{platform.processor() or platform.machine()}, "
                               f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    for name, s in configs.items():
        results[name] = {"warm": warm(s, questions, args.rounds)}
    peak_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    states = Path(tempfile.mkdtemp(prefix="prompt-states-"))
    env = {**os.environ, "RAG_LLM__PROMPT_CACHE_DIR": str(states)}
    results["default"]["cold"] = cold(env)
    results["caches off"]["cold"] = cold({**env, **{f"RAG_LLM__{k.upper()}": str(v) for k, v in CACHES_OFF.items()}})
    shutil.rmtree(states, ignore_errors=True)
    results["peak_ram_mib"] = {"warm process": peak_warm,
                               "cold process": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    results["baseline_after_s"] = baseline(model, settings.llm.n_threads)

    print(f"machine: {results['machine']}; {len(questions)} seed dev questions × {args.rounds}")
    print(f"baseline (llama.cpp alone, {BASELINE_TOKENS}-token prompt → 1 token): {base:.2f} s at the start, "
          f"{results['baseline_after_s']:.2f} s at the end\n")
    print("| metric | default | ratio | caches off | ratio |")
    print("|---|---:|---:|---:|---:|")
    rows = [(f"warm first token p50, {lang}", ("warm", lang, "first_token")) for lang in ("it", "en", "all")]
    rows += [(f"warm full answer p50, {lang}", ("warm", lang, "total")) for lang in ("it", "en", "all")]
    rows += [("cold `rag ask`, first ever", ("cold", 0)), ("cold `rag ask`, other language", ("cold", 1)),
             ("cold `rag ask`, asked again", ("cold", 2))]
    for label, path in rows:
        cells = []
        for name in configs:
            v: Any = results[name]
            for key in path:
                v = v[key]
            cells += [f"{v:.2f} s", f"{v / base:.2f}×"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\npeak RAM: {results['peak_ram_mib']['warm process']:.0f} MiB (this process, both configurations), "
          f"{results['peak_ram_mib']['cold process']:.0f} MiB (largest `rag ask` process)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
