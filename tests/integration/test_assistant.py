"""Python API with the real embedding model and FAISS index."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Assistant, InvalidQuestionError, SearchHit
from tests.conftest import SEED, make_settings

SEED_NAME = SEED.name


def test_search_returns_typed_hits_with_spans(assistant: Assistant) -> None:
    hits = assistant.search("Chi ha firmato l'accordo?", k=4)
    assert len(hits) == 4 and all(isinstance(h, SearchHit) for h in hits)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits[0].score >= hits[-1].score
    doc = assistant.document_text(hits[0].doc_id)
    for h in hits:
        assert doc[h.span[0] : h.span[1]] == h.text
        assert h.title == "Un accordo di mutua difesa" and h.date == "2024-06"
        assert h.chunk_id.startswith(h.doc_id)


def test_english_question_finds_italian_passage(assistant: Assistant) -> None:
    hits = assistant.search("Which country do the United States accuse of sending missiles to Russia?", k=3)
    assert any("Gli Stati Uniti accusano la Corea del Nord" in h.text for h in hits)


@pytest.mark.parametrize("query", ["", "  ", "a" * 5000])
def test_bad_queries(assistant: Assistant, query: str) -> None:
    with pytest.raises(InvalidQuestionError):
        assistant.search(query)


def test_ingest_is_searchable_and_idempotent(home: Path, tmp_path: Path) -> None:
    a = Assistant(make_settings(home))
    a.index(progress=False)
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "a.txt").write_text(
        "date 2025-01 Neve a Torino\n\nUna forte nevicata ha bloccato il traffico a Torino.\n"
    )
    (folder / "b.md").write_text("# Elezioni in Sardegna\n\nLa candidata Rossi ha vinto le elezioni regionali.\n")
    (folder / "skip.pdf").write_text("ignored: not an article type")
    report = a.ingest([folder])
    assert sorted(d.title for d in report.added) == ["Elezioni in Sardegna", "Neve a Torino"]
    assert not report.errors
    assert "nevicata" in a.search("Where did the snow block traffic?", k=1)[0].text
    again = a.ingest([folder / "a.txt"])
    assert not again.added and len(again.unchanged) == 1
    titles = {d["title"]: d for d in a.documents()}
    assert titles["Neve a Torino"]["date"] == "2025-01" and titles["Neve a Torino"]["passages"] == 1
    assert len(list((home / "docs_store").iterdir())) == 3


def test_ingest_reports_bad_files_and_keeps_good_ones(home: Path, tmp_path: Path) -> None:
    a = Assistant(make_settings(home))
    good = tmp_path / "ok.txt"
    good.write_text("Titolo valido\n\nUn articolo valido sul porto di Genova.\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa not utf8")
    too_long = tmp_path / ("x" * 300 + ".txt")  # the file system refuses the name itself
    report = a.ingest([good, bad, tmp_path / "missing.md", too_long])
    assert [d.title for d in report.added] == ["Titolo valido"]
    assert len(report.errors) == 3 and any("UTF-8" in str(e) for e in report.errors)
    assert any("no such file" in str(e) for e in report.errors)
    assert any("cannot be opened" in str(e) and "too long" in str(e) for e in report.errors)


def test_unwritable_store_is_reported_not_a_traceback(tmp_path: Path) -> None:
    from rag.corpus.ingest import ingest_paths

    src = tmp_path / "ok.txt"
    src.write_text("Titolo valido\n\nUn articolo valido sul porto di Genova.\n")
    not_a_folder = tmp_path / "store"
    not_a_folder.write_text("a file where the store should be")
    report = ingest_paths([src], not_a_folder, set(), 1_000_000)
    assert not report.added and len(report.errors) == 1 and "could not be copied" in str(report.errors[0])


def test_reingesting_never_overwrites_an_edited_stored_copy(home: Path, tmp_path: Path) -> None:
    a = Assistant(make_settings(home))
    src = tmp_path / "porto.txt"
    src.write_text("Il porto di Genova\n\nLe navi sono ripartite dal porto di Genova.\n")
    stored = Path(a.ingest([src]).added[0].source)
    stored.write_text(stored.read_text() + "Aggiunta dell'utente.\n")  # edited in place
    again = a.ingest([src])  # the original is new again: its content is no longer in the store
    assert len(again.added) == 1 and Path(again.added[0].source) != stored
    assert "Aggiunta dell'utente." in stored.read_text()


def test_title_from_file_name_survives_a_restart(home: Path, tmp_path: Path) -> None:
    """An article without a title line is titled by its file name, before and after
    it is copied into the store (whose file names carry an id suffix)."""
    src = tmp_path / "Furto_in_centro à Modena.txt"
    src.write_text("Ieri sera due uomini hanno rubato una bicicletta davanti alla stazione di Modena.\n")
    a = Assistant(make_settings(home))
    assert [d.title for d in a.ingest([src]).added] == ["Furto in centro à Modena"]
    stored = [p.name for p in (home / "docs_store").iterdir() if p.name.startswith("Furto")]
    assert len(stored) == 1 and stored[0].endswith(".txt")
    restarted = Assistant(make_settings(home))
    assert "Furto in centro à Modena" in {d["title"] for d in restarted.documents()}
    hit = restarted.search("bicicletta rubata alla stazione", k=1)[0]
    assert hit.title == "Furto in centro à Modena"

    # Characters file names cannot hold are dropped from the title at once, not after a restart.
    odd = tmp_path / "Rapina: in centro?.txt"
    odd.write_text("Due uomini armati hanno rapinato una gioielleria nel centro di Modena.\n")
    assert [d.title for d in restarted.ingest([odd]).added] == ["Rapina in centro"]
    assert "Rapina in centro" in {d["title"] for d in Assistant(make_settings(home)).documents()}


def test_document_text_of_a_moved_file(home: Path) -> None:
    a = Assistant(make_settings(home))
    doc_id = a.search("Kim Jong-un", k=1)[0].doc_id
    text = a.document_text(doc_id)
    assert text.lstrip().startswith("date 2024-06 Un accordo di mutua difesa")
    (home / "docs_store" / SEED_NAME).rename(home / "docs_store" / "moved.txt")
    assert a.document_text(doc_id) == text  # the index still names the old file: found by content
    with pytest.raises(KeyError):
        a.document_text("0" * 16)


ZEBRA = "date 2024-07 Una zebra albina allo zoo\n\nAllo zoo di Torino è nata Gigi, una zebra albina.\n"


def test_article_added_by_another_process_is_searchable_once_added_here(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "zebra.txt"
    src.write_text(ZEBRA)
    ui = Assistant(make_settings(home))
    ui.index(progress=False)
    Assistant(make_settings(home)).ingest([src])  # e.g. `rag ingest` in a terminal meanwhile
    report = ui.ingest([src])
    assert not report.added and len(report.unchanged) == 1
    assert "zebra albina" in ui.search("zebra albina allo zoo", k=1)[0].text  # "already loaded" = searchable


def test_failed_index_save_keeps_the_article_and_heals(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from rag import IndexWriteError, RagError
    from rag.search import stores

    src = tmp_path / "zebra.txt"
    src.write_text(ZEBRA)
    a = Assistant(make_settings(home))
    a.index(progress=False)
    if (saver := a.retriever.saver) is not None:  # type: ignore[attr-defined]  # BM25 saved before the disk fills
        saver.join()

    real_replace = os.replace

    def disk_full(src: str, dst: str) -> None:  # the index's disk only: the store copy succeeds
        if Path(dst).parent == home / "index":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(stores.os, "replace", disk_full)
    with pytest.raises(IndexWriteError, match="No space left on device") as info:
        a.ingest([src])
    assert isinstance(info.value, RagError) and "articles in the store are kept" in str(info.value)
    assert not [p.name for p in (home / "index").iterdir() if ".tmp-" in p.name]  # no debris
    assert any("zebra" in p.name for p in (home / "docs_store").iterdir())  # the copy is kept
    assert "Un accordo di mutua difesa" in {d["title"] for d in a.documents()}  # the old index still works

    monkeypatch.setattr(stores.os, "replace", real_replace)  # space freed
    again = a.ingest([src])
    assert not again.added and len(again.unchanged) == 1
    assert "zebra albina" in a.search("zebra albina allo zoo", k=1)[0].text


def test_articles_added_or_removed_by_another_process_are_seen_without_restart(home: Path, tmp_path: Path) -> None:
    page = Assistant(make_settings(home))  # say, the chat page
    page.index(progress=False)
    cli = Assistant(make_settings(home))  # say, `rag ingest` / `rag remove` in another terminal
    src = tmp_path / "zebra.txt"
    src.write_text(ZEBRA)
    added = cli.ingest([src]).added
    assert "zebra albina" in page.search("zebra albina allo zoo", k=1)[0].text
    cli.remove([added[0].doc_id])
    assert all("zebra" not in h.text for h in page.search("zebra albina allo zoo", k=3))
    assert {d["title"] for d in page.documents()} == {"Un accordo di mutua difesa"}
