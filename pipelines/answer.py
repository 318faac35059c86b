"""The answer workflow: retrieve and fetch graph context (concurrently), assemble the versioned prompt, generate,
gate, and record the provenance before the answer is returned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel

from core.errors import InputError
from core.llm import ModelClient
from core.types import (
    AnswerRecord,
    Fact,
    FactCitation,
    GateRecord,
    GraphContext,
    Provenance,
    RetrievalRef,
    RetrievedChunk,
    WorkflowRef,
)
from evals.base import AnswerGate
from kg.graph_context import GraphContextBuilder
from pipelines.audit_store import AuditStore
from pipelines.citations import align_citations
from pipelines.workflow import CompiledWorkflow, RetryPolicy, Workflow
from prompts.base import PromptRegistry, RenderedPrompt
from prompts.constants import ABSTENTION_TEXT
from retrieval.base import ChunkStore, Retriever

WORKFLOW_NAME = "answer"
WORKFLOW_VERSION = "1"
REVIEW_TEXT = "This answer is being held for human review before release."


class Passages(BaseModel):
    """Chunks found by retrieval."""

    items: list[RetrievedChunk]


class GraphFindings(BaseModel):
    """Graph context and the chunks it points to."""

    context: GraphContext
    chunks: list[RetrievedChunk]


class AssembledContext(BaseModel):
    """The rendered prompt and exactly the passages and facts it shows the model, in citation order."""

    prompt: RenderedPrompt
    passages: list[RetrievedChunk]
    facts: list[Fact]


class Generation(BaseModel):
    """The model's draft answer."""

    text: str
    model: str


class GateOutcome(BaseModel):
    """The gate's record for the draft."""

    record: GateRecord


class RetrieveStep:
    """Hybrid retrieval of the top passages for the question."""

    def __init__(self, retriever: Retriever, top_k: int) -> None:
        self.retriever = retriever
        self.top_k = top_k

    def run(self, question: str) -> Passages:
        return Passages(items=self.retriever.retrieve(question, top_k=self.top_k))


class GraphContextStep:
    """Entities linked from the question, their facts, and the chunks that mention them."""

    def __init__(self, builder: GraphContextBuilder, chunks: ChunkStore) -> None:
        self.builder = builder
        self.chunks = chunks

    def run(self, question: str) -> GraphFindings:
        context = self.builder.build(question)
        found = self.chunks.get_chunks(context.chunk_ids)
        ranked = [found[cid] for cid in context.chunk_ids if cid in found]
        hits = [
            RetrievedChunk(chunk=c, score=round(1.0 / (rank + 1), 6), method="graph") for rank, c in enumerate(ranked)
        ]
        return GraphFindings(context=context, chunks=hits)


class AssembleContextStep:
    """Fit retrieved passages, graph passages and graph facts into the production answer prompt."""

    def __init__(self, registry: PromptRegistry, label: str, graph_chunks: int, max_facts: int) -> None:
        self.registry = registry
        self.label = label
        self.graph_chunks = graph_chunks
        self.max_facts = max_facts

    def run(
        self,
        question: str,
        passages: list[RetrievedChunk],
        graph: GraphContext,
        graph_chunks: list[RetrievedChunk],
    ) -> AssembledContext:
        chosen = list(passages)
        seen = {p.chunk.id for p in chosen}
        for hit in graph_chunks:
            if len(chosen) >= len(passages) + self.graph_chunks:
                break
            if hit.chunk.id not in seen:
                chosen.append(hit)
                seen.add(hit.chunk.id)
        number = {p.chunk.id: n for n, p in enumerate(chosen, start=1)}
        facts = sorted(graph.facts, key=lambda f: f.chunk_id not in number)[: self.max_facts]
        template = self.registry.resolve("answer", self.label)
        prompt = self.registry.render(
            template,
            question=question,
            passages=[{"n": n, "title": p.chunk.title, "text": p.chunk.text} for n, p in enumerate(chosen, start=1)],
            facts=[
                {
                    "subject": f.subject,
                    "predicate": f.predicate,
                    "object": f.object,
                    "n": number.get(f.chunk_id),
                }
                for f in facts
            ],
        )
        return AssembledContext(prompt=prompt, passages=chosen, facts=facts)


