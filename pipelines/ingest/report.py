"""The run report of an ingestion: what changed, what was skipped and why, how long each stage took.

Saved as JSON in the store (``reports/<run id>.json`` and ``reports/latest.json``) for every run, failed ones too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pipelines.store.layout import LATEST_REPORT

#: The report's counts that go into a run's span.
_COUNTED = {
    "documents_added",
    "documents_changed",
    "documents_unchanged",
    "documents_deleted",
    "chunks_embedded",
    "chunks_reused",
    "chunks_removed",
    "chunks_extracted",
    "extraction_cache_hits",
    "extraction_failures",
    "facts_added",
    "facts_removed",
}


class SkippedItem(BaseModel):
    """A source that was not ingested, with the reason."""

    source: str
    reason: str


class IngestReport(BaseModel):
    """What one ingestion (or deletion) run did."""

    run_id: str = ""
    command: str = "ingest"
    status: Literal["ok", "partial", "failed", "running"] = "running"
    error: str | None = None
    started_at: str = ""
    finished_at: str = ""
    extractor: str = ""
    engine: str = Field(default="local", description="Where parsing, chunking and embedding ran: local or ray.")
    previous_snapshot_id: str | None = None
    snapshot_id: str | None = None
    changed_anything: bool = False
    lock_taken_over_from: int | None = Field(default=None, description="Pid of a dead run whose lock was taken over.")
    documents_added: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    deleted_documents: list[str] = Field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = Field(default=0, description="Chunks of changed documents kept with their vectors.")
    chunks_removed: int = 0
    chunks_extracted: int = Field(default=0, description="Chunks sent to the extractor (cache misses).")
    extraction_cache_hits: int = 0
    extraction_failures: int = 0
    prompt_tokens: int = Field(default=0, description="Prompt tokens of the extractor's model calls (0 offline).")
    completion_tokens: int = Field(default=0, description="Completion tokens of those calls (cache hits cost none).")
    facts_added: int = 0
    facts_removed: int = 0
    entities_before: int = 0
    entities_after: int = 0
    extraction_errors: list[SkippedItem] = Field(default_factory=list)
    skipped: list[SkippedItem] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    durations_s: dict[str, float] = Field(default_factory=dict)
    totals: dict[str, int] = Field(default_factory=dict)

    def span_attributes(self) -> dict[str, str | int]:
        """The run's span attributes (``kgrag.ingest.*``): status, engine, snapshots and counts."""
        counts = self.model_dump(include=_COUNTED)
        return {
            "kgrag.ingest.status": self.status,
            "kgrag.ingest.engine": self.engine,
            "kgrag.ingest.extractor": self.extractor,
            "kgrag.ingest.skipped": len(self.skipped),
            "kgrag.ingest.snapshot_id": self.snapshot_id or "",
            "kgrag.ingest.previous_snapshot_id": self.previous_snapshot_id or "",
            **{f"kgrag.ingest.{k}": v for k, v in counts.items()},
        }

    @property
    def documents_ingested(self) -> int:
        return self.documents_added + self.documents_changed

    def summary_lines(self) -> list[str]:
        """A human summary, one fact per line (rich markup)."""
        lines = [
            f"documents: {self.documents_added} added, {self.documents_changed} changed, "
            f"{self.documents_unchanged} unchanged, {self.documents_deleted} deleted",
            f"chunks: {self.chunks_embedded} embedded, {self.chunks_reused} reused, {self.chunks_removed} removed; "
            f"extraction: {self.chunks_extracted} extracted, {self.extraction_cache_hits} from cache, "
            f"{self.extraction_failures} failed",
            f"model tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion "
            f"({self.extractor or 'no'} extractor)",
            f"graph facts: {self.facts_added} added, {self.facts_removed} removed",
            f"snapshot: {self.snapshot_id or '(none)'}"
            + (" (new)" if self.snapshot_id != self.previous_snapshot_id else " (unchanged)"),
            "durations: "
            + ", ".join(f"{k} {v:.2f}s" for k, v in self.durations_s.items())
            + f" ({self.engine} engine)",
        ]
        if self.totals:
            lines.append("totals: " + ", ".join(f"{k}={v}" for k, v in self.totals.items()))
        if self.lock_taken_over_from is not None:
            lines.append(f"[yellow]took over the stale lock of pid {self.lock_taken_over_from}[/]")
        lines += [f"[yellow]note[/] {n}" for n in self.notes]
        lines += [f"[yellow]skipped[/] {i.source}: {i.reason}" for i in self.skipped]
        lines += [f"[yellow]extraction failed[/] {i.source}: {i.reason}" for i in self.extraction_errors]
        return lines


def save_report(folder: Path, report: IngestReport) -> Path:
    """Write ``<run id>.json`` and replace ``latest.json`` atomically; return the run's file."""
    folder.mkdir(parents=True, exist_ok=True)
    text = report.model_dump_json(indent=2)
    path = folder / f"{report.run_id}.json"
    path.write_text(text, "utf-8")
    tmp = folder / ".latest.json.tmp"
    tmp.write_text(text, "utf-8")
    os.replace(tmp, folder / LATEST_REPORT)
    return path
