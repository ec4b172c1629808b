"""Answers must not depend on what was asked before (rag/llama_cache.py), with the real GGUF model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_GGUF
from rag.llm.llama_cache import BATCH, aligned_llama_class

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "docs_store"


def _last_logits_cold_and_warm(llama_class: type) -> tuple[np.ndarray, np.ndarray]:
    """Logits after a 600-token prompt: evaluated fresh, and again after a prompt sharing 310 tokens."""
    path = REPO / DEFAULT_GGUF
    if not path.is_file():
        pytest.fail("the embedded chat model is not prepared (run the README set-up)")
    llm = llama_class(model_path=str(path), n_ctx=2048, n_threads=2, n_batch=BATCH, n_ubatch=BATCH,
                      logits_all=True, verbose=False)
    text = next(SEED.glob("*.txt")).read_text(encoding="utf-8")
    tokens = llm.tokenize(text.encode())
    assert len(tokens) > 600
    prompt = tokens[:600]
    other = tokens[:310] + llm.tokenize(b" Un altro seguito, del tutto diverso.", add_bos=False)

    def last(p: list[int]) -> np.ndarray:
        next(llm.generate(p, temp=0.0))  # evaluates the prompt, reusing what the cache shares with it
        return llm.scores[len(p) - 1].copy()

    cold = last(prompt)
    last(other)
    return cold, last(prompt)


def test_prompt_cache_reuse_gives_the_same_logits() -> None:
    cold, warm = _last_logits_cold_and_warm(aligned_llama_class())
    assert np.array_equal(cold, warm)


def test_plain_llama_cpp_reuse_changes_the_logits() -> None:
    # Why AlignedLlama exists (and proof the test above can fail): with llama-cpp-python's own
    # prefix reuse the same prompt gets other logits. If this starts failing after an upgrade,
    # llama.cpp has become exact and AlignedLlama can go.
    from llama_cpp import Llama

    cold, warm = _last_logits_cold_and_warm(Llama)
    assert not np.array_equal(cold, warm)


def test_snapshots_in_memory_and_on_disk_give_the_same_logits(tmp_path: Path) -> None:
    """An article read once, then a question after it: the same logits read fresh, after another
    prompt evicted it (restored from memory), and in a new process (restored from disk)."""
    path = REPO / DEFAULT_GGUF
    if not path.is_file():
        pytest.fail("the embedded chat model is not prepared (run the README set-up)")
    llama_class = aligned_llama_class()

    def load(cache_mb: int) -> object:
        return llama_class(model_path=str(path), n_ctx=2048, n_threads=2, logits_all=True, verbose=False,
                           prefix_cache_bytes=cache_mb * 2**20, prefix_cache_dir=tmp_path if cache_mb else None)

    text = next(SEED.glob("*.txt")).read_text(encoding="utf-8")
    plain = load(0)
    article = plain.tokenize(text.encode())[:560]
    question = plain.tokenize(b" Chi ha firmato?", add_bos=False)
    other = plain.tokenize(b"Una domanda del tutto diversa, senza l'articolo.")

    def last(llm: object, p: list[int]) -> np.ndarray:
        next(llm.generate(p, temp=0.0))
        return llm.scores[len(p) - 1].copy()

    fresh = last(plain, article + question)
    plain.close()
    cached = load(256)
    last(cached, article)  # read once: snapshot kept and saved
    last(cached, other)  # the live context now holds another prompt
    assert np.array_equal(last(cached, article + question), fresh)
    cached.prefix_states.flush()
    cached.close()
    assert list(tmp_path.glob("*.state"))
    restarted = load(256)
    found, reach = restarted.prefix_states.best(np.asarray(article + question, dtype=np.intc))
    assert found is not None and reach >= 512
    assert np.array_equal(last(restarted, article + question), fresh)
    restarted.close()
