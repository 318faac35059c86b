"""Domain types shared by every layer: documents, chunks, graph facts, retrieval hits and the answer record."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes (content hashes of documents, chunks and templates)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Document(BaseModel):
    """A source document as ingested: its full text is what citation offsets index into."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str = Field(description="Where it came from: a file path, or path#id for a JSONL record.")
    title: str = ""
    text: str
    sha256: str
    media_type: str = "text/plain"


class Chunk(BaseModel):
    """A contiguous span of a document: ``document.text[start:end] == text``."""

    model_config = ConfigDict(frozen=True)

    id: str
    document_id: str
    source: str
    title: str = ""
    text: str
    start: int
    end: int
    ordinal: int
    sha256: str


class Entity(BaseModel):
    """A named thing mentioned in chunks; ``id`` is derived from its normalised name."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    type: str = "thing"
    description: str = ""


class Mention(BaseModel):
    """An entity occurring in a chunk, with the character span inside the chunk text."""

    model_config = ConfigDict(frozen=True)

    entity_id: str
    chunk_id: str
    start: int | None = None
    end: int | None = None


class Fact(BaseModel):
    """A subject-predicate-object statement between two entities, carrying the chunk it came from."""

    model_config = ConfigDict(frozen=True)

    subject: str = Field(description="Subject entity name.")
    predicate: str
    object: str = Field(description="Object entity name.")
    chunk_id: str
    subject_id: str = ""
    object_id: str = ""
    evidence_start: int | None = Field(default=None, description="Offset of the evidence inside the chunk text.")
    evidence_end: int | None = None


class Extraction(BaseModel):
    """What an extractor found in one chunk."""

    chunk_id: str
    entities: list[Entity] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    extractor: str = ""
    error: str | None = None
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens the extractor's model calls used.")
    completion_tokens: int | None = Field(default=None, description="Completion tokens of those calls.")


RetrievalMethod = Literal["dense", "bm25", "hybrid", "graph"]


class RetrievedChunk(BaseModel):
    """A chunk returned by retrieval with its score and the method that found it."""

    chunk: Chunk
    score: float
    method: RetrievalMethod


class GraphContext(BaseModel):
    """Graph-derived context for a question: linked entities, their facts, and chunks that mention them."""

    entities: list[Entity] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    chunk_ids: list[str] = Field(default_factory=list)


# ----- the answer contract (issue 2): later work extends it, never breaks it -----


class Citation(BaseModel):
    """A passage the answer relies on; ``text == document.text[start:end]``."""

    chunk_id: str
    document_id: str
    source: str
    start: int
    end: int
    text: str
    score: float


class FactCitation(BaseModel):
    """A graph fact given to the model, with the chunk it came from."""

    subject: str
    predicate: str
    object: str
    chunk_id: str


class PromptRef(BaseModel):
    """The resolved prompt version used for an answer (never only a label)."""

    name: str
    version: int
    sha256: str


class WorkflowRef(BaseModel):
    """The workflow name and version that produced an answer."""

    name: str
    version: str


class RetrievalRef(BaseModel):
    """One retrieval hit as recorded in provenance."""

    chunk_id: str
    score: float
    method: RetrievalMethod
    start: int | None = Field(default=None, description="Start of the text shown in the prompt, in the document.")
    end: int | None = Field(default=None, description="End of the shown text (before the chunk's end if cut).")


GateDecision = Literal["released", "abstained", "review"]


class GateScores(BaseModel):
    """Scores from the answer gate; ``None`` where a metric did not run or failed."""

    faithfulness: float | None = None
    answer_relevancy: float | None = None
    citation_coverage: float | None = Field(
        default=None, description="Share of answer sentences carrying a [n] marker that points at a given passage."
    )
    support_similarity: float | None = Field(
        default=None, description="Weakest answer sentence's best cosine similarity to a sentence of its passages."
    )
    lexical_support: float | None = Field(
        default=None, description="Share of the answer's content tokens, numbers and names found in its passages."
    )
    context_relevance: float | None = Field(default=None, description="How relevant the passages are to the question.")
    entailment: float | None = Field(
        default=None, description="The judge's lowest probability that a claim is entailed by its evidence."
    )


GateStageOutcome = Literal["pass", "fail", "inconclusive", "error", "skipped"]


class GateStageRecord(BaseModel):
    """One stage of the gate's cascade as it ran: its outcome, scores and time."""

    name: str = Field(description="e.g. abstention, citation_coverage, support_similarity, lexical_support, judge")
    outcome: GateStageOutcome
    scores: dict[str, float] = Field(default_factory=dict)
    duration_ms: float = 0.0
    detail: str = ""


VerdictLabel = Literal["entailed", "contradicted", "not_found"]


class EvidenceSpan(BaseModel):
    """A sentence of a passage the gate judged a claim against: ``[passage]`` numbering as in the answer, and
    character offsets into that passage's text (``document_start``/``document_end`` into its document once the
    answer service maps them)."""

    passage: int = Field(ge=1, description="The 1-based passage number the answer's markers use.")
    start: int
    end: int
    text: str
    chunk_id: str | None = None
    document_start: int | None = None
    document_end: int | None = None


