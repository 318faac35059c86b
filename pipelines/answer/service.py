"""The answer workflow: check the question against the prompt's guardrails, retrieve and fetch graph context
(concurrently), assemble the versioned prompt, generate, gate (output guardrails first), retry with the strict prompt
if the gate failed, and record the provenance before the answer is returned.

The workflow itself is declared in ``pipelines/workflow/definitions/answer.yaml`` (step names:
:class:`~pipelines.answer.names.AnswerStep`); this module supplies its components.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.base import ChatModel
from core.deadline import Deadline
from core.errors import InputError
from core.spans import SpanLike, span, trace_id
from core.types import (
    AnswerRecord,
    ConversationRef,
    FactCitation,
    GateRecord,
    Provenance,
    RetrievalRef,
    WorkflowRef,
)
from evals.gate.base import AnswerGate
from kg.graph_context import GraphContextBuilder
from pipelines.answer.citations import align_citations
from pipelines.answer.decision import finalise as finalise_gate
from pipelines.answer.names import STRICT_STEPS, AnswerStep, check_declared
from pipelines.answer.rollback import AutoRollback
from pipelines.answer.steps import (
    AssembleContextStep,
    AssembledContext,
    GateOutcome,
    GateStep,
    GenerateStep,
    Generation,
    GraphContextStep,
    GuardedQuestion,
    GuardInputStep,
    RetrieveStep,
)
from pipelines.store.base import AuditStore
from pipelines.workflow.engine import CompiledWorkflow, WorkflowRun
from pipelines.workflow.spec import WorkflowSpec, default_workflows_dir
from prompts.base import PromptRegistry
from prompts.constants import ABSTENTION_TEXT
from prompts.guardrails import summarise
from retrieval.base import ChunkStore, Retriever
from retrieval.context import ContextAssembler
from retrieval.sentences import SentenceSelector

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

WORKFLOW_NAME = "answer"
REVIEW_TEXT = "This answer is being held for human review before release."
BLOCKED_TEXT = "This question was blocked by a guardrail and was not answered."


def check_question(question: str, max_chars: int) -> str:
    """The question stripped; an empty one, or one over ``max_chars`` (``KGRAG_API__MAX_QUESTION_CHARS``, the one
    limit, which the API's schema states too), raises :class:`InputError`."""
    cleaned = question.strip() if isinstance(question, str) else ""
    if not cleaned:
        raise InputError("the question is empty", hint="ask a question in plain words")
    if len(cleaned) > max_chars:
        raise InputError(
            f"the question is {len(cleaned)} characters long; the limit is {max_chars}",
            hint="shorten the question (the limit is KGRAG_API__MAX_QUESTION_CHARS)",
        )
    return cleaned


class AnswerService:
    """Answers questions through the declared answer workflow and stores each record before returning it.

    With a ``tracer``, an answer is a span ``answer`` (its id, decision, prompt version and tokens; the question and
    the answer's text only with ``capture_content``) around the workflow's spans, and its trace id is recorded in the
    provenance.
    """

    def __init__(
        self,
        *,
        retriever: Retriever,
        graph_context: GraphContextBuilder,
        chunks: ChunkStore,
        registry: PromptRegistry,
        client: ChatModel,
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
        selector: SentenceSelector | None = None,
        strict_selector: SentenceSelector | None = None,
        rollback: AutoRollback | None = None,
        tracer: Tracer | None = None,
        capture_content: bool = False,
    ) -> None:
        self.audit = audit
        self.tracer = tracer
        self.capture_content = capture_content
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
        check_declared(spec, strict_retry=strict_retry)
        # A prompt showing evidence sentences (answer v3) needs them picked: the default selector when none is given.
        selector = selector or SentenceSelector()
        components: dict[str, object] = {
            AnswerStep.GUARD_INPUT: GuardInputStep(guardrails),
            AnswerStep.RETRIEVE: RetrieveStep(retriever, top_k),
            AnswerStep.GRAPH_CONTEXT: GraphContextStep(graph_context, chunks),
            AnswerStep.ASSEMBLE: AssembleContextStep(
                registry,
                prompt_label,
                graph_chunks,
                max_facts,
                guardrails=guardrails,
                assembler=assembler,
                selector=selector,
            ),
            AnswerStep.GENERATE: GenerateStep(client),
            AnswerStep.GATE: GateStep(gate, guardrails),
            AnswerStep.ASSEMBLE_STRICT: AssembleContextStep(
                registry,
                prompt_label,
                graph_chunks,
                max_facts,
                prompt=strict_prompt,
                guardrails=strict_guardrails,
                assembler=assembler,
                selector=strict_selector or selector,
            ),
            AnswerStep.GATE_STRICT: GateStep(gate, strict_guardrails),
        }
        timeouts: dict[str, float] = {AnswerStep.GENERATE: model_timeout_s, AnswerStep.GATE: gate_timeout_s}
        if strict_retry:
            timeouts |= {AnswerStep.GENERATE_STRICT: model_timeout_s, AnswerStep.GATE_STRICT: gate_timeout_s}
        self.workflow: CompiledWorkflow = spec.build(components, timeouts=timeouts)

    def validate_question(self, question: str) -> str:
        return check_question(question, self.max_question_chars)

    def answer(
        self, question: str, *, conversation: ConversationRef | None = None, deadline: Deadline | None = None
    ) -> AnswerRecord:
        """Answer one question; the returned record has already been written to the audit store.

        ``conversation`` (chat requests) is recorded in the provenance: the original message and its rewrite.
        ``deadline``: checked between steps and once more before saving; a cancelled or expired answer raises
        :class:`~core.errors.RequestCancelledError` and nothing is stored (nobody would receive it).
        """
        question = self.validate_question(question)
        answer_id = uuid.uuid4().hex
        with span(self.tracer, "answer", {"kgrag.answer.id": answer_id}) as opened:
            if self.capture_content:
                opened.set_attribute("kgrag.question", question)
            run = self.workflow.run(
                {"question": question, "request_id": answer_id}, deadline=deadline, tracer=self.tracer
            )
            record = self._record(answer_id, run)
            record.provenance.trace_id = trace_id(opened)
            if conversation is not None:
                record.provenance.conversation = conversation
            if deadline is not None:
                deadline.check()
            self.audit.save(record)
            if self.rollback is not None:
                self.rollback.observe(record)
            if opened.is_recording():
                self._describe(opened, record)
        return record

    def _describe(self, opened: SpanLike, record: AnswerRecord) -> None:
        p = record.provenance
        opened.set_attributes(
            {
                "kgrag.answer.decision": p.gate.decision,
                "kgrag.answer.retried": p.gate.retried,
                "kgrag.prompt.name": p.prompt.name,
                "kgrag.prompt.version": str(p.prompt.version),
                "kgrag.workflow.version": p.workflow.version,
                "kgrag.answer.citations": len(record.citations),
                "kgrag.answer.facts": len(record.facts),
                "gen_ai.request.model": p.model,
            }
        )
        if p.prompt_tokens is not None:
            opened.set_attribute("gen_ai.usage.input_tokens", p.prompt_tokens)
        if p.completion_tokens is not None:
            opened.set_attribute("gen_ai.usage.output_tokens", p.completion_tokens)
        if self.capture_content:
            opened.set_attribute("kgrag.answer.text", record.answer)

    def _record(self, answer_id: str, run: WorkflowRun) -> AnswerRecord:
        guarded = run.output(AnswerStep.GUARD_INPUT, GuardedQuestion)
        assembled: AssembledContext | None = run.maybe(AnswerStep.ASSEMBLE_STRICT, AssembledContext) or run.maybe(
            AnswerStep.ASSEMBLE, AssembledContext
        )
        generation: Generation | None = run.maybe(AnswerStep.GENERATE_STRICT, Generation) or run.maybe(
            AnswerStep.GENERATE, Generation
        )
        outcome: GateOutcome | None = run.maybe(AnswerStep.GATE_STRICT, GateOutcome) or run.maybe(
            AnswerStep.GATE, GateOutcome
        )
        violations = list(guarded.violations)
        for step in (AnswerStep.ASSEMBLE, AnswerStep.GATE, *STRICT_STEPS):
            value = run.outputs.get(step)
            violations += getattr(value, "violations", [])
        # A review is asked by the attempt whose gate decided: a first draft's must-cite violation (kept in the
        # provenance) does not hold a strict retry that passed the guardrails.
        superseded = getattr(run.outputs.get(AnswerStep.GATE), "violations", []) if outcome_is_strict(run) else []
        deciding = [v for v in violations if all(v is not old for old in superseded)]
        if guarded.blocked:
            gate = GateRecord(decision="abstained", reason="blocked by guardrail: " + summarise(guarded.violations))
        elif outcome is None:
            gate = GateRecord(decision="abstained", reason="no passages found: the model was not called")
        else:
            gate = outcome.record
            reviewing = [v for v in deciding if v.action == "review"]
            if gate.decision == "released" and reviewing:
                gate = gate.model_copy(
                    update={"decision": "review", "reason": f"{gate.reason}; guardrail: {summarise(reviewing)}"}
                )
        gate = finalise_gate(gate, run, guarded.question, blocked=guarded.blocked)
        draft = generation.text if generation is not None else ""
        if gate.decision == "released" and outcome is not None and outcome.text:
            text, citations = outcome.text, outcome.citations
        elif gate.decision == "released" and assembled is not None:
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
        first = run.maybe(AnswerStep.ASSEMBLE, AssembledContext) if gate.retried else None
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
                prompt_tokens=_tokens(run, "prompt_tokens"),
                completion_tokens=_tokens(run, "completion_tokens"),
            ),
            created_at=datetime.now(UTC).isoformat(),
        )


def outcome_is_strict(run: WorkflowRun) -> bool:
    """Whether the strict retry's gate decided the answer."""
    return run.maybe(AnswerStep.GATE_STRICT, GateOutcome) is not None


def _tokens(run: WorkflowRun, kind: str) -> int | None:
    """The tokens of one kind the run's generations used; None when none ran or the server reported none."""
    counts = [
        getattr(g, kind)
        for step in (AnswerStep.GENERATE, AnswerStep.GENERATE_STRICT)
        if (g := run.maybe(step, Generation)) is not None
    ]
    known = [c for c in counts if c is not None]
    return sum(known) if known else None
