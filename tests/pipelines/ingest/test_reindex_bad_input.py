"""Bad input during a run: each bad file is reported with its reason and the run goes on; the CLI's exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.pipelines.cli.test_main import kgrag
from tests.pipelines.ingest.pdfmaker import write_pdf
from tests.pipelines.ingest.reindex_helpers import run_ingest, write_v1


def test_every_kind_of_bad_input_is_reported_and_the_rest_ingested(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (src / "good.txt").write_text("Helena Vos manages the Utrecht office of Northwind Robotics.", "utf-8")
    write_pdf(src / "good.pdf", ["Tomas Reyes leads the Lisbon lab."])
    (src / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (src / "latin1.md").write_bytes("r\xe9sum\xe9 of Zo\xeb".encode("latin-1"))
    (src / "empty.txt").write_text("", "utf-8")
    (src / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    (src / "records.jsonl").write_text('{"id": "r1", "text": "Ingrid Berg works in Oslo."}\n{not json\n', "utf-8")
    with (src / "huge.txt").open("wb") as handle:  # 200 MB, sparse: nothing is written or read
        handle.truncate(200 * 1024 * 1024)
    (outside / "secret.txt").write_text("Outside the root.", "utf-8")
    os.symlink(outside / "secret.txt", src / "escape.txt")
    os.symlink(src / "loop-b.txt", src / "loop-a.txt")
    os.symlink(src / "loop-a.txt", src / "loop-b.txt")
    os.symlink(src, src / "again")
    os.symlink(src / "good.txt", src / "alias.txt")  # a link inside the root is fine
    store, report = run_ingest(tmp_path / "store", embedder, [src])
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.md"]
    assert "empty" in reasons["empty.txt"]
    assert "unreadable PDF" in reasons["broken.pdf"]
    assert "invalid JSON" in reasons["records.jsonl:2"]
    assert (
        "200.0 MB, over the 64.0 MB limit" in reasons["huge.txt"]
        and "KGRAG_INGEST__MAX_FILE_BYTES" in reasons["huge.txt"]
    )
    assert "outside the source root" in reasons["escape.txt"]
    assert reasons["loop-a.txt"] == reasons["loop-b.txt"] == "symbolic link loop"
    assert "loop" in reasons["again"]
    assert report.status == "partial"
    assert sorted(store.chunks.document_hashes()) == ["alias.txt", "good.pdf", "good.txt", "r1"]


def test_cli_sync_delete_and_exit_codes(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    first = kgrag("ingest", str(src), "--store", str(store), "--sync", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["documents_added"] == 3
    (src / "old.txt").unlink()
    synced = kgrag("ingest", str(src), "--store", str(store), "--sync")
    assert synced.returncode == 0, synced.stderr
    assert "0 added, 0 changed, 2 unchanged, 1 deleted" in synced.stdout
    assert "graph facts:" in synced.stdout and "durations:" in synced.stdout
    missing = kgrag("delete", "old.txt", "--store", str(store))
    assert missing.returncode == 2 and "no document 'old.txt'" in missing.stderr and "fix:" in missing.stderr
    deleted = kgrag("delete", "team.txt", "--store", str(store), "--json")
    assert deleted.returncode == 0, deleted.stderr
    report = json.loads(deleted.stdout)
    assert report["deleted_documents"] == ["team.txt"] and report["totals"]["documents"] == 1
    latest = json.loads((store / "reports" / "latest.json").read_text("utf-8"))
    assert latest["run_id"] == report["run_id"] and latest["command"] == "delete"
