"""Many articles: how adding, restarting and searching scale with the store's size, per vector store.

Uses DICE (``../shared/bench/dice``: 10,372 real Italian crime-news articles,
CC BY-NC-SA, for benchmarks only; never shipped). For each store (``--backends
faiss,milvus``; Milvus runs as Milvus Lite), in its own process and a temporary
store and index (the project's ``docs_store/`` and ``index/`` are not touched), it times:

- adding N articles to an empty store in one go (read, copy, chunk, embed, save), with
  the embedding's share apart: the passages are embedded once and kept in
  ``.cache/bench/`` (an hour on 2 cores for all of DICE), so each store's run and each
  re-run gets the same vectors by lookup, and the model's rate is measured in every run on
  the same 256 passages (and 256 of their sentences); the all-in time is the rest measured
  plus the passages and sentences at those rates;
- a restart: a new assistant loading the store and index;
- adding one more article to the full store (only its passages are embedded);
- search latency (the product's hybrid search, its re-score reading the sentence vectors
  embedded at ingest), the store's own part of it (the nearest 100 passages to a question
  vector), the same searches with the sentence vectors computed at question time instead
  (``index.sentence_vectors = false``), and again once those are cached; extractive-answer
  latency (retrieval, gate, citations; no LLM, whose time does not depend on the store's size);
- whether a search with 8-14 words of one sentence of an article finds that article (top 5);
- index size on disk and the process's peak RAM;
- a baseline in the same run, at its start and end (these VMs drift 1.5-2x in a day): the
  embedding model alone embedding one fixed question, which every search starts with.
  Latencies are printed beside it. Prints a Markdown table.

    .venv/bin/python benchmarks/scale_bench.py [--articles 10372] [--queries 200] [--backends faiss,milvus]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DICE = REPO.parent / "shared" / "bench" / "dice" / "dice_articles.jsonl.gz"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


BASELINE_QUESTION = "Chi ha rubato le forme di Parmigiano Reggiano dal magazzino di Modena?"


def baseline_ms(embedder: Any, repeats: int = 30) -> float:
    """Median time of the embedding model alone embedding one fixed question."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        embedder.encode_queries([BASELINE_QUESTION])
        times.append(1000 * (time.perf_counter() - t))
    return pct(times, 0.5)


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


