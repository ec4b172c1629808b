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

One context holds one prompt, so the calls of one question (answer, answer
check, translation) and questions in the other language would evict each
other's prefix. ``AlignedLlama`` therefore also keeps snapshots of the context
after recent prompts (``PrefixStates``) and restores the one sharing the longest
reusable prefix with a new prompt: an article shown whole before the question
is read once per language, then each question costs only its own tokens. Only
positions below a batch boundary are reused from a snapshot, as from the live
context, so the guarantee above holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Tokens per evaluation batch; cached prefixes are reused down to a multiple of it.
BATCH = 64
# Prompts shorter than this are not worth a snapshot (they read in about a second).
MIN_SNAPSHOT_TOKENS = 2 * BATCH


@dataclass(eq=False)  # compared by identity: list.remove must not compare token arrays
class Snapshot:
    """The context right after a prompt was read: its tokens and llama.cpp's state bytes
    (``data``; None while they are still only on disk, in ``path``)."""

    tokens: np.ndarray
    data: bytes | None
    path: Path | None = None
    size: int = 0
    used: bool = False  # being restored: not to be trimmed meanwhile

    def __post_init__(self) -> None:
        self.size = self.size or len(self.data or b"")


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def aligned(n: int) -> int:
    return n - n % BATCH


# Saved snapshot: MAGIC, one JSON line (key, token count, SHA-256 of what follows), the
# tokens (int32), the state bytes.
MAGIC = b"rag-prompt-state 1\n"
SUFFIX = ".state"
# Only prompts this long are saved to disk (each file is ~29 KB a token): shorter ones
# read in a few seconds, and every question would otherwise write one.
MIN_SAVED_TOKENS = 8 * BATCH


