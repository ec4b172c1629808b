"""Answer latency with the embedded model: time to first token and total answer
time (p50/p95, warm), cold `rag ask` time, peak RAM. Prints a Markdown table.

    .venv/bin/python benchmarks/answer_bench.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rag.evaluation.data import DEFAULT_ARTICLE_QUESTIONS

REPO = Path(__file__).resolve().parent.parent
DEV = DEFAULT_ARTICLE_QUESTIONS


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def raw_llama_speed(prompt_tokens: int = 650, generate: int = 64) -> tuple[float, float]:
    """llama.cpp alone on the configured GGUF: prompt and generation tokens per second.

    The prompt is the seed article's first ``prompt_tokens`` tokens, about the
    size of a real answer prompt (four passages + instructions).
    """
    from llama_cpp import Llama

    from rag.config import Settings

    cfg = Settings()
    llm = Llama(model_path=str(cfg.resolve(cfg.llm.model_path)), n_ctx=cfg.llm.n_ctx,
                n_threads=cfg.llm.n_threads or os.cpu_count() or 1, verbose=False)
    article = next(cfg.resolve(cfg.docs_dir).glob("*.txt")).read_text(encoding="utf-8")
    prompt = llm.detokenize(llm.tokenize(article.encode())[:prompt_tokens]).decode(errors="ignore")
    t = time.perf_counter()
    llm.create_completion(prompt, max_tokens=1, temperature=0)
    read = time.perf_counter() - t
    llm.reset()
    t = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=generate, temperature=0)
    made = out["usage"]["completion_tokens"]
    return prompt_tokens / read, made / max(1e-9, time.perf_counter() - t - read)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2, help="passes over the dev questions")
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw llama.cpp speed measurement")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from rag import Assistant

    questions = [json.loads(x) for x in DEV.read_text().splitlines() if x.strip()]
    a = Assistant()
    a.index(progress=False)
    a.ask("Chi ha firmato l'accordo?", backend=args.backend)  # warm-up: model load, caches
    ttft, total, refusals, fallbacks = [], [], [], 0
    for _ in range(args.rounds):
        for q in questions:
            ans = a.ask(q["q"], backend=args.backend)
            if "first_token" in ans.timings:
                ttft.append(ans.timings["first_token"])
                total.append(ans.timings["total"])
            else:
                refusals.append(ans.timings["total"])
            fallbacks += ans.fell_back
    peak_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cold = []
    for q in ("Chi ha firmato l'accordo di mutua difesa?", "Who signed the mutual defence pact?"):
        t = time.perf_counter()
        r = subprocess.run([str(REPO / ".venv" / "bin" / "rag"), "ask", q, "--backend", args.backend],
                           capture_output=True, text=True, cwd=REPO)
        cold.append(time.perf_counter() - t)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
    peak_cold = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; backend {args.backend}")
    print(f"answered (LLM called): {len(total)}, refused by retrieval: {len(refusals)}, fell back: {fallbacks}\n")
    print("| metric | p50 | p95 |")
    print("|---|---|---|")
    print(f"| time to first token, warm (s) | {pct(ttft, .5):.2f} | {pct(ttft, .95):.2f} |")
    print(f"| total answer time, warm (s) | {pct(total, .5):.2f} | {pct(total, .95):.2f} |")
    print(f"| refusal time, warm (s) | {pct(refusals, .5):.2f} | {pct(refusals, .95):.2f} |")
    print(f"| cold `rag ask` incl. start-up (s) | {statistics.median(cold):.1f} | {max(cold):.1f} |")
    print(f"\npeak RAM: {peak_warm:.0f} MiB (warm process), {peak_cold:.0f} MiB (cold CLI process)")
    if args.backend == "llamacpp" and not args.no_raw:
        read, gen = raw_llama_speed()
        print(f"raw llama.cpp: prompt {read:.0f} tok/s (650 tokens), generation {gen:.1f} tok/s")


if __name__ == "__main__":
    main()
