"""llama.cpp prompt-cache reuse that keeps answers independent of earlier questions.

llama-cpp-python keeps the previous prompt in the KV cache and evaluates only
the part of a new prompt after the common prefix. That saves seconds per
question (the system prompt and often the first passage are shared), but the
suffix is then cut into batches at other positions than in a fresh evaluation,
and on CPU the logits differ in the last bits: greedy decoding then sometimes
picks another word. Measured: "Chi ha firmato l'accordo di mutua difesa?"
answered "Putin ha firmato…" in a fresh process but "Kim Jong-un ha firmato…"
after two other questions.

``AlignedLlama`` makes every prompt evaluation start at a multiple of the batch
size, re-evaluating the few cached tokens after the last boundary, so each
batch holds the same tokens as in a fresh evaluation: the answer depends on the
prompt alone, and most of the cache is still reused. (Batches of 64 tokens
evaluate as fast as 512 here: 79 vs 80 tokens/s on 2 cores.)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Tokens per evaluation batch; cached prefixes are reused down to a multiple of it.
BATCH = 64


@lru_cache(maxsize=1)
def aligned_llama_class() -> type:
    """The ``llama_cpp.Llama`` subclass (built on first use: llama-cpp-python is optional)."""
    from llama_cpp import Llama

    class AlignedLlama(Llama):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("n_batch", BATCH)
            kwargs.setdefault("n_ubatch", kwargs["n_batch"])
            super().__init__(*args, **kwargs)
            # End of the last prompt evaluation: later positions hold generated tokens,
            # which were evaluated one at a time and so cannot be reused exactly.
            self._prompt_end = 0

        def eval(self, tokens: Sequence[int]) -> None:
            # A prompt evaluation: after a reset (nothing cached) or after a prefix hit
            # (generate() sets _requires_eval); generated tokens come one at a time.
            prompt = self.n_tokens == 0 or getattr(self, "_requires_eval", False)
            if prompt and self.n_tokens:
                reusable = min(self.n_tokens, self._prompt_end)
                keep = reusable - reusable % self.n_batch
                tokens = [*self.input_ids[keep : self.n_tokens].tolist(), *tokens]
                self.n_tokens = keep
            super().eval(tokens)
            if prompt:
                self._prompt_end = self.n_tokens

    return AlignedLlama