class PrefixStates:
    """Snapshots of recent prompts, least recently used dropped first past ``max_bytes``.

    A snapshot whose prompt is a prefix of a newer one's is dropped for it: the newer
    one serves every prompt the older one could. With a ``folder``, long prompts' snapshots
    are also saved there (atomically, checksummed, named by ``key`` and tokens) and
    found again by the next process with the same ``key`` (model file, llama.cpp
    version, batch): a restarted ``rag ask`` reads its article from disk, not anew.
    """

    def __init__(self, max_bytes: int, folder: Path | None = None, key: str = "") -> None:
        self.max_bytes = max_bytes
        self.folder = folder if max_bytes else None
        self.key = key
        self._items: list[Snapshot] = []  # most recently used last
        self._lock = threading.Lock()
        self._writers: list[threading.Thread] = []
        if self.folder is not None:
            self._items = self._saved()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return sum(s.size for s in self._items if s.data is not None)

    def best(self, tokens: np.ndarray) -> tuple[Snapshot | None, int]:
        """The snapshot reusable furthest into ``tokens``, and how far (a batch boundary)."""
        while True:
            with self._lock:
                scored = [(aligned(common_prefix(s.tokens, tokens)), i) for i, s in enumerate(self._items)]
                reach, i = max(scored, default=(0, -1))
                if not reach:
                    return None, 0
                snap = self._items.pop(i)
                self._items.append(snap)
            if snap.data is not None or self._load(snap):
                return snap, reach
            # not loadable: _load dropped it; look again

    def add(self, snap: Snapshot) -> None:
        if snap.size > self.max_bytes:
            return
        with self._lock:
            self._items = [s for s in self._items if not _extends(snap.tokens, s.tokens)]
            self._items.append(snap)
            self._trim()
        if self.folder is not None and self._worth_saving(snap):
            # Off the answer's path; not a daemon, so a short-lived `rag ask` still finishes it.
            writer = threading.Thread(target=self._save, args=(snap,), name="prompt-state-save")
            self._writers = [w for w in self._writers if w.is_alive()] + [writer]
            writer.start()

    def _worth_saving(self, snap: Snapshot) -> bool:
        """Long, and reaching MIN_SAVED_TOKENS further than any saved snapshot: with an
        article shown whole, the article's prompt is saved once, not once per question."""
        if len(snap.tokens) < MIN_SAVED_TOKENS:
            return False
        with self._lock:
            saved = [s for s in self._items if s.path is not None and s is not snap]
        return all(len(snap.tokens) - common_prefix(s.tokens, snap.tokens) >= MIN_SAVED_TOKENS for s in saved)

    def discard(self, snap: Snapshot) -> None:
        """Forget a snapshot llama.cpp could not restore, and delete its file."""
        with self._lock:
            self._items = [s for s in self._items if s is not snap]
        if snap.path is not None:
            with contextlib.suppress(OSError):
                snap.path.unlink()

    def flush(self) -> None:
        """Wait for snapshots being saved (tests; closing the model)."""
        for w in self._writers:
            w.join()

    def _trim(self) -> None:
        while self.nbytes > self.max_bytes:
            held = [s for s in self._items if s.data is not None and not s.used]
            if not held:
                return
            oldest = held[0]
            if oldest.path is not None:
                oldest.data = None  # saved: keep it findable on disk
            else:
                self._items.remove(oldest)

    # on disk ----------------------------------------------------------------------
    def _name(self, tokens: np.ndarray) -> str:
        digest = hashlib.sha256(self.key.encode() + b"\0" + tokens.astype("<i4").tobytes()).hexdigest()
        return digest[:32] + SUFFIX

    def _save(self, snap: Snapshot) -> None:
        assert self.folder is not None and snap.data is not None
        tokens = snap.tokens.astype("<i4").tobytes()
        header = {"key": self.key, "tokens": len(snap.tokens),
                  "sha256": hashlib.sha256(tokens + snap.data).hexdigest()}
        path = self.folder / self._name(snap.tokens)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as f:
                f.write(MAGIC + json.dumps(header).encode() + b"\n")
                f.write(tokens)
                f.write(snap.data)
            os.replace(tmp, path)
            snap.path = path
            self._prune_folder()
        except OSError as err:  # a cache: answering goes on without it
            log.warning("could not save a prompt state in %s (%s)", self.folder, err)
            with contextlib.suppress(OSError, UnboundLocalError):
                tmp.unlink()

    def _prune_folder(self) -> None:
        """Oldest files go first once the folder holds more than ``max_bytes``."""
        assert self.folder is not None
        total = 0
        for path in reversed(_by_age(self.folder.glob("*" + SUFFIX))):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
                if total > self.max_bytes:
                    path.unlink(missing_ok=True)
        # Left by a process killed while saving (an hour is far longer than any save).
        for tmp in self.folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > 3600:
                    tmp.unlink()

    def _saved(self) -> list[Snapshot]:
        """This key's saved snapshots (tokens only; the state is read when first used)."""
        assert self.folder is not None
        found = []
        if not self.folder.is_dir():
            return []
        for path in _by_age(self.folder.glob("*" + SUFFIX)):
            try:
                if path.stat().st_size > self.max_bytes + 64 * 1024**2:
                    continue
                with open(path, "rb") as f:
                    header = _header(f)
                    if header is None or header.get("key") != self.key:
                        continue
                    tokens = np.frombuffer(f.read(4 * int(header["tokens"])), dtype="<i4").astype(np.intc)
                if path.name != self._name(tokens):
                    continue
                found.append(Snapshot(tokens, None, path, path.stat().st_size))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def _load(self, snap: Snapshot) -> bool:
        """Read a saved snapshot's state, checking it; a damaged one is deleted, with a warning."""
        assert snap.path is not None
        try:
            raw = snap.path.read_bytes()
            body = raw.split(b"\n", 2)
            header = json.loads(body[1]) if raw.startswith(MAGIC) and len(body) == 3 else None
            header = header if isinstance(header, dict) else None
            payload = body[2] if header else b""
            n = 4 * len(snap.tokens)
            if header is None or hashlib.sha256(payload).hexdigest() != header.get("sha256") or len(payload) <= n:
                raise ValueError("checksum mismatch")
            if len(payload) - n > self.max_bytes:  # saved under a larger prompt_cache_mb
                raise ValueError("larger than llm.prompt_cache_mb")
            snap.data = payload[n:]
            snap.size = len(snap.data)
            with self._lock:
                snap.used = True  # the one being restored is not the one trimmed
                self._trim()
                snap.used = False
            return snap.data is not None
        except (OSError, ValueError) as err:
            log.warning("saved prompt state %s is damaged (%s): deleted; the prompt is read anew", snap.path, err)
            with contextlib.suppress(OSError):
                snap.path.unlink()
            with self._lock, contextlib.suppress(ValueError):
                self._items.remove(snap)
            return False


