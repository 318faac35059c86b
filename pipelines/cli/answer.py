"""``kgrag ask`` (one answer, with citations and provenance) and ``kgrag serve`` (the HTTP API)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from core.console import console
from core.errors import InputError
from pipelines.answer.service import check_question
from pipelines.cli.common import StoreOption, settings_for
from pipelines.compose.answer import build_answer_service
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store
from pipelines.compose.tracing import tracing_for


def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the full answer record as JSON.")] = False,
) -> None:
    """Answer one question from the store, with citations and provenance."""
    settings = settings_for(store)
    if not question.strip():
        raise InputError("the question is empty", hint='pass a question: kgrag ask "What is ...?"')
    question = check_question(question, settings.api.max_question_chars)  # before loading anything
    err = console(stderr=True)
    with tracing_for(settings) as tracing:
        with err.status("loading"):
            embedder = load_embedder(settings)
            knowledge = open_store(settings, embedder, create=False)
            service = build_answer_service(settings, knowledge, embedder, tracing=tracing)
        with err.status("answering (retrieve, generate, gate)"):
            record = service.answer(question)
    if json_out:
        print(record.model_dump_json(indent=2))
        return
    out = console()
    gate = record.provenance.gate
    out.print(f"[bold]{record.answer}[/]\n")
    for n, c in enumerate(record.citations, start=1):
        out.print(f"[cyan][{n}][/] {c.source} chars {c.start}-{c.end}: {c.text[:160]!r}")
    for f in record.facts[:5]:
        out.print(f"[magenta]fact[/] ({f.subject}) -[{f.predicate}]-> ({f.object})  from chunk {f.chunk_id}")
    scores = ", ".join(f"{k}={v:.2f}" for k, v in gate.scores.model_dump().items() if v is not None) or "none"
    out.print(f"\ngate: [bold]{gate.decision}[/] ({scores}) {gate.reason}")
    p = record.provenance
    out.print(
        f"prompt {p.prompt.name} v{p.prompt.version} ({p.prompt.sha256[:12]}), model {p.model}, "
        f"workflow {p.workflow.name} v{p.workflow.version}, answer id {record.answer_id}"
    )
    out.print("steps: " + ", ".join(f"{t.step} {t.duration_ms / 1000:.2f}s" for t in p.trace))


def serve(
    store: StoreOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the HTTP API (POST /v1/answer, GET /healthz, OpenAPI at /docs)."""
    import uvicorn

    settings = settings_for(store)
    if store is not None:
        os.environ["KGRAG_STORE_DIR"] = str(store)  # the app factory builds its settings from the environment
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level="info",
        # After SIGTERM the app gives answers in flight the grace period, then stops them; this is the backstop.
        timeout_graceful_shutdown=int(settings.api.shutdown_grace_s) + 5,
    )
