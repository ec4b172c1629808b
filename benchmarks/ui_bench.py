"""Chat page benchmark: start-up time, time to the first progress shown, to the first
streamed token and to the complete answer with the embedded model, how soon Stop frees
the model, and a screenshot of the page; beside llama.cpp alone reading a fixed prompt
(answer_bench's baseline), measured in the same run.

    .venv/bin/python benchmarks/ui_bench.py [--startup-runs 3] [--port 7899]

`rag ui` runs as users start it (a separate process) over a temporary copy of
the repo's articles and index, so the repo's own docs_store/ and index/ are
never written. Each dev question is asked in a fresh session through the
page's streaming API (gradio_client ``submit``), as a browser would; the first
token is the first streamed draft reaching the client (or the final answer when
nothing is generated, e.g. a refusal decided by retrieval); the first progress is
the first output showing a stage. Prints a table, writes results/ui_bench.json and
docs/screenshots/ui-answer.png.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from answer_bench import BASELINE_TOKENS, baseline  # this folder, run as a script
from gradio_client import Client

from evals.settings import load_eval_settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parent.parent
DEV_QUESTIONS = load_eval_settings().article_questions
E5 = REPO / "models" / "multilingual-e5-small"
GGUF = REPO / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_home(root: Path) -> Path:
    """A home with the repo's articles and index (an out-of-date index is rebuilt there, not here)."""
    shutil.copytree(REPO / "docs_store", root / "docs_store")
    if (REPO / "index").is_dir():
        shutil.copytree(REPO / "index", root / "index")
    return root


