"""The answer workflow: check the question against the prompt's guardrails, retrieve and fetch graph context
(concurrently), assemble the versioned prompt, generate, gate (output guardrails first), retry with the strict prompt
if the gate failed, and record the provenance before the answer is returned.

The workflow itself is declared in ``pipelines/workflows/answer.yaml``; this module supplies its components.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel

from core.errors import InputError
from core.llm import ModelClient
from core.types import (
    AnswerRecord,
    ConversationRef,
    Fact,
    FactCitation,
    GateRecord,
    GraphContext,
    GuardrailViolation,
    Provenance,
    RetrievalRef,
    RetrievedChunk,
    WorkflowRef,
)
from evals.base import AnswerGate
from kg.graph_context import GraphContextBuilder
from pipelines.audit_store import AuditStore
from pipelines.auto_rollback import AutoRollback
from pipelines.citations import align_citations
from pipelines.gate_decision import finalise as finalise_gate
from pipelines.workflow import CompiledWorkflow, WorkflowRun
from pipelines.workflow_spec import WorkflowSpec, default_workflows_dir
from prompts.abstention import is_abstention
from prompts.base import PromptRegistry, RenderedPrompt
from prompts.constants import ABSTENTION_TEXT
from prompts.guardrails import Guardrails, summarise
from retrieval.base import ChunkStore, Retriever
from retrieval.context import ContextAssembler

WORKFLOW_NAME = "answer"
REVIEW_TEXT = "This answer is being held for human review before release."
BLOCKED_TEXT = "This question was blocked by a guardrail and was not answered."
STRICT_STEPS = ("assemble_strict", "generate_strict", "gate_strict")


class GuardedQuestion(BaseModel):
    """The question after the input guardrails (possibly sanitised) and what they found."""

    question: str
    violations: list[GuardrailViolation]
    blocked: bool


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
    violations: list[GuardrailViolation] = []


class Generation(BaseModel):
    """The model's draft answer."""

    text: str
    model: str


class GateOutcome(BaseModel):
    """The gate's record for the draft, the output guardrails that fired, and whether a strict retry may help."""

    record: GateRecord
    violations: list[GuardrailViolation] = []
    retryable: bool = False


class GuardInputStep:
    """Input guardrails on the question: a blocking violation stops retrieval and generation (branch)."""

    def __init__(self, guardrails: Guardrails | None) -> None:
        self.guardrails = guardrails

    def run(self, question: str) -> GuardedQuestion:
        if self.guardrails is None:
            return GuardedQuestion(question=question, violations=[], blocked=False)
        check = self.guardrails.check_question(question)
        return GuardedQuestion(question=check.question, violations=check.violations, blocked=check.blocked)


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

    def __init__(
        self,
        registry: PromptRegistry,
        label: str,
        graph_chunks: int,
        max_facts: int,
        *,
        prompt: str = "answer",
        guardrails: Guardrails | None = None,
        assembler: ContextAssembler | None = None,
    ) -> None:
        self.registry = registry
        self.label = label
        self.graph_chunks = graph_chunks
        self.max_facts = max_facts
        self.prompt = prompt
        self.guardrails = guardrails
        self.assembler = assembler

    def run(
        self,
        question: str,
        request_id: str,
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
        violations: list[GuardrailViolation] = []
        if self.guardrails is not None:
            kept = []
            for hit in chosen:
                found = self.guardrails.check_passage(hit.chunk.id, hit.chunk.text)
                violations += found
                if not any(v.action in ("sanitise", "block") for v in found):
                    kept.append(hit)
            chosen = [] if any(v.action == "block" for v in violations) else kept
        number = {p.chunk.id: n for n, p in enumerate(chosen, start=1)}
        facts = [f for f in graph.facts if f.chunk_id in number or not violations]
        facts = sorted(facts, key=lambda f: f.chunk_id not in number)[: self.max_facts]
        if self.assembler is not None:
            chosen, facts = self._fit(chosen, facts)
            number = {p.chunk.id: n for n, p in enumerate(chosen, start=1)}
        template = self.registry.resolve(self.prompt, self.label, request_id=request_id)
        texts = {hit.chunk.id: hit.chunk.text for hit in [*graph_chunks, *passages]}
        evidence = [evidence_text(f, texts.get(f.chunk_id)) for f in facts]
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
                    # Templates that show the evidence sentence show each sentence once (several facts share one).
                    "evidence": sentence,
                    "repeat": sentence in evidence[:i],
                }
                for i, (f, sentence) in enumerate(zip(facts, evidence, strict=True))
            ],
        )
        return AssembledContext(prompt=prompt, passages=chosen, facts=facts, violations=violations)

    def _fit(self, chosen: list[RetrievedChunk], facts: list[Fact]) -> tuple[list[RetrievedChunk], list[Fact]]:
        """The passages and facts the token budget holds; a passage cut after its last fitting sentence is shown
        (and recorded) as the prefix of its chunk that was kept, so its span and citations match the prompt."""
        assert self.assembler is not None
        window = self.assembler.assemble(chosen, facts)
        by_id = {hit.chunk.id: hit for hit in chosen}
        shown = []
        for passage in window.passages:
            hit = by_id[passage.chunk_id]
            if passage.truncated:
                cut = hit.chunk.model_copy(update={"text": passage.text, "end": hit.chunk.start + len(passage.text)})
                hit = hit.model_copy(update={"chunk": cut})
            shown.append(hit)
        return shown, [item.fact for item in window.facts]