class GenerateStep:
    """Ask the configured model for the answer."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client

    def run(self, prompt: RenderedPrompt) -> Generation:
        result = self.client.chat(prompt.as_messages())
        return Generation(text=result.text.strip(), model=result.model)


class GateStep:
    """Score the draft before release."""

    def __init__(self, gate: AnswerGate) -> None:
        self.gate = gate

    def run(self, question: str, text: str, passages: list[RetrievedChunk]) -> GateOutcome:
        return GateOutcome(record=self.gate.evaluate(question, text, [p.chunk.text for p in passages]))


class AnswerService:
    """Answers questions through the declared answer workflow and stores each record before returning it."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        graph_context: GraphContextBuilder,
        chunks: ChunkStore,
        registry: PromptRegistry,
        client: ModelClient,
        gate: AnswerGate,
        audit: AuditStore,
        prompt_label: str = "production",
        top_k: int = 5,
        graph_chunks: int = 2,
        max_facts: int = 10,
        max_question_chars: int = 2000,
        model_timeout_s: float = 600.0,
        gate_timeout_s: float = 1200.0,
    ) -> None:
        self.audit = audit
        self.max_question_chars = max_question_chars
        self.workflow: CompiledWorkflow = (
            Workflow(WORKFLOW_NAME, WORKFLOW_VERSION, inputs={"question": str})
            .step("retrieve", RetrieveStep(retriever, top_k), timeout_s=60)
            .step("graph_context", GraphContextStep(graph_context, chunks), timeout_s=60)
            .step(
                "assemble",
                AssembleContextStep(registry, prompt_label, graph_chunks, max_facts),
                bind={
                    "passages": "retrieve.items",
                    "graph": "graph_context.context",
                    "graph_chunks": "graph_context.chunks",
                },
            )
            .step(
                "generate",
                GenerateStep(client),
                bind={"prompt": "assemble.prompt"},
                retry=RetryPolicy(attempts=2, wait_s=1.0),
                timeout_s=model_timeout_s,
            )
            .step(
                "gate",
                GateStep(gate),
                bind={"text": "generate.text", "passages": "assemble.passages"},
                timeout_s=gate_timeout_s,
            )
            .build()
        )

    def validate_question(self, question: str) -> str:
        cleaned = question.strip() if isinstance(question, str) else ""
        if not cleaned:
            raise InputError("the question is empty", hint="ask a question in plain words")
        if len(cleaned) > self.max_question_chars:
            raise InputError(
                f"the question is {len(cleaned)} characters long; the limit is {self.max_question_chars}",
                hint="shorten the question",
            )
        return cleaned

    def answer(self, question: str) -> AnswerRecord:
        """Answer one question; the returned record has already been written to the audit store."""
        question = self.validate_question(question)
        run = self.workflow.run({"question": question})
        assembled = run.output("assemble", AssembledContext)
        generation = run.output("generate", Generation)
        gate = run.output("gate", GateOutcome).record
        if gate.decision == "released":
            text, citations = align_citations(generation.text, assembled.passages)
        elif gate.decision == "review":
            text, citations = REVIEW_TEXT, []
        else:
            text, citations = ABSTENTION_TEXT, []
        record = AnswerRecord(
            answer_id=uuid.uuid4().hex,
            question=question,
            answer=text,
            citations=citations,
            facts=[
                FactCitation(subject=f.subject, predicate=f.predicate, object=f.object, chunk_id=f.chunk_id)
                for f in assembled.facts
            ],
            provenance=Provenance(
                prompt=assembled.prompt.template,
                workflow=WorkflowRef(name=self.workflow.name, version=self.workflow.version),
                model=generation.model,
                retrieval=[
                    RetrievalRef(chunk_id=p.chunk.id, score=round(p.score, 6), method=p.method)
                    for p in assembled.passages
                ],
                gate=gate,
                trace=run.trace,
                draft=generation.text,
            ),
            created_at=datetime.now(UTC).isoformat(),
        )
        self.audit.save(record)
        return record
