"""The answer workflow's steps: small typed classes, each with a pydantic output, wired by
pipelines/workflow/definitions/answer.yaml."""

from __future__ import annotations

from pydantic import BaseModel

from core.base import ChatModel
from core.errors import ModelOutputError
from core.types import (
    Citation,
    Fact,
    GateRecord,
    GraphContext,
    GuardrailViolation,
    RetrievedChunk,
)
from evals.gate.base import AnswerGate
from kg.graph_context import GraphContextBuilder
from pipelines.answer.citations import align_citations, renumber
from pipelines.answer.structured import parse_reply, sentence_citations
from prompts.abstention import is_abstention
from prompts.base import PromptRegistry, RenderedPrompt
from prompts.guardrails import Guardrails, summarise
from retrieval.base import ChunkStore, Retriever
from retrieval.context import ContextAssembler
from retrieval.sentences import SentenceSelector, ShownSentence, number_sentences


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
    #: The passages' sentences as the prompt showed them (``2.3``: passage 2, third sentence shown), when the
    #: evidence selector ran.
    sentences: list[ShownSentence] = []


class Generation(BaseModel):
    """The model's draft answer, and the tokens its call used (when the server reports them).

    For a prompt with an ``output_schema``, ``text`` is the draft built from the structured reply (the short answer
    and a marker per evidence passage), ``answer`` the short answer and ``evidence`` the sentence ids it gave."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer: str | None = None
    evidence: list[str] = []


class GateOutcome(BaseModel):
    """The gate's record for the draft, the output guardrails that fired, and whether a strict retry may help."""

    record: GateRecord
    violations: list[GuardrailViolation] = []
    retryable: bool = False
    #: The text the gate judged, markers renumbered so that ``[n]`` is ``citations[n-1]`` (what a release shows).
    text: str = ""
    citations: list[Citation] = []


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
        selector: SentenceSelector | None = None,
    ) -> None:
        self.registry = registry
        self.label = label
        self.graph_chunks = graph_chunks
        self.max_facts = max_facts
        self.prompt = prompt
        self.guardrails = guardrails
        self.assembler = assembler
        self.selector = selector

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
        sentences: list[ShownSentence] = []
        if self.selector is not None:
            chosen, sentences = self._select(question, chosen, facts)
        number = {p.chunk.id: n for n, p in enumerate(chosen, start=1)}
        template = self.registry.resolve(self.prompt, self.label, request_id=request_id)
        if "facts" not in template.inputs:
            facts = [f for f in facts if f.chunk_id in number]  # shown only through the sentences they came from
        texts = {hit.chunk.id: hit.chunk.text for hit in [*graph_chunks, *passages]}
        evidence = [evidence_text(f, texts.get(f.chunk_id)) for f in facts]
        shown = {
            n: [{"id": s.id, "text": " ".join(s.text.split())} for s in sentences if s.passage == n]
            for n in number.values()
        }
        available = {
            "question": question,
            "passages": [
                {"n": n, "title": p.chunk.title, "text": p.chunk.text, "sentences": shown[n]}
                for n, p in enumerate(chosen, start=1)
            ],
            "facts": [
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
        }
        # Exactly the inputs the template declares (a missing one still fails in render).
        prompt = self.registry.render(template, **{k: v for k, v in available.items() if k in template.inputs})
        return AssembledContext(prompt=prompt, passages=chosen, facts=facts, violations=violations, sentences=sentences)

    def _select(
        self, question: str, chosen: list[RetrievedChunk], facts: list[Fact]
    ) -> tuple[list[RetrievedChunk], list[ShownSentence]]:
        """The evidence sentences of each passage; passages left without any are not shown."""
        assert self.selector is not None
        spans: dict[str, list[tuple[int, int]]] = {}
        for fact in facts:
            if fact.evidence_start is not None and fact.evidence_end is not None:
                spans.setdefault(fact.chunk_id, []).append((fact.evidence_start, fact.evidence_end))
        picked = self.selector.select(question, chosen, spans)
        kept = [(hit, found) for hit, found in zip(chosen, picked, strict=True) if found]
        return [hit for hit, _ in kept], number_sentences([hit.chunk.text for hit, _ in kept], [f for _, f in kept])

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

    def __init__(self, client: ChatModel) -> None:
        self.client = client

    def run(self, prompt: RenderedPrompt) -> Generation:
        result = self.client.chat(prompt.as_messages(), json_schema=prompt.output_schema)
        generation = Generation(
            text=result.text.strip(),
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        if prompt.output_schema is None:
            return generation
        reply = parse_reply(result.text)
        if reply is None:
            raise ModelOutputError(
                f"model {result.model!r} did not reply with the JSON object prompt "
                f"{prompt.template.name!r} v{prompt.template.version} asks for: {result.text[:120]!r}",
                hint="a model served without JSON-schema support cannot follow this prompt version",
            )
        return generation.model_copy(
            update={"text": reply.draft(), "answer": reply.answer, "evidence": list(reply.evidence)}
        )


class GateStep:
    """Score the draft before release: the prompt's output guardrails first (cheap), then the gate's metrics.

    A blocking violation abstains without scoring. A reviewing one (e.g. must cite) holds for human review only an
    answer the gate would have released: an answer the gate does not release (no passage supports it, so alignment
    left it without citations) is abstained and may be retried, rather than queued for compliance staff."""

    def __init__(self, gate: AnswerGate, guardrails: Guardrails | None = None) -> None:
        self.gate = gate
        self.guardrails = guardrails

    def run(
        self,
        question: str,
        text: str,
        passages: list[RetrievedChunk],
        prompt: RenderedPrompt,
        sentences: list[ShownSentence],
        evidence: list[str],
    ) -> GateOutcome:
        """``sentences``/``evidence``: the sentences the prompt showed and the ids the model gave as evidence (empty
        for free-text prompts); a released citation spans its evidence sentences, not its whole chunk."""
        violations: list[GuardrailViolation] = []
        # Judge citations after alignment: a sentence the model forgot to mark (or marked with the wrong number) but
        # that a passage supports counts as cited; only an answer no passage supports fails "must cite". The gate
        # scores the aligned text against the passages it cites, followed by the other shown passages (so that it
        # can re-point a citation): exactly what would be released.
        aligned, cited = align_citations(text, passages)
        if self.guardrails is not None:
            system = next((m["content"] for m in prompt.messages if m["role"] == "system"), "")
            violations = self.guardrails.check_answer(aligned, system)
        blocking = [v for v in violations if v.action == "block"]
        reviewing = [v for v in violations if v.action == "review"]
        released_text, released_citations = aligned, cited
        if blocking:
            record = GateRecord(decision="abstained", reason="guardrail: " + summarise(blocking))
        else:
            by_id = {p.chunk.id: p for p in passages}
            first = [by_id[c.chunk_id] for c in cited if c.chunk_id in by_id]
            shown = first + [p for p in passages if p not in first]
            record = self.gate.evaluate(question, aligned, [p.chunk.text for p in shown])
            if record.repaired_answer is not None:
                released_text, released_citations, numbers = renumber(record.repaired_answer, shown)
            else:
                numbers = {n: n for n in range(1, len(first) + 1)}
            record = with_document_spans(record, shown, numbers)
            if record.decision == "released":
                released_citations = sentence_citations(
                    released_citations,
                    [s for s in sentences if s.id in set(evidence)],
                    {n: p.chunk.id for n, p in enumerate(passages, start=1)},
                    _evidence_by_chunk(record),
                )
            if reviewing and record.decision == "released":
                record = record.model_copy(
                    update={"decision": "review", "reason": f"guardrail: {summarise(reviewing)}; {record.reason}"}
                )
        retryable = (
            record.decision != "released" and not is_abstention(text) and not record.reason.startswith("gate_error")
        )
        return GateOutcome(
            record=record,
            violations=violations,
            retryable=retryable,
            text=released_text,
            citations=released_citations,
        )


def _evidence_by_chunk(record: GateRecord) -> dict[str, list[tuple[int, int]]]:
    """The gate's evidence sentences by chunk id, in chunk offsets."""
    out: dict[str, list[tuple[int, int]]] = {}
    for verdict in record.claims:
        for span in verdict.evidence:
            if span.chunk_id is not None:
                out.setdefault(span.chunk_id, []).append((span.start, span.end))
    return out


def with_document_spans(record: GateRecord, shown: list[RetrievedChunk], numbers: dict[int, int]) -> GateRecord:
    """The gate's claim verdicts with passage numbers as released (``numbers``: gate's number -> released one) and
    each evidence sentence's chunk and character offsets in its document."""
    if not record.claims:
        return record
    claims = []
    for verdict in record.claims:
        evidence = []
        for span in verdict.evidence:
            chunk = shown[span.passage - 1].chunk
            evidence.append(
                span.model_copy(
                    update={
                        "passage": numbers.get(span.passage, span.passage),
                        "chunk_id": chunk.id,
                        "document_start": chunk.start + span.start,
                        "document_end": chunk.start + span.end,
                    }
                )
            )
        claims.append(
            verdict.model_copy(
                update={
                    "evidence": evidence,
                    "judged_against": [numbers.get(n, n) for n in verdict.judged_against],
                }
            )
        )
    return record.model_copy(update={"claims": claims})