def evidence_text(fact: Fact, chunk_text: str | None) -> str:
    """The sentence a fact was extracted from (its evidence span in its chunk), whitespace folded; the bare
    ``subject predicate object`` when the span or the chunk's text is not at hand. A template showing the evidence
    gives the model a whole statement (``founded in 2014 by A and B``) rather than a fragment (``2014 by A``)."""
    if chunk_text is not None and fact.evidence_start is not None and fact.evidence_end is not None:
        evidence = " ".join(chunk_text[fact.evidence_start : fact.evidence_end].split())
        if evidence:
            return evidence
    return f"{fact.subject} {fact.predicate} {fact.object}"


class GenerateStep:
    """Ask the configured model for the answer."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client

    def run(self, prompt: RenderedPrompt) -> Generation:
        result = self.client.chat(prompt.as_messages())
        return Generation(text=result.text.strip(), model=result.model)


class GateStep:
    """Score the draft before release: the prompt's output guardrails first (cheap), then the gate's metrics.

    A blocking violation abstains without scoring. A reviewing one (e.g. must cite) holds for human review only an
    answer the gate would have released: an answer the gate does not release (no passage supports it, so alignment
    left it without citations) is abstained and may be retried, rather than queued for compliance staff."""

    def __init__(self, gate: AnswerGate, guardrails: Guardrails | None = None) -> None:
        self.gate = gate
        self.guardrails = guardrails

    def run(self, question: str, text: str, passages: list[RetrievedChunk], prompt: RenderedPrompt) -> GateOutcome:
        violations: list[GuardrailViolation] = []
        # Judge citations after alignment: a sentence the model forgot to mark (or marked with the wrong number) but
        # that a passage supports counts as cited; only an answer no passage supports fails "must cite". The gate
        # scores the aligned text against the passages it cites: exactly what would be released.
        aligned, cited = align_citations(text, passages)
        if self.guardrails is not None:
            system = next((m["content"] for m in prompt.messages if m["role"] == "system"), "")
            violations = self.guardrails.check_answer(aligned, system)
        blocking = [v for v in violations if v.action == "block"]
        reviewing = [v for v in violations if v.action == "review"]
        if blocking:
            record = GateRecord(decision="abstained", reason="guardrail: " + summarise(blocking))
        else:
            # No sentence could be tied to a passage: the aligned text has no markers; every passage is context.
            contexts = [c.text for c in cited] or [p.chunk.text for p in passages]
            record = self.gate.evaluate(question, aligned, contexts)
            if reviewing and record.decision == "released":
                record = record.model_copy(
                    update={"decision": "review", "reason": f"guardrail: {summarise(reviewing)}; {record.reason}"}
                )
        retryable = (
            record.decision != "released" and not is_abstention(text) and not record.reason.startswith("gate_error")
        )
        return GateOutcome(record=record, violations=violations, retryable=retryable)


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
        strict_retry: bool = False,
        strict_prompt: str = "answer_strict",
        context_budget_tokens: int | None = None,
        rollback: AutoRollback | None = None,
    ) -> None:
        self.audit = audit
        self.rollback = rollback
        assembler = ContextAssembler(context_budget_tokens, max_facts=max_facts) if context_budget_tokens else None
        self.max_question_chars = max_question_chars
        self.registry = registry
        self.prompt_label = prompt_label
        guardrails = registry.guardrails("answer")
        strict_guardrails = registry.guardrails(strict_prompt) if strict_retry else None
        spec = WorkflowSpec.load(default_workflows_dir() / "answer.yaml")
        if not strict_retry:
            spec = spec.without(STRICT_STEPS, version_suffix="-no-strict-retry")
        components = {
            "guard_input": GuardInputStep(guardrails),
            "retrieve": RetrieveStep(retriever, top_k),
            "graph_context": GraphContextStep(graph_context, chunks),
            "assemble": AssembleContextStep(
                registry, prompt_label, graph_chunks, max_facts, guardrails=guardrails, assembler=assembler
            ),
            "generate": GenerateStep(client),
            "gate": GateStep(gate, guardrails),
            "assemble_strict": AssembleContextStep(
                registry,
                prompt_label,
                graph_chunks,
                max_facts,
                prompt=strict_prompt,
                guardrails=strict_guardrails,
                assembler=assembler,
            ),
            "gate_strict": GateStep(gate, strict_guardrails),
        }
        timeouts = {"generate": model_timeout_s, "gate": gate_timeout_s}
        if strict_retry:
            timeouts |= {"generate_strict": model_timeout_s, "gate_strict": gate_timeout_s}
        self.workflow: CompiledWorkflow = spec.build(components, timeouts=timeouts)

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

    def answer(self, question: str, *, conversation: ConversationRef | None = None) -> AnswerRecord:
        """Answer one question; the returned record has already been written to the audit store.

        ``conversation`` (chat requests) is recorded in the provenance: the original message and its rewrite.
        """
        question = self.validate_question(question)
        answer_id = uuid.uuid4().hex
        run = self.workflow.run({"question": question, "request_id": answer_id})
        record = self._record(answer_id, run)
        if conversation is not None:
            record.provenance.conversation = conversation
        self.audit.save(record)
        if self.rollback is not None:
            self.rollback.observe(record)
        return record

    def _record(self, answer_id: str, run: WorkflowRun) -> AnswerRecord:
        guarded = run.output("guard_input", GuardedQuestion)
        assembled: AssembledContext | None = run.maybe("assemble_strict", AssembledContext) or run.maybe(
            "assemble", AssembledContext
        )
        generation: Generation | None = run.maybe("generate_strict", Generation) or run.maybe("generate", Generation)
        outcome: GateOutcome | None = run.maybe("gate_strict", GateOutcome) or run.maybe("gate", GateOutcome)
        violations = list(guarded.violations)
        for step in ("assemble", "gate", *STRICT_STEPS):
            value = run.outputs.get(step)
            violations += getattr(value, "violations", [])
        if guarded.blocked:
            gate = GateRecord(decision="abstained", reason="blocked by guardrail: " + summarise(guarded.violations))
        elif outcome is None:
            gate = GateRecord(decision="abstained", reason="no passages found: the model was not called")
        else:
            gate = outcome.record
            reviewing = [v for v in violations if v.action == "review"]
            if gate.decision == "released" and reviewing:
                gate = gate.model_copy(
                    update={"decision": "review", "reason": f"{gate.reason}; guardrail: {summarise(reviewing)}"}
                )
        gate = finalise_gate(gate, run, guarded.question, blocked=guarded.blocked)
        draft = generation.text if generation is not None else ""
        if gate.decision == "released" and assembled is not None:
            text, citations = align_citations(draft, assembled.passages)
        elif gate.decision == "review":
            text, citations = REVIEW_TEXT, []
        else:
            text, citations = (BLOCKED_TEXT if guarded.blocked else ABSTENTION_TEXT), []
        prompt = (
            assembled.prompt.template
            if assembled is not None
            else self.registry.resolve("answer", self.prompt_label, request_id=answer_id).ref()
        )
        first = run.maybe("assemble", AssembledContext) if gate.retried else None
        return AnswerRecord(
            answer_id=answer_id,
            question=guarded.question,
            answer=text,
            citations=citations,
            facts=[
                FactCitation(subject=f.subject, predicate=f.predicate, object=f.object, chunk_id=f.chunk_id)
                for f in (assembled.facts if assembled is not None else [])
            ],
            provenance=Provenance(
                prompt=prompt,
                workflow=WorkflowRef(name=self.workflow.name, version=self.workflow.version),
                model=generation.model if generation is not None else "",
                retrieval=[
                    RetrievalRef(
                        chunk_id=p.chunk.id,
                        score=round(p.score, 6),
                        method=p.method,
                        start=p.chunk.start,
                        end=p.chunk.end,
                    )
                    for p in (assembled.passages if assembled is not None else [])
                ],
                gate=gate,
                trace=run.trace,
                draft=draft,
                guardrails=violations,
                prompt_label=self.prompt_label,
                first_prompt=first.prompt.template if first is not None else None,
            ),
            created_at=datetime.now(UTC).isoformat(),
        )
