"""Snapshots of read prompts (rag/llm/llama_cache.PrefixStates), without a model: which one
is reused for a prompt, what is dropped, what is saved and found again, what is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rag.llm.llama_cache import BATCH, MIN_SAVED_TOKENS, SUFFIX, PrefixStates, Snapshot


def toks(*runs: tuple[int, int]) -> np.ndarray:
    """Tokens made of runs (value, count)."""
    return np.concatenate([np.full(n, v, dtype=np.intc) for v, n in runs])


ARTICLE = toks((7, 3 * BATCH + 10))  # the long shared start of every question's prompt


def snap(tokens: np.ndarray, fill: int = 1) -> Snapshot:
    return Snapshot(tokens, bytes([fill]) * 1000)


def test_the_snapshot_reaching_furthest_is_chosen_down_to_a_batch_boundary() -> None:
    states = PrefixStates(10**6)
    states.add(snap(toks((1, 300))))
    states.add(snap(np.concatenate([ARTICLE, toks((2, 20))]), fill=2))
    found, reach = states.best(np.concatenate([ARTICLE, toks((3, 15))]))
    assert found is not None and found.data == bytes([2]) * 1000
    assert reach == 3 * BATCH  # the 10 shared tokens past the last boundary are read again
    assert states.best(toks((9, 500))) == (None, 0)  # nothing shared


def test_a_prompt_extending_an_older_one_replaces_it() -> None:
    states = PrefixStates(10**6)
    states.add(snap(ARTICLE))
    states.add(snap(np.concatenate([ARTICLE, toks((2, 5))])))
    assert len(states) == 1


def test_least_recently_used_go_first_past_the_memory_budget() -> None:
    states = PrefixStates(2500)
    a, b, c = (toks((v, 200)) for v in (1, 2, 3))
    states.add(snap(a))
    states.add(snap(b))
    states.best(a)  # a used again: b is now the oldest
    states.add(snap(c))
    assert states.best(b) == (None, 0) and states.best(a)[0] is not None and states.best(c)[0] is not None


def test_saved_snapshots_are_found_by_a_new_process_with_the_same_key(tmp_path: Path) -> None:
    long = toks((5, MIN_SAVED_TOKENS + 3))
    first = PrefixStates(10**6, tmp_path, key="model-a")
    first.add(snap(long, fill=4))
    first.add(snap(toks((6, 200))))  # short: memory only
    first.flush()
    assert len(list(tmp_path.glob("*" + SUFFIX))) == 1
    again = PrefixStates(10**6, tmp_path, key="model-a")
    found, reach = again.best(long)
    assert found is not None and found.data == bytes([4]) * 1000 and reach == MIN_SAVED_TOKENS
    # Another model, llama.cpp build or batch size: the state is not valid for it.
    assert PrefixStates(10**6, tmp_path, key="model-b").best(long) == (None, 0)


def test_a_damaged_saved_snapshot_is_deleted_with_a_warning_never_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long = toks((5, MIN_SAVED_TOKENS))
    first = PrefixStates(10**6, tmp_path, key="k")
    first.add(snap(long))
    first.flush()
    (saved,) = tmp_path.glob("*" + SUFFIX)
    raw = bytearray(saved.read_bytes())
    raw[-1] ^= 0xFF
    saved.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        assert PrefixStates(10**6, tmp_path, key="k").best(long) == (None, 0)
    assert "damaged" in caplog.text and not saved.exists()


def test_the_folder_keeps_to_its_budget(tmp_path: Path) -> None:
    states = PrefixStates(3500, tmp_path, key="k")
    for v in range(5):
        states.add(snap(toks((v, MIN_SAVED_TOKENS)), fill=v))
        states.flush()
    assert sum(p.stat().st_size for p in tmp_path.glob("*" + SUFFIX)) <= 3500 + 4 * MIN_SAVED_TOKENS + 200
    assert PrefixStates(3500, tmp_path, key="k").best(toks((4, MIN_SAVED_TOKENS)))[0] is not None


def test_an_unwritable_folder_only_costs_the_saving(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    states = PrefixStates(10**6, blocker / "states", key="k")
    with caplog.at_level(logging.WARNING):
        states.add(snap(toks((5, MIN_SAVED_TOKENS))))
        states.flush()
    assert "could not save" in caplog.text and states.best(toks((5, MIN_SAVED_TOKENS)))[0] is not None


def test_a_damaged_snapshot_among_others_of_other_lengths_is_dropped_without_error(tmp_path: Path) -> None:
    long = toks((5, MIN_SAVED_TOKENS))
    saving = PrefixStates(10**6, tmp_path, key="k")
    saving.add(snap(long))
    saving.flush()
    (saved,) = tmp_path.glob("*" + SUFFIX)
    saved.write_bytes(saved.read_bytes()[:-1])
    states = PrefixStates(10**6, tmp_path, key="k")
    states.add(snap(toks((5, 132))))  # shares a prefix with it, shorter: compared when the damaged one goes
    found, reach = states.best(long)
    assert found is not None and len(found.tokens) == 132 and reach == 128


def test_a_saved_snapshot_larger_than_the_memory_budget_is_not_used(tmp_path: Path) -> None:
    long = toks((5, MIN_SAVED_TOKENS))
    big = PrefixStates(10**6, tmp_path, key="k")
    big.add(Snapshot(long, bytes(5000)))
    big.flush()
    # prompt_cache_mb lowered since: the file cannot be held, so it is not offered.
    assert PrefixStates(3000, tmp_path, key="k").best(long) == (None, 0)


def test_a_saved_file_with_a_header_that_is_not_an_object_is_skipped(tmp_path: Path) -> None:
    from rag.llm.llama_cache import MAGIC

    (tmp_path / ("0" * 32 + SUFFIX)).write_bytes(MAGIC + b"[1, 2]\n" + bytes(100))
    assert len(PrefixStates(10**6, tmp_path, key="k")) == 0


def test_each_article_prompt_is_saved_once_not_once_per_question(tmp_path: Path) -> None:
    states = PrefixStates(10**8, tmp_path, key="k")
    states.add(snap(np.concatenate([ARTICLE, toks((7, MIN_SAVED_TOKENS)), toks((1, 5))])))
    states.flush()
    for question in (2, 3):  # the same article prompt, another question after it
        states.add(snap(np.concatenate([ARTICLE, toks((7, MIN_SAVED_TOKENS)), toks((question, 30))])))
        states.flush()
    assert len(list(tmp_path.glob("*" + SUFFIX))) == 1
