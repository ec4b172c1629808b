"""The CLI end to end (subprocess: real exit codes, stderr, no tracebacks)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SEED

pytestmark = pytest.mark.slow


def rag(
    home: Path, *args: str, stdin: str | None = None, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **(env or {}),
        "RAG_HOME": str(home),
        "RAG_EMBEDDING__MODEL": str(REPO / "models" / "multilingual-e5-small"),
        "RAG_LLM__MODEL_PATH": str(REPO / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    }
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], cwd=home, env=env, input=stdin,
        capture_output=True, text=True, timeout=timeout,
    )


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for d in ("docs_store", "index")
            for p in sorted((home / d).rglob("*")) if p.is_file()}


def test_search_json_and_text(home: Path) -> None:
    r = rag(home, "search", "Chi ha firmato l'accordo?", "--k", "3", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert len(hits) == 3 and {"text", "score", "doc_id", "title", "date", "chunk_id", "start", "end"} <= set(hits[0])
    assert any("Putin ha firmato" in h["text"] for h in hits)
    doc = SEED.read_text()
    assert all(doc[h["start"] : h["end"]] == h["text"] for h in hits)
    r = rag(home, "search", "Who signed the mutual defence pact?")
    assert r.returncode == 0 and "Un accordo di mutua difesa (2024-06)" in r.stdout
    # BM25 alone finds nothing for a query with no word in common: not "no passages indexed".
    r = rag(home, "search", "xyzzy plugh", env={"RAG_RETRIEVAL__MODE": "bm25"})
    assert r.returncode == 0 and "No passage matches the query." in r.stdout and "rag ingest" not in r.stdout


def test_bad_inputs_give_one_clear_message_and_lose_nothing(home: Path, tmp_path: Path) -> None:
    assert rag(home, "index").returncode == 0
    before = snapshot(home)
    binary = tmp_path / "img.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x00binary")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("città".encode("latin-1"))
    title_only = tmp_path / "solo-titolo.md"
    title_only.write_text("# Vertice a Pyongyang\n\n", encoding="utf-8")
    cases = [
        (("search", ""), "empty"),
        (("search", "   "), "empty"),
        (("search", "x" * 100_000), "limit"),
        (("ask", "", "--backend", "extractive"), "empty"),
        (("ask", "Chi ha firmato?", "--backend", "extractive", "--k", "0"), "from 1 to"),
        (("search", "accordo", "--k", "0"), "from 1 to"),
        (("ingest", str(tmp_path / "missing.txt")), "no such file"),
        (("ingest", str(binary)), "binary"),
        (("ingest", str(latin)), "UTF-8"),
        (("ingest", str(title_only)), "no text"),
        # A folder: one line for each bad file in it.
        (("ingest", str(tmp_path)), ("img.txt", "latin.txt", "solo-titolo.md")),
    ]
    for args, expected in cases:
        r = rag(home, *args)
        assert r.returncode == 2, (args, r.returncode)
        for message in (expected,) if isinstance(expected, str) else expected:
            assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout, args
    assert snapshot(home) == before


def test_corrupt_index_is_rebuilt_from_the_store(home: Path) -> None:
    assert rag(home, "index").returncode == 0
    (home / "index" / "vectors.faiss").write_bytes(b"garbage")
    r = rag(home, "search", "Kim Jong-un", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)
    r = rag(home, "index")
    assert "index loaded" in r.stdout


def test_invalid_setting_is_reported(home: Path) -> None:
    (home / "rag.toml").write_text("[chunking]\nchunk_tokens = 10\noverlap_tokens = 50\n")
    r = rag(home, "config")
    assert r.returncode == 2 and "invalid settings" in r.stderr and "Traceback" not in r.stderr


def test_ingest_and_reingest(home: Path, tmp_path: Path) -> None:
    art = tmp_path / "nuovo.md"
    art.write_text(
        "# Vertice a Roma\n\nIl ministro Bianchi ha incontrato il sindaco di Torino per parlare di trasporti.\n"
    )
    r = rag(home, "ingest", str(art))
    assert r.returncode == 0 and "added" in r.stdout and "Vertice a Roma" in r.stdout
    r = rag(home, "ingest", str(art))
    assert r.returncode == 0 and "unchanged" in r.stdout
    r = rag(home, "search", "Who did minister Bianchi meet?", "--json", "--k", "1")
    assert "Bianchi" in json.loads(r.stdout)[0]["text"]


def test_ask_stdin_mode_and_json(home: Path) -> None:
    r = rag(home, "ask", "--backend", "extractive", "--json",
            stdin="Chi ha firmato l'accordo di mutua difesa?\n\nHow old is Kim Jong-un?\n")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(part) for part in r.stdout.split("\n\n") if part.strip()]
    assert len(docs) == 2
    assert docs[0]["answerable"] and docs[0]["language"] == "it" and docs[0]["citations"]
    assert not docs[1]["answerable"] and docs[1]["language"] == "en" and not docs[1]["citations"]
    r = rag(home, "ask", "Who signed the mutual defence pact?", "--backend", "extractive")
    assert r.returncode == 0 and "Sources:" in r.stdout and "[1]" in r.stdout


# The documented --json schema (docs/cli.md): the Python API's field names (Answer.to_dict()).
ANSWER_FIELDS = {
    "question", "searched_for", "translated_query", "read_whole_corpus", "text", "language", "answerable",
    "citations", "passages", "backend", "fell_back", "fallback_reason", "refusal_reason", "relevance", "note",
    "stopped", "timings",
}
CITATION_FIELDS = {"number", "doc_id", "title", "date", "chunk_id", "quote", "start", "end", "chunk_start",
                   "chunk_end", "passage"}


def test_ask_json_has_the_api_fields_and_progress_goes_to_stderr(home: Path) -> None:
    from rag import Answer

    r = rag(home, "ask", "Chi ha firmato l'accordo di mutua difesa?", "--backend", "extractive", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout holds the JSON alone
    assert set(doc) == ANSWER_FIELDS and set(doc["citations"][0]) == CITATION_FIELDS
    assert doc["text"] and not doc["stopped"]
    assert set(Answer("q", "t", "it", True).to_dict()) == ANSWER_FIELDS  # the API's own to_dict
    # The stages, in order, each with its elapsed time, on stderr.
    stages = re.findall(r"^… (.+) \((\d+\.\d)s\)$", r.stderr, re.MULTILINE)
    names = [s for s, _ in stages]
    assert names[:2] == ["loading the index and the model", "searching the articles"], r.stderr
    assert names[-1] == "checking the citations"
    assert [float(t) for _, t in stages] == sorted(float(t) for _, t in stages)
    quiet = rag(home, "ask", "Chi ha firmato l'accordo?", "--backend", "extractive", "--json", "--quiet")
    assert "…" not in quiet.stderr and json.loads(quiet.stdout)["answerable"]


def test_help_explains_each_command_with_examples(home: Path) -> None:
    top = rag(home, "--help")
    assert top.returncode == 0 and "``" not in top.stdout and "examples:" in top.stdout
    for command in ("ask", "chat", "search", "ingest", "ui"):
        assert command in top.stdout
    ask = rag(home, "ask", "--help").stdout
    for expected in ("--backend", "extractive", "--json", "--quiet", "examples:", "stderr", "text, language"):
        assert expected in ask, expected
    assert "examples:" in rag(home, "search", "--help").stdout
    assert "/new" in rag(home, "chat", "--help").stdout


def test_chat_mode_keeps_the_conversation(home: Path) -> None:
    r = rag(home, "chat", "--backend", "extractive",
            stdin="Chi ha firmato l'accordo di mutua difesa?\nE cosa ha detto Kim di lui?\n/new\nCiao?\n")
    assert r.returncode == 0, r.stderr
    answers = r.stdout.count("Sources:")
    assert answers >= 2 and "Putin" in r.stdout and "(new conversation)" in r.stderr


def test_search_shows_title_and_date_not_the_metadata_line(home: Path) -> None:
    r = rag(home, "search", "accordo di mutua difesa", "--k", "7")
    assert r.returncode == 0 and "[1] Un accordo di mutua difesa (2024-06)" in r.stdout
    assert "date 2024-06" not in r.stdout


@pytest.mark.parametrize(
    ("draft", "columns", "expected"),
    [
        ("Putin ha firmato [1].", 80, "\r\033[J"),  # one row: clear it
        ("x" * 180, 80, "\r\033[2A\033[J"),  # wrapped over three rows
        ("x" * 80, 80, "\r\033[J"),  # exactly one full row
        ("Kim Jong-un.\n", 80, "\r\033[1A\033[J"),  # the wrong-language retry starts a new line
        ("a" * 100 + "\n" + "b" * 10, 40, "\r\033[3A\033[J"),
    ],
)
def test_streamed_draft_is_erased_whole(draft: str, columns: int, expected: str) -> None:
    from rag.cli import erase_sequence

    assert erase_sequence(draft, columns) == expected


def test_ingest_reports_duplicates_refusals_and_a_summary(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "archivio"
    folder.mkdir()
    text = "date 2024-09 Vertice a Roma\n\nIl ministro Bianchi ha incontrato il sindaco di Torino.\n"
    (folder / "a.txt").write_text(text, encoding="utf-8")
    (folder / "copia.txt").write_text(text, encoding="utf-8")  # the same text under another name
    (folder / "rotto.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    r = rag(home, "ingest", str(folder), "-q")
    assert r.returncode == 2  # a file was refused
    assert "added     'Vertice a Roma'" in r.stdout and "duplicate 'Vertice a Roma'" in r.stdout
    assert "rotto.txt: looks like a binary file" in r.stderr
    assert re.search(r"^1 added \(\d+ passages embedded\), 0 already in the store, 1 duplicates skipped, "
                     r"1 refused$", r.stderr, re.MULTILINE), r.stderr
