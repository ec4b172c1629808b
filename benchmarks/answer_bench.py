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
from typing import Any

from evals.settings import load_eval_settings

REPO = Path(__file__).resolve().parent.parent
DEV = load_eval_settings().article_questions


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def raw_llama_speed(assistant: Any, generate: int = 64) -> tuple[int, float, float]:
    """The embedded chat model alone: prompt tokens, prompt and generation tokens per second.

    Goes through the product's own chat model (the instance the assistant has
    already loaded), with the seed article as the message: about the size of a
    real answer prompt (four passages + instructions). The prompt read is the
    time to the first streamed piece.
    """
    from langchain_core.messages import HumanMessage

    chat = assistant.chat_backend("llamacpp")
    settings = assistant.settings
    article = next(settings.docs_dir.glob("*.txt")).read_text(encoding="utf-8")
    t = time.perf_counter()
    first, pieces = 0.0, []
    for piece in chat.stream([HumanMessage(article)], timeout_s=600, max_tokens=generate):
        first = first or time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    prompt_tokens = chat.count_tokens(article)
    made = chat.count_tokens("".join(pieces))
    return prompt_tokens, prompt_tokens / (first - t), (made - 1) / max(1e-9, end - first)


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
        tokens, read, gen = raw_llama_speed(a)
        print(f"raw llama.cpp: prompt {read:.0f} tok/s ({tokens} tokens), generation {gen:.1f} tok/s")


if __name__ == "__main__":
    main()
