"""What an embedding model costs on this machine: load time, passages/s at ingest, query latency
through the product's retriever, index size and peak RAM.

Each model is measured in a fresh process (``python -m evals.embedding_cost KEY``) so its peak
RAM is its own; ``measure_costs`` runs them one after another and collects the JSON they print.
Vectors of the whole corpus come from the retrieval benchmark's cache; only the ingest sample and
the questions are embedded here, by the real model.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INGEST_SAMPLE = 256  # passages embedded from scratch to time ingestion
QUERY_SAMPLE = 50  # questions searched one by one (half Italian, half English)


def measure_costs(keys: Sequence[str], corpus: Path, questions: Path, cache_dir: Path) -> dict[str, Any]:
    """Each model key's costs, measured in its own process, one at a time (2 cores: no overlap)."""
    out: dict[str, Any] = {}
    for key in keys:
        cmd = [sys.executable, "-m", "evals.embedding_cost", key, "--corpus", str(corpus),
               "--questions", str(questions), "--cache", str(cache_dir)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            out[key] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
        else:
            out[key] = json.loads(lines[-1])
    return out


def _probe(key: str, corpus_file: Path, questions_file: Path, cache_dir: Path) -> dict[str, Any]:
    from rag.config import load_settings
    from rag.corpus.chunking import indexed_text
    from rag.runtime import configure
    from rag.search.retrieval import HybridRetriever

    from .data import load_corpus, load_squad_questions
    from .retrieval import build_index, chunk_corpus, model_embedder, model_settings

    settings = load_settings()
    configure(settings)
    model = model_settings(settings, key)
    t = time.perf_counter()
    embedder = model_embedder(settings, key, {})
    load_s = time.perf_counter() - t
    corpus = load_corpus(corpus_file)
    chunks = chunk_corpus(corpus, settings)
    sample = [indexed_text(c) for c in chunks[:: max(1, len(chunks) // INGEST_SAMPLE)][:INGEST_SAMPLE]]
    embedder.encode_passages(sample[:8])  # first call pays one-time set-up
    t = time.perf_counter()
    embedder.encode_passages(sample)
    passages_per_s = len(sample) / (time.perf_counter() - t)
    index = build_index(chunks, embedder, cache_dir, progress=False)
    retriever = HybridRetriever(index.store, embedder, model.retrieval)
    qs = load_squad_questions(questions_file, corpus)[:QUERY_SAMPLE]
    seconds = []
    for i, q in enumerate(qs):
        text = q.question("it" if i % 2 == 0 else "en")
        t = time.perf_counter()
        retriever.search(text, k=model.retrieval.k)
        seconds.append(time.perf_counter() - t)
    return {
        "model_id": embedder.model_id,
        "dim": embedder.dim,
        "load_s": round(load_s, 2),
        "passages_per_s": round(passages_per_s, 1),
        "query_p50_ms": round(1000 * statistics.median(seconds)),
        "query_p95_ms": round(1000 * sorted(seconds)[int(0.95 * (len(seconds) - 1))]),
        "vectors_mb_per_1k_passages": round(embedder.dim * 4 * 1000 / 2**20, 2),
        "index_vectors_mb": round(index.vectors.shape[0] * embedder.dim * 4 / 2**20, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> int:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries it over from the parent
    across exec, so every child would report the (larger) parent's peak."""
    with open("/proc/self/status", encoding="ascii") as f:
        found = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.MULTILINE)
    return round(int(found.group(1)) / 1024) if found else 0


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("key")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--questions", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    a = p.parse_args(argv)
    print(json.dumps(_probe(a.key, a.corpus, a.questions, a.cache)))


if __name__ == "__main__":
    main()
