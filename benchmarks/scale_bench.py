"""Many articles: how adding, restarting and searching scale with the store's size.

Uses DICE (``../shared/bench/dice``: 10,372 real Italian crime-news articles,
CC BY-NC-SA, for benchmarks only; never shipped). In a temporary store and
index (the project's ``docs_store/`` and ``index/`` are not touched) it times:

- adding N articles to an empty store in one go (read, copy, chunk, embed, save);
- a restart: a new assistant loading the store and index;
- adding one more article to the full store (only its passages are embedded);
- search latency and extractive-answer latency (retrieval, gate, citations; no
  LLM, whose time does not depend on the store's size) at that size;
- whether a search with a sentence of an article finds that article (top 5);
- index size on disk and peak RAM. Prints a Markdown table.

    .venv/bin/python benchmarks/scale_bench.py [--articles 2000] [--queries 40]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DICE = REPO.parent / "shared" / "bench" / "dice" / "dice_articles.jsonl.gz"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def load_articles(path: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """(id, text) of n non-empty articles (a reproducible sample; all when n is larger)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [(str(r["id"]), r["text"].strip()) for r in rows if r.get("text", "").strip()]
    rows.sort(key=lambda r: int(r[0]) if r[0].isdigit() else r[0])
    return rows if n >= len(rows) else random.Random(seed).sample(rows, n)


def write_articles(rows: list[tuple[str, str]], folder: Path) -> None:
    folder.mkdir(parents=True)
    for aid, text in rows:
        (folder / f"dice-{aid}.txt").write_text(text + "\n", encoding="utf-8")


def probe_queries(rows: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """(article id, query): 8-14 words from the middle of a sentence of the article."""
    rng = random.Random(seed + 1)
    out = []
    for aid, text in rng.sample(rows, min(n, len(rows))):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 12]
        if not sentences:
            continue
        words = rng.choice(sentences).split()
        start = rng.randrange(0, max(1, len(words) - 14))
        out.append((aid, " ".join(words[start : start + rng.randint(8, 14)])))
    return out


def disk_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000, help="articles to add (DICE has 10,351 non-empty)")
    ap.add_argument("--queries", type=int, default=40, help="searches and answers timed")
    ap.add_argument("--corpus", type=Path, default=DICE)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"error: {args.corpus}: no such file (the DICE articles from ../shared/bench/dice)")
    sys.path.insert(0, str(REPO))
    from rag import Assistant
    from rag.config import Settings
    from rag.corpus.documents import document_id

    rows = load_articles(args.corpus, args.articles + 1, args.seed)
    extra, rows = rows[-1], rows[:-1]
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        work = Path(tmp)
        write_articles(rows, work / "incoming")
        write_articles([extra], work / "extra")
        settings = Settings(docs_dir=work / "docs_store", index_dir=work / "index")
        assistant = Assistant(settings)
        assistant.embedder.encode_queries(["warm-up"])  # model load is not part of adding

        t = time.perf_counter()
        report = assistant.ingest([work / "incoming"])
        add_all = time.perf_counter() - t
        chunks = len(assistant.retriever)
        if report.errors:
            print(f"{len(report.errors)} articles not added, e.g. {report.errors[0]}", file=sys.stderr)

        t = time.perf_counter()
        restarted = Assistant(settings)
        sync = restarted.index(progress=False)
        restart = time.perf_counter() - t
        assert sync.action == "loaded", sync

        t = time.perf_counter()
        restarted.ingest([work / "extra"])
        add_one = time.perf_counter() - t

        probes = probe_queries(rows, args.queries, args.seed)
        ids = {aid: document_id(text + "\n") for aid, text in rows}  # as written by write_articles
        search_s, answer_s, found = [], [], 0
        for aid, query in probes:
            t = time.perf_counter()
            hits = restarted.search(query, k=5)
            search_s.append(time.perf_counter() - t)
            found += any(h.doc_id == ids[aid] for h in hits)
            t = time.perf_counter()
            restarted.ask(query, backend="extractive")
            answer_s.append(time.perf_counter() - t)
        index_mib = disk_mib(work / "index")
        store_mib = disk_mib(work / "docs_store")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(report.added)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"store: {n:,} DICE articles ({store_mib:.1f} MiB), {chunks:,} passages; index {index_mib:.1f} MiB\n")
    print("| step | time |")
    print("|---|---|")
    print(f"| add {n:,} articles to an empty store | {add_all:.0f} s ({n / add_all:.1f} articles/s, "
          f"{chunks / add_all:.0f} passages/s) |")
    print(f"| restart: load store and index | {restart:.1f} s |")
    print(f"| add 1 article to the full store | {add_one:.1f} s |")
    print(f"| search, p50 / p95 | {pct(search_s, .5) * 1000:.0f} / {pct(search_s, .95) * 1000:.0f} ms |")
    print(f"| extractive answer, p50 / p95 | {pct(answer_s, .5) * 1000:.0f} / {pct(answer_s, .95) * 1000:.0f} ms |")
    print(f"\narticle found in the top 5 by one of its sentences: {found}/{len(probes)}")
    print(f"peak RAM: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
