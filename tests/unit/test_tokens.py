import hashlib
from pathlib import Path

import tiktoken

from rag.provision.tiktoken_cache import seed_tiktoken_cache
from rag.text.tokens import cache_file_name


def test_cache_names_are_sha1_of_url() -> None:
    assert cache_file_name("cl100k_base") == "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    assert cache_file_name("o200k_base") == "fb374d419588a4632f3f557e76b4b70aebbca790"


def test_seeding_makes_tiktoken_work_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    # A network call would fail loudly: make any download attempt an error.
    import tiktoken.load as tl

    monkeypatch.setattr(tl, "read_file", lambda *_: (_ for _ in ()).throw(AssertionError("download attempted")))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    seed_tiktoken_cache(tmp_path)
    f = tmp_path / cache_file_name("cl100k_base")
    assert hashlib.sha256(f.read_bytes()).hexdigest().startswith("223921b7")
    tiktoken.registry.ENCODINGS.pop("cl100k_base", None)
    enc = tiktoken.get_encoding("cl100k_base")
    assert enc.decode(enc.encode("Putin ha firmato un accordo")) == "Putin ha firmato un accordo"
    mtime = f.stat().st_mtime_ns
    seed_tiktoken_cache(tmp_path)  # idempotent: a good file is left alone
    assert f.stat().st_mtime_ns == mtime


def test_corrupt_cache_file_is_replaced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    f = tmp_path / cache_file_name("o200k_base")
    f.write_bytes(b"garbage")
    seed_tiktoken_cache(tmp_path)
    assert hashlib.sha256(f.read_bytes()).hexdigest().startswith("446a9538")
