"""`rag eval` on small samples, so it cannot silently break (real models, ~1-2 min).

`rag eval all` runs every retrieval method on a 60-paragraph slice of SQuAD-it
with 20 questions (the English ones translated by the embedded model), article
QA on the dev file and the answer benchmark on 3 questions, all with the
extractive engine. Reports and caches go to
temporary folders.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import run
from tests.conftest import DEV_QUESTIONS, REPO, SEED, SHARED

pytestmark = pytest.mark.slow

SQUAD = SHARED / "bench" / "squad_it"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval")


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert run(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_all_small_sample(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    totals = _run_json(
        ["eval", "all", "--article", str(DEV_QUESTIONS), "--docs", str(SEED),
         "--corpus", str(SQUAD / "corpus.jsonl.gz"), "--questions", str(SQUAD / "dev_questions.jsonl"),
         "--max-paragraphs", "60", "--max-questions", "20", "--n", "3", "--backend", "extractive",
         "--results", str(out / "results"), "--cache", str(out / "cache"), "--json", "--quiet"],
        capsys,
    )
    # Retrieval: every method, both languages, sane metrics.
    table = totals["retrieval"]
    assert set(table) == {"hybrid-translated", "hybrid", "bm25", "dense-e5", "dense-minilm"}
    for by_lang in table.values():
        assert set(by_lang) == {"it", "en"}
        for metrics in by_lang.values():
            assert metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1.0
            assert 0 <= metrics["mrr"] <= 1.0
    # Even on a small slice the product's retriever must be clearly useful in both languages.
    assert table["hybrid"]["it"]["recall@5"] >= 0.8 and table["hybrid"]["en"]["recall@5"] >= 0.8
    # Italian questions are not translated (the corpus is Italian); English ones were, by the real model.
    assert table["hybrid-translated"]["it"] == table["hybrid"]["it"]
    assert table["hybrid-translated"]["en"]["recall@5"] >= 0.8
    assert len(list((out / "cache" / "translations").glob("llamacpp-*.jsonl"))) == 1

    # Article QA with the extractive engine.
    t = totals["article"]["extractive"]
    assert t["questions"] == 10 and t["unanswerable"] == 2 and t["answerable"] == 8
    assert t["unanswerable_refused"] == 2
    assert t["answerable_correct"] >= 4  # quotes are Italian: the Italian questions at least
    assert 0 <= t["citation_precision"] <= 1 and 0 <= t["citation_recall"] <= 1
    assert t["threshold"]["best_range"][0] <= t["threshold"]["best_range"][1]

    # Answers: 3 questions asked in both languages.
    a = totals["answers"]["extractive"]
    assert a["all"]["questions"] == 6 and a["it"]["questions"] == a["en"]["questions"] == 3
    assert 0 <= a["all"]["f1"] <= 1 and 0 <= a["all"]["citation_precision"] <= 1

    # Reports: one JSON per section, the Markdown page and the plot.
    report = out / "results"
    saved = json.loads((report / "eval-retrieval.json").read_text())
    assert saved["questions"] == 20 and saved["paragraphs"] == 60
    rows = json.loads((report / "eval-article.json").read_text())["runs"][0]["questions"]
    assert [r["id"] for r in rows] == [f"d{i:02d}" for i in range(1, 11)]
    assert json.loads((report / "eval-answers.json").read_text())["paragraphs"] == 60
    page = (report / "eval-report.md").read_text()
    assert "| hybrid + question translation (ours" in page and "## Article QA" in page and "## Answers" in page
    assert (report / "recall_at_k.png").stat().st_size > 10_000
    # Eval indexes into its own folders; embeddings are cached as .npy, no pickles.
    assert (out / "cache" / "article" / "index" / "manifest.json").exists()
    assert list((out / "cache" / "embeddings").glob("*.npy"))
    assert not list((out / "cache").rglob("*.pkl"))


def test_eval_retrieval_human_output(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Reuses the embeddings cached by the test above: only BM25 and the searches run.
    argv = ["eval", "retrieval", "--methods", "hybrid", "bm25", "--max-paragraphs", "60", "--max-questions", "20",
            "--cache", str(out / "cache"), "--no-report", "--quiet"]
    assert run(argv) == 0
    printed = capsys.readouterr().out
    assert "hybrid without translation (BM25 + e5)" in printed and "BM25 alone" in printed and "MiniLM" not in printed


def test_eval_answers_hard_negatives(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Reuses the cached embeddings: each question asked with and without its gold paragraph.
    results = out / "hard"
    totals = _run_json(
        ["eval", "answers", "--hard-negatives", "--n", "4", "--max-paragraphs", "60", "--max-questions", "20",
         "--backend", "extractive", "--results", str(results), "--cache", str(out / "cache"), "--json", "--quiet"],
        capsys,
    )["extractive"]
    assert totals["all"]["questions"] == 8  # the answerable half only
    hard = totals["hard_negatives"]["all"]
    assert hard["questions"] == 8
    assert hard["refused"] + hard["answered_with_gold"] + hard["answered_without_gold"] == 8
    assert totals["hard_negatives"]["it"]["questions"] == totals["hard_negatives"]["en"]["questions"] == 4
    assert totals["threshold"]["best_range"][0] <= totals["threshold"]["best_range"][1]
    run_ = json.loads((results / "eval-answers.json").read_text())["runs"][0]
    removed = [r for r in run_["questions"] if r["gold_removed"]]
    kept = [r for r in run_["questions"] if not r["gold_removed"]]
    assert len(removed) == len(kept) == 8
    # The gold paragraph really is out of the index, and only there.
    assert not any(r["gold_retrieved"] for r in removed)
    assert sum(r["gold_retrieved"] for r in kept) >= 6
    assert all(0 <= r["relevance"] <= 1 for r in run_["questions"])
    page = (results / "eval-report.md").read_text()
    assert "### Gold paragraph removed" in page and "refusal threshold, both sets" in page


def test_eval_bad_input_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "lang": "it", "q": "Chi?"}\nnot json\n')
    no_pid = tmp_path / "corpus.jsonl"
    no_pid.write_text('{"title": "x"}\n')
    corrupt_gz = tmp_path / "corpus.jsonl.gz"
    corrupt_gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00garbage" * 20)
    corpus = tmp_path / "one.jsonl"
    corpus.write_text('{"pid": "p1", "context": "Roma è la capitale d\'Italia."}\n')
    letters = tmp_path / "letters.jsonl"  # a bare string would be scored letter by letter
    letters.write_text('{"pid": "p1", "question_it": "Qual è la capitale?", "question_en": "What is the capital?",'
                       ' "answers_en": "Rome"}\n')
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text('{"pid": "p1", "question_it": "Qual è?", "question_en": "Which?",'
                       ' "answers_it": [{"answer_start": 3}]}\n')
    pdf = tmp_path / "article.pdf"
    pdf.write_text("not an article")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (["article", str(tmp_path / "missing.jsonl")], "no such file"),
        (["article", str(bad)], "line 2: not valid JSON"),
        (["retrieval", "--corpus", str(no_pid)], "missing field(s) pid, context"),
        (["answers", "--n", "0"], "must be at least 1"),
        (["retrieval", "--corpus", str(corrupt_gz)], "cannot be read"),
        (["answers", "--corpus", str(corpus), "--questions", str(letters)], "answers_en must be a list"),
        (["answers", "--corpus", str(corpus), "--questions", str(no_text)], "answers_it must be a list"),
        (["article", "--docs", str(pdf), "--backend", "extractive"], "unsupported file type"),
        (["article", "--backend", "extractive", "--cache", str(a_file)], "--cache"),
    ]
    for argv, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "rag.cli", "eval", *argv, "--results", str(tmp_path / "r"), "--quiet"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stdout == ""


def test_eval_unwritable_results_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "article", "--backend", "extractive", "--results", str(a_file)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2 and "--results" in proc.stderr and "cannot write" in proc.stderr
    assert "Traceback" not in proc.stderr and "index" not in proc.stderr  # refused before any work