def _by_age(paths: Any) -> list[Path]:
    """Oldest first; a file another process deleted meanwhile is left out."""
    dated = []
    for p in paths:
        with contextlib.suppress(OSError):
            dated.append((p.stat().st_mtime_ns, p))
    return [p for _, p in sorted(dated)]


def _extends(new: np.ndarray, old: np.ndarray) -> bool:
    """``old`` is a prefix of ``new``."""
    return len(old) <= len(new) and common_prefix(old, new) == len(old)


def _header(f: Any) -> dict[str, Any] | None:
    if f.read(len(MAGIC)) != MAGIC:
        return None
    header = json.loads(f.readline())
    return header if isinstance(header, dict) else None


@lru_cache(maxsize=1)
def aligned_llama_class() -> type:
    """The ``llama_cpp.Llama`` subclass (built on first use: llama-cpp-python is optional)."""
    import llama_cpp
    from llama_cpp import Llama

    class AlignedLlama(Llama):  # type: ignore[misc]
        def __init__(
            self, *args: Any, prefix_cache_bytes: int = 0, prefix_cache_dir: Path | None = None, **kwargs: Any
        ) -> None:
            kwargs.setdefault("n_batch", BATCH)
            kwargs.setdefault("n_ubatch", kwargs["n_batch"])
            super().__init__(*args, **kwargs)
            # End of the last prompt evaluation: later positions hold generated tokens,
            # which were evaluated one at a time and so cannot be reused exactly.
            self._prompt_end = 0
            key = state_key(Path(kwargs["model_path"]), self.n_batch, self.n_ctx()) if prefix_cache_dir else ""
            self.prefix_states = PrefixStates(prefix_cache_bytes, prefix_cache_dir, key)

        def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            # Before llama-cpp-python matches the prompt against the live context: restore
            # a snapshot when it reaches further into this prompt.
            if self.prefix_states.max_bytes:
                wanted = np.asarray(tokens, dtype=np.intc)
                live = aligned(common_prefix(self.input_ids[: min(self.n_tokens, self._prompt_end)], wanted))
                snap, reach = self.prefix_states.best(wanted)
                if snap is not None and reach > live and not self._restore(snap):
                    self.prefix_states.discard(snap)
            return super().generate(tokens, *args, **kwargs)

        def _restore(self, snap: Snapshot) -> bool:
            """Load ``snap`` into the context; False (the context emptied) when llama.cpp refuses it."""
            data = snap.data
            if data is None:
                return False
            buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            if llama_cpp.llama_state_set_data(self._ctx.ctx, buffer, len(data)) != len(data):
                log.warning("llama.cpp could not restore a saved prompt state: dropped, the prompt is read anew")
                self.reset()  # what the context held is gone: nothing may be reused
                self._ctx.kv_cache_clear()
                self._prompt_end = 0
                return False
            n = len(snap.tokens)
            self.input_ids[:n] = snap.tokens
            self.n_tokens = self._prompt_end = n
            self._requires_eval = True
            return True

        def _snapshot(self) -> None:
            size = llama_cpp.llama_state_get_size(self._ctx.ctx)
            buffer = (ctypes.c_uint8 * size)()
            written = llama_cpp.llama_state_get_data(self._ctx.ctx, buffer, size)
            if not 0 < written <= size:
                return
            tokens = self.input_ids[: self.n_tokens].copy()
            self.prefix_states.add(Snapshot(tokens, ctypes.string_at(buffer, written)))

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
                if self.prefix_states.max_bytes and self.n_tokens >= MIN_SNAPSHOT_TOKENS:
                    self._snapshot()

    return AlignedLlama


def state_key(model_path: Path, batch: int, n_ctx: int) -> str:
    """What a saved prompt state is valid for: this model file (its SHA-256 when one was
    recorded beside it, else its size and time), this llama.cpp build, this batch size."""
    import llama_cpp

    stat = model_path.stat()
    sidecar = model_path.with_name(model_path.name + ".sha256")
    try:
        model = sidecar.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        model = f"{model_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    system = llama_cpp.llama_print_system_info().decode(errors="replace")  # CPU features: other kernels, other numbers
    return f"{model}|llama-cpp-python {llama_cpp.__version__}|{system}|batch {batch}|ctx {n_ctx}"
