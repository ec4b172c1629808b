"""The parts of a restart and of adding one article that do not depend on the embedding model,
at DICE's size (``../shared/bench/dice``, 10,372 Italian articles), without embedding anything:

- reading the store's articles (``load_documents``): a full read (languages detected, as at a
  first start, and languages known, as later) against the ``DocumentCache`` a running
  assistant keeps (only changed files are read again);
- BM25 over all passages: built (every passage analysed) against read back from the file
  saved beside the index (the file read, the passages' key computed, the contents checked).

Both sides of each pair run in the same process, one after the other, so the ratio holds
when the machine's speed drifts. The whole of a restart and of adding one article, with a
real index, is ``scale_bench.py`` (which needs the passages' vectors: an hour to compute).

    .venv/bin/python benchmarks/startup_parts_bench.py [--articles 10372] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_bench import DICE, load_articles, write_articles


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=10_372)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=DICE)
    args = ap.parse_args()

    from rag.config import Settings
    from rag.corpus.chunking import chunk_document, indexed_text
    from rag.corpus.documents import DocumentCache
    from rag.runtime import configure
    from rag.search.indexer import load_documents
    from rag.search.lexical import BM25Index
    from rag.search.retrieval import bm25_key
    from rag.search.stores import Manifest

    rows = load_articles(args.corpus, args.articles, 0)
    with tempfile.TemporaryDirectory(prefix="rag-parts-") as tmp:
        write_articles(rows, Path(tmp) / "docs_store")
        settings = Settings(docs_dir=Path(tmp) / "docs_store", index_dir=Path(tmp) / "index")
        configure(settings)
        t = time.perf_counter()
        docs, _ = load_documents(settings)
        detect_s = time.perf_counter() - t
        known = Manifest(embedding_model="", dim=0, chunking={}, languages={d.doc_id: d.language for d in docs})
        full_s = timed(lambda: load_documents(settings, known), args.repeat)
        cache = DocumentCache()
        load_documents(settings, known, cache)
        cached_s = timed(lambda: load_documents(settings, known, cache), args.repeat)

        chunks = [c for d in docs for c in chunk_document(d, settings.chunking)]
        texts, languages = [indexed_text(c) for c in chunks], [c.language for c in chunks]
        index = BM25Index(texts, languages)
        build_s = timed(lambda: BM25Index(texts, languages), args.repeat)
        saved = Path(tmp) / "bm25.npz"
        saved.write_bytes(index.to_bytes(bm25_key(chunks)))
        save_s = timed(lambda: index.to_bytes(bm25_key(chunks)), args.repeat)
        # As at a start: the file read, the key of the passages in hand computed, checked, parsed.
        load_s = timed(
            lambda: BM25Index.from_bytes(saved.read_bytes(), bm25_key(chunks), index.k1, index.b), args.repeat
        )
        assert BM25Index.from_bytes(saved.read_bytes(), bm25_key(chunks), index.k1, index.b) is not None
        raw_mib = saved.stat().st_size / 2**20

    print(f"{len(docs):,} articles, {len(chunks):,} passages; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; median of {args.repeat}\n")
    print("| part | before | now | ratio |\n|---|---:|---:|---:|")
    print(f"| reading the store's articles (languages known) | {full_s:.2f} s | {cached_s:.2f} s (cached) | "
          f"{cached_s / full_s:.2f}× |")
    print(f"| BM25 at start | {build_s:.2f} s (built) | {load_s:.2f} s (read back, {raw_mib:.1f} MiB) | "
          f"{load_s / build_s:.3f}× |")
    print(f"\nFirst read with languages detected (a store never indexed): {detect_s:.1f} s; "
          f"saving BM25 (in the background): {save_s:.2f} s.")


if __name__ == "__main__":
    main()
