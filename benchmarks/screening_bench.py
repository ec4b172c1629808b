"""False alarms of the instruction screening (rag/corpus/screening.py) on real articles.

    .venv/bin/python benchmarks/screening_bench.py

Every article of the DICE crime-news set (10,372), the news_qa articles, the
SQuAD-it paragraphs and the English SQuAD dev paragraphs is screened; real news should raise no flag. Prints the
counts and each flagged excerpt (data paths from ``rag eval``'s settings).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evals.settings import load_eval_settings  # noqa: E402
from rag.corpus.screening import find_instructions  # noqa: E402


def corpora(shared: Path) -> dict[str, list[str]]:
    bench = shared / "bench"

    def field(path: Path, name: str) -> list[str]:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            return [json.loads(line)[name] for line in lines]

    dice = field(bench / "dice" / "dice_articles.jsonl.gz", "text")
    news = [p.read_text(encoding="utf-8") for p in sorted((bench / "news_qa" / "articles").glob("*.txt"))]
    squad = field(bench / "squad_it" / "corpus.jsonl.gz", "context")
    with gzip.open(bench / "squad_it" / "squad_en_dev-v1.1.rebuilt.json.gz", "rt", encoding="utf-8") as f:
        english = [p["context"] for a in json.load(f)["data"] for p in a["paragraphs"]]
    return {
        "DICE crime news (it)": dice,
        "news_qa articles (it)": news,
        "SQuAD-it paragraphs (it)": squad,
        "SQuAD v1.1 dev paragraphs (en)": english,
    }


def main() -> None:
    shared = load_eval_settings().shared_dir
    print("| corpus | texts | flagged | ms per text |\n|---|---|---|---|")
    flagged: list[tuple[str, str]] = []
    for name, texts in corpora(shared).items():
        t = time.perf_counter()
        hits = [(name, f.excerpt) for text in texts for f in find_instructions(text)[:1]]
        ms = 1000 * (time.perf_counter() - t) / max(1, len(texts))
        flagged += hits
        print(f"| {name} | {len(texts):,} | {len(hits)} | {ms:.2f} |")
    for name, excerpt in flagged:
        print(f"- {name}: «{excerpt}»")


if __name__ == "__main__":
    main()