def start_server(home: Path, port: int, timeout_s: float = 300) -> tuple[subprocess.Popen[bytes], float]:
    """`rag ui` in its own process; returns it and the seconds from spawn to the page's HTTP 200."""
    env = {
        **os.environ,
        "RAG_HOME": str(home),
        "RAG_EMBEDDING__MODEL": str(E5),
        "RAG_LLM__MODEL_PATH": str(GGUF),
        "RAG_LLM__BACKEND": "llamacpp",
    }
    rag = Path(sys.executable).with_name("rag")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(rag), "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout_s:
        if proc.poll() is not None:
            raise SystemExit(f"rag ui exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("rag ui did not answer within the time limit")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _reply(output: Any) -> str:
    """The last chat message's text in one streamed output of /chat (the chat is the one
    list of messages among the outputs; the client leaves out session state)."""
    for value in output if isinstance(output, list | tuple) else ():
        if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
            content = value[-1]["content"]
            return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    return ""


def time_answer(url: str, question: str, lang: str, k: int = 4, stop_after_s: float | None = None) -> dict[str, Any]:
    """Seconds to the first progress (a stage), the first streamed draft and the final answer,
    seen by a client. ``stop_after_s``: press Stop that long after the first draft and time
    how soon the stopped answer comes back."""
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    job = client.submit(question, "llamacpp", k, lang, api_name="/chat")
    stage: float | None = None
    first: float | None = None
    stopped_at: float | None = None
    seen = 0
    while not job.done():
        outputs = job.outputs()
        for out in outputs[seen:]:
            reply = _reply(out)
            if stage is None and 'class="stage"' in reply:
                stage = time.perf_counter() - t0
            if first is None and 'class="draft"' in reply:
                first = time.perf_counter() - t0
        seen = len(outputs)
        due = stop_after_s is not None and first is not None and time.perf_counter() - t0 >= first + stop_after_s
        if due and stopped_at is None:
            stopped_at = time.perf_counter()
            client.predict(api_name="/stop")
        time.sleep(0.02)  # polling, not spinning: the model needs the CPU
    final = job.result()
    total = time.perf_counter() - t0
    text = _reply(final)
    return {
        "first_stage_s": stage if stage is not None else total,
        "first_token_s": first if first is not None else total,
        "streamed": first is not None,
        "total_s": total,
        "stop_to_end_s": None if stopped_at is None else time.perf_counter() - stopped_at,
        "stopped": 'class="stopped"' in text,
        "fell_back": 'class="answer-note"' in text,
        "answer": text,
    }


def screenshot(url: str, path: Path) -> None:
    """The page after one answered question, with its source shown in the article."""
    from playwright.sync_api import sync_playwright

    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="load")
            box = page.locator("#question textarea")
            box.fill("Chi ha firmato l'accordo di mutua difesa?")
            box.press("Enter")
            page.locator("#a1-s1").wait_for(timeout=300_000)
            page.locator("#a1-s1 details.in-article summary").click()
            page.wait_for_timeout(500)
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--startup-runs", type=int, default=3)
    ap.add_argument("--questions", type=Path, default=DEV_QUESTIONS)
    ap.add_argument("--screenshot", type=Path, default=REPO / "docs" / "screenshots" / "ui-answer.png")
    ap.add_argument("--json", type=Path, default=REPO / "results" / "ui_bench.json")
    args = ap.parse_args(argv)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]

    base = baseline(GGUF, None)
    print(f"baseline (llama.cpp alone, {BASELINE_TOKENS}-token prompt → 1 token): {base:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        home = copy_home(Path(tmp))
        startups: list[float] = []
        proc = None
        for run in range(args.startup_runs):
            port = free_port()
            proc, seconds = start_server(home, port)
            startups.append(seconds)
            print(f"start-up {run + 1}: {seconds:.1f}s", flush=True)
            if run < args.startup_runs - 1:
                stop(proc)
        assert proc is not None
        url = f"http://127.0.0.1:{port}/"
        try:
            # The first question after start-up warms caches: reported, not in the p50.
            warm = time_answer(url, "Chi è Kim Jong-un?", "it")
            print(f"first question after start-up: {warm['total_s']:.1f}s", flush=True)
            rows = []
            for q in questions:
                r = time_answer(url, q["q"], q["lang"])
                rows.append({"id": q["id"], "lang": q["lang"], "question": q["q"], **r})
                print(f"{q['id']}: stage {r['first_stage_s']:.2f}s, first token {r['first_token_s']:.1f}s, "
                      f"total {r['total_s']:.1f}s", flush=True)
            # Stop one second into an answer; then the next question must be answered as usual.
            stops = [time_answer(url, q["q"], q["lang"], stop_after_s=1.0) for q in questions[:3]]
            after_stop = [time_answer(url, q["q"], q["lang"]) for q in questions[:3]]
            screenshot(url, args.screenshot)
        finally:
            stop(proc)

    streamed = [r for r in rows if r["streamed"]]
    summary = {
        "baseline_s": base,
        "first_stage_s_p50": p50([r["first_stage_s"] for r in rows]),
        "stop_to_end_s_p50": p50([r["stop_to_end_s"] for r in stops if r["stop_to_end_s"] is not None]),
        "stopped": sum(r["stopped"] for r in stops),
        "total_s_p50_after_stop": p50([r["total_s"] for r in after_stop]),
        "startup_s_p50": p50(startups),
        "startup_s": startups,
        "first_question_s": warm["total_s"],
        "first_token_s_p50": p50([r["first_token_s"] for r in rows]),
        "first_token_s_p50_generated": p50([r["first_token_s"] for r in streamed]),
        "total_s_p50": p50([r["total_s"] for r in rows]),
        "total_s_p50_generated": p50([r["total_s"] for r in streamed]),
        "questions": len(rows),
        "generated": len(streamed),
        "fell_back": sum(r["fell_back"] for r in rows),
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }
    print()
    print("| id | lang | first token (s) | complete (s) | answer |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        text = r["answer"].split("<details", 1)[0]  # the answer's words, not its sources and details
        answer = html.unescape(re.sub(r"<[^>]+>", "", text))
        answer = " ".join(answer.split())[:70].replace("|", "/")
        print(f"| {r['id']} | {r['lang']} | {r['first_token_s']:.1f} | {r['total_s']:.1f} | {answer} |")
    print()
    measures = [
        (f"page start-up, process start → HTTP 200 ({len(startups)} runs)", summary["startup_s_p50"]),
        (f"question → first stage shown ({len(rows)} dev questions)", summary["first_stage_s_p50"]),
        (f"question → first streamed token ({len(rows)} dev questions)", summary["first_token_s_p50"]),
        (f"question → complete answer ({len(rows)} dev questions)", summary["total_s_p50"]),
        (f"first token, questions the model answered ({len(streamed)})", summary["first_token_s_p50_generated"]),
        (f"complete answer, questions the model answered ({len(streamed)})", summary["total_s_p50_generated"]),
    ]
    measures += [
        (f"Stop → stopped answer shown ({summary['stopped']}/{len(stops)} stopped)", summary["stop_to_end_s_p50"]),
        ("complete answer, the same 3 questions right after a Stop", summary["total_s_p50_after_stop"]),
    ]
    print("| measure | p50 | ÷ baseline |")
    print("|---|---:|---:|")
    for name, value in measures:
        print(f"| {name} | {value:.2f} s | {value / base:.2f}× |")
    print(f"| baseline: llama.cpp alone, {BASELINE_TOKENS}-token prompt → 1 token | {base:.2f} s | 1.00× |")
    print(
        f"\nfirst question after start-up (not in the p50): {warm['total_s']:.1f} s; "
        f"extractive fallbacks: {summary['fell_back']}; {summary['cpus']} CPUs, "
        f"load average {summary['load_average_1m']:.1f}; screenshot: {args.screenshot}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