class CachedEncoder:
    """The product's embedder, remembering each passage's vector in ``cache`` (a .npz) so the
    next store's run gets the same vectors; times what the model itself spends."""

    def __init__(self, inner: Any, cache: Path) -> None:
        import numpy as np

        self.inner, self.cache, self.np = inner, cache, np
        self.dim, self.model_id = inner.dim, inner.model_id
        self.vectors: dict[str, Any] = {}
        if cache.exists():
            data = np.load(cache)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self.model_s = 0.0
        self.embedded = 0

    def key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\n{text}".encode()).hexdigest()  # another model, other vectors

    def encode_queries(self, texts: list[str]) -> Any:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> Any:
        keys = [self.key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}
        if todo:
            t = time.perf_counter()
            new = self.inner.encode_passages(list(todo.values()))
            self.model_s += time.perf_counter() - t
            self.embedded += len(todo)
            self.vectors.update(zip(todo, new, strict=True))
        return self.np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        keys = list(self.vectors)
        self.np.savez(self.cache, keys=self.np.asarray(keys), vectors=self.np.stack([self.vectors[k] for k in keys]))


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One store's run (in its own process, so its peak RAM is its own)."""
    import numpy as np

    from rag import Assistant
    from rag.config import Settings
    from rag.corpus.documents import document_id
    from rag.search.embedding import load_embedder
    from rag.search.retrieval import HybridRetriever

    rows = load_articles(args.corpus, args.articles + 1, args.seed)
    extra, rows = rows[-1], rows[:-1]
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        work = Path(tmp)
        write_articles(rows, work / "incoming")
        write_articles([extra], work / "extra")
        settings = Settings(docs_dir=work / "docs_store", index_dir=work / "index", index={"backend": args.one})
        embedder = CachedEncoder(load_embedder(settings), args.vectors)
        assistant = Assistant(settings, embedder=embedder)  # type: ignore[arg-type]
        embedder.encode_queries(["warm-up"])  # model load is not part of adding
        base_start = baseline_ms(embedder.inner)
        sample = [text[:600] for _, text in rows[:256]]  # ~120 tokens, a passage's size
        t = time.perf_counter()
        embedder.inner.encode_passages(sample)
        rate = len(sample) / (time.perf_counter() - t)
        sentences = [s for text in sample for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20][:256]
        t = time.perf_counter()
        embedder.inner.encode_passages(sentences)
        sentence_rate = len(sentences) / (time.perf_counter() - t)

        t = time.perf_counter()
        report = assistant.ingest([work / "incoming"])
        add_all = time.perf_counter() - t
        add_model_s, add_embedded = embedder.model_s, embedder.embedded
        chunks = len(assistant.retriever)
        sentence_count = sum(len(v) for _, v in assistant.retriever.sentence_vectors(assistant.retriever.store.chunks))  # type: ignore[attr-defined]
        if report.errors:
            print(f"{len(report.errors)} articles not added, e.g. {report.errors[0]}", file=sys.stderr)
        embedder.save()
        del assistant  # Milvus Lite serves one process; the restart below is this process again

        t = time.perf_counter()
        restarted = Assistant(settings, embedder=embedder)  # type: ignore[arg-type]
        sync = restarted.index(progress=False)
        restart = time.perf_counter() - t
        assert sync.action == "loaded", sync

        t = time.perf_counter()
        restarted.ingest([work / "extra"])
        add_one = time.perf_counter() - t

        probes = probe_queries(rows, args.queries, args.seed)
        ids = {aid: document_id(text + "\n") for aid, text in rows}  # as written by write_articles
        store = restarted.retriever.store  # type: ignore[attr-defined]
        search_s, store_s, answer_s, found = [], [], [], 0
        missed: list[dict[str, Any]] = []
        for aid, query in probes:
            qvec = embedder.encode_queries([query])
            t = time.perf_counter()
            store.search(np.asarray(qvec), 100)
            store_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            hits = restarted.search(query, k=5)
            search_s.append(time.perf_counter() - t)
            if any(h.doc_id == ids[aid] for h in hits):
                found += 1
            else:  # where its article is, if among the first 50
                deeper = [h.doc_id for h in restarted.search(query, k=50)]
                missed.append({"query": query, "rank": deeper.index(ids[aid]) + 1 if ids[aid] in deeper else None})
            t = time.perf_counter()
            restarted.ask(query, backend="extractive")
            answer_s.append(time.perf_counter() - t)
        # The same searches with the sentence vectors computed at question time (the setting
        # off), then again once they are cached in the process.
        # The model itself, not the bench's cache (which holds every sentence's vector by now).
        computing = HybridRetriever(store, embedder.inner, settings.retrieval)
        cold_s, warm_s = [], []
        for times in (cold_s, warm_s):
            for _, query in probes:
                t = time.perf_counter()
                computing.search(query, k=5)
                times.append(time.perf_counter() - t)
        return {
            "backend": args.one,
            "baseline_ms": [base_start, baseline_ms(embedder.inner)],
            "articles": len(report.added),
            "passages": chunks,
            "add_all_s": add_all,
            "add_model_s": add_model_s,
            "add_embedded": add_embedded,
            "model_rate": rate,
            "sentence_rate": sentence_rate,
            "sentences": sentence_count,
            "restart_s": restart,
            "add_one_s": add_one,
            "search_ms": [1000 * x for x in search_s],
            "store_ms": [1000 * x for x in store_s],
            "cold_ms": [1000 * x for x in cold_s],
            "warm_ms": [1000 * x for x in warm_s],
            "answer_ms": [1000 * x for x in answer_s],
            "found": found,
            "probes": len(probes),
            "missed": missed,
            "index_mib": disk_mib(work / "index"),
            "store_mib": disk_mib(work / "docs_store"),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def table(results: list[dict[str, Any]]) -> str:
    def ms(r: dict[str, Any], key: str, ratio: bool = False) -> str:
        p50, p95 = pct(r[key], 0.5), pct(r[key], 0.95)
        # Over the mean of the run's two baselines: the machine's speed during the run.
        base = sum(r["baseline_ms"]) / 2
        return f"{p50:.0f} / {p95:.0f} ms" + (f" ({p50 / base:.1f}× / {p95 / base:.1f}×)" if ratio else "")

    lines = ["| step | " + " | ".join(r["backend"] for r in results) + " |", "|---|" + "---:|" * len(results)]

    def row(name: str, cell: Any) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")

    def rest(r: dict[str, Any]) -> float:
        return float(r["add_all_s"] - r["add_model_s"])

    def all_in(r: dict[str, Any]) -> float:
        return rest(r) + r["passages"] / r["model_rate"] + r["sentences"] / r["sentence_rate"]

    row("articles / passages", lambda r: f"{r['articles']:,} / {r['passages']:,}")
    row("baseline: the model alone embeds one question, median (run's start / end)",
        lambda r: f"{r['baseline_ms'][0]:.1f} / {r['baseline_ms'][1]:.1f} ms")
    row("embedding model, passages/s and sentences/s (256 of each, this run)",
        lambda r: f"{r['model_rate']:.1f} / {r['sentence_rate']:.1f}")
    row("sentences embedded at ingest (index.sentence_vectors)", lambda r: f"{r['sentences']:,}")
    row("add them to an empty store, all in (the rest + passages and sentences at those rates)",
        lambda r: f"{all_in(r) / 60:.0f} min ({r['passages'] / all_in(r):.1f} passages/s)")
    row("of which not the model (read, screen, chunk, store, save)", lambda r: f"{rest(r):.0f} s")
    row("texts embedded in this run (passages and sentences; the others from the cache)",
        lambda r: f"{r['add_embedded']:,}")
    row("restart: load store and index", lambda r: f"{r['restart_s']:.1f} s")
    row("add 1 article to the full store", lambda r: f"{r['add_one_s']:.2f} s")
    row("search, p50 / p95 (÷ baseline)", lambda r: ms(r, "search_ms", ratio=True))
    row("of which the store (100 nearest), p50 / p95", lambda r: ms(r, "store_ms"))
    row("the same searches, sentence vectors computed at question time, p50 / p95 (÷ baseline)",
        lambda r: ms(r, "cold_ms", ratio=True))
    row("and again, those cached in the process, p50 / p95 (÷ baseline)", lambda r: ms(r, "warm_ms", ratio=True))
    row("extractive answer after it, p50 / p95", lambda r: ms(r, "answer_ms"))
    row("article found in the top 5 by one of its sentences", lambda r: f"{r['found']}/{r['probes']}")
    row("index on disk", lambda r: f"{r['index_mib']:.1f} MiB")
    row("peak RAM of the process", lambda r: f"{r['peak_mib']:,.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=10_372, help="articles to add (all of DICE by default)")
    ap.add_argument("--queries", type=int, default=200, help="searches and answers timed")
    ap.add_argument("--backends", default="faiss,milvus", help="stores to compare, comma-separated")
    ap.add_argument("--corpus", type=Path, default=DICE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child's run: this store
    ap.add_argument("--vectors", type=Path, default=REPO / ".cache" / "bench" / "dice-e5-vectors.npz",
                    help="cache of the passages' vectors (filled by the first run)")
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"error: {args.corpus}: no such file (the DICE articles from ../shared/bench/dice)")
    sys.path.insert(0, str(REPO))
    if args.one:
        args.out.write_text(json.dumps(run_one(args)))
        return
    results = []
    args.vectors.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        for backend in args.backends.split(","):
            out = Path(tmp) / f"{backend}.json"
            cmd = [sys.executable, __file__, "--one", backend, "--vectors", str(args.vectors),
                   "--out", str(out), "--articles", str(args.articles), "--queries", str(args.queries),
                   "--corpus", str(args.corpus), "--seed", str(args.seed)]
            print(f"> {backend}", file=sys.stderr)
            subprocess.run(cmd, check=True)
            results.append(json.loads(out.read_text()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{results[0]['store_mib']:.1f} MiB of article text\n")
    print(table(results))
    for r in results:
        ranks = [m["rank"] for m in r["missed"]]
        print(f"\n{r['backend']}: articles not in the top 5, at rank (None: not in the top 50): {ranks}")
        for m in r["missed"][:5]:
            print(f"  «{m['query']}»")


if __name__ == "__main__":
    main()