class ClaimVerdict(BaseModel):
    """The gate's verdict on one claim (answer sentence): which passages it cited, which it was judged against
    (after citation repair), the verdict, its probability where the judge gave logprobs, and the evidence."""

    claim: str
    cited: list[int] = Field(default_factory=list)
    judged_against: list[int] = Field(default_factory=list)
    repair: str | None = Field(default=None, description="How the claim's citation was re-pointed, if it was.")
    verdict: VerdictLabel
    probability: float | None = Field(default=None, description="The judge's probability of its verdict.")
    decided_by: str = Field(description="The stage that decided this verdict (a cheap check or the judge).")
    detail: str = ""
    cached: bool = False
    evidence: list[EvidenceSpan] = Field(default_factory=list)


class SearchSummary(BaseModel):
    """What was searched before an abstention: the query, the retrieval modes and how many passages were found."""

    query: str
    modes: list[str] = Field(default_factory=list)
    passages: int = 0


class GateRecord(BaseModel):
    """The gate's decision, its scores, and why it decided so."""

    decision: GateDecision
    scores: GateScores = Field(default_factory=GateScores)
    reason: str = ""
    duration_ms: float = 0.0
    stages: list[GateStageRecord] = Field(default_factory=list, description="Each cascade stage, in order.")
    retried: bool = Field(default=False, description="The first draft failed the gate and was regenerated strictly.")
    first_attempt: GateRecord | None = Field(
        default=None, description="The gate's record of the first draft when ``retried`` (its scores and stages)."
    )
    searched: SearchSummary | None = Field(default=None, description="What was searched, on an abstention.")
    claims: list[ClaimVerdict] = Field(default_factory=list, description="A verdict per claim of the answer.")
    relevant: bool | None = Field(default=None, description="The judge's verdict: the answer addresses the question.")
    repaired_answer: str | None = Field(
        default=None, description="The answer with citation markers the gate re-pointed (markers index contexts)."
    )
    judge_prompt_tokens: int | None = Field(
        default=None, description="Prompt tokens of the judge's calls for this draft (0: all cached; None: no judge)."
    )
    judge_completion_tokens: int | None = Field(default=None, description="Completion tokens of the judge's calls.")

    def judge_tokens(self) -> tuple[int, int]:
        """Prompt and completion tokens the judge used for the answer, the first draft's included on a retry."""
        first = self.first_attempt.judge_tokens() if self.first_attempt is not None else (0, 0)
        return (self.judge_prompt_tokens or 0) + first[0], (self.judge_completion_tokens or 0) + first[1]


StepStatus = Literal["ok", "failed", "skipped", "timeout", "cancelled"]


class TraceEntry(BaseModel):
    """One workflow step as it ran."""

    step: str
    started_at: str
    duration_ms: float
    status: StepStatus
    attempts: int
    error: str | None = None
    input_ids: dict[str, str] = Field(
        default_factory=dict, description="Each bound input's content id (sha256 prefix of its JSON), by parameter."
    )
    output_id: str | None = Field(default=None, description="Content id of the step's output; None if none.")
    reason: str | None = Field(default=None, description="Why a step was skipped (the branch condition not met).")


GuardrailAction = Literal["block", "sanitise", "review", "record"]


class GuardrailViolation(BaseModel):
    """A guardrail check that fired, where, and what the workflow did about it."""

    check: str = Field(description="e.g. injection, pii, empty, must_cite, system_prompt_leak")
    where: Literal["question", "passage", "answer"]
    action: GuardrailAction
    detail: str = ""
    chunk_id: str | None = None


class ConversationRef(BaseModel):
    """How a chat turn became the answered question: the last user message as sent, the standalone question it was
    rewritten into, and the resolved ``condense`` prompt version and model that rewrote it (None: no rewrite ran)."""

    original_question: str = Field(description="The last user message, as the chat client sent it.")
    rewritten_question: str = Field(description="The standalone question that was answered.")
    rewritten: bool
    condense_prompt: PromptRef | None = None
    condense_model: str | None = None
    history_turns: int = Field(default=0, description="Earlier user/assistant turns shown to the rewriter.")


class Provenance(BaseModel):
    """Everything needed to reproduce and audit an answer."""

    prompt: PromptRef
    workflow: WorkflowRef
    model: str
    retrieval: list[RetrievalRef] = Field(default_factory=list)
    gate: GateRecord
    trace: list[TraceEntry] = Field(default_factory=list)
    draft: str = Field(default="", description="The model's text before the gate decided (kept for review).")
    guardrails: list[GuardrailViolation] = Field(
        default_factory=list, description="Guardrail checks that fired on the question, passages or answer."
    )
    prompt_label: str | None = Field(default=None, description="The label the prompt version was resolved from.")
    first_prompt: PromptRef | None = Field(
        default=None,
        description="When the gate retried with the strict prompt: the prompt version of the first (failed) draft.",
    )
    conversation: ConversationRef | None = Field(
        default=None, description="For chat requests: the original message, its standalone rewrite and how."
    )
    prompt_tokens: int | None = Field(
        default=None, description="Prompt tokens of the answer's generations (both drafts on a strict retry)."
    )
    completion_tokens: int | None = Field(default=None, description="Completion tokens of the answer's generations.")
    trace_id: str | None = Field(
        default=None, description="The OpenTelemetry trace id of the answer (32 hex digits) when tracing is on."
    )


class AnswerRecord(BaseModel):
    """The answer API's response body, stored verbatim in the audit store before it is returned."""

    answer_id: str
    question: str
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    facts: list[FactCitation] = Field(default_factory=list)
    provenance: Provenance
    created_at: str
