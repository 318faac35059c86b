"""Chat conversations: turn a follow-up question into a standalone one before retrieval, with the configured model
and the versioned ``condense`` prompt."""

from __future__ import annotations

from pydantic import BaseModel

from core.base import ChatModel
from core.types import ConversationRef, PromptRef
from prompts.base import PromptRegistry

#: Earlier turns shown to the rewriter (most recent last), and the characters kept of each.
MAX_TURNS = 8
MAX_TURN_CHARS = 1000


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: str
    content: str


class Rewrite(BaseModel):
    """The standalone question, and how it was obtained (``prompt`` and ``model`` are None when no rewrite ran)."""

    original: str
    question: str
    prompt: PromptRef | None = None
    model: str | None = None
    turns: int = 0

    def reference(self) -> ConversationRef:
        """What the answer's provenance records about this rewrite."""
        return ConversationRef(
            original_question=self.original,
            rewritten_question=self.question,
            rewritten=self.prompt is not None,
            condense_prompt=self.prompt,
            condense_model=self.model,
            history_turns=self.turns,
        )


class QuestionRewriter:
    """Rewrites the last user message into a standalone question when there are earlier turns."""

    def __init__(self, client: ChatModel, registry: PromptRegistry, label: str = "production") -> None:
        self.client = client
        self.registry = registry
        self.label = label

    def rewrite(self, history: list[Turn], question: str) -> Rewrite:
        turns = [t for t in history if t.role in {"user", "assistant"} and t.content.strip()][-MAX_TURNS:]
        if not turns:
            return Rewrite(original=question, question=question)
        template = self.registry.resolve("condense", self.label)
        prompt = self.registry.render(
            template,
            history=[{"role": t.role, "content": t.content[:MAX_TURN_CHARS]} for t in turns],
            question=question,
        )
        result = self.client.chat(prompt.as_messages(), max_tokens=96, temperature=0.0)
        lines = [line.strip() for line in result.text.strip().splitlines() if line.strip()]
        standalone = lines[0].removeprefix("Standalone question:").strip().strip('"') if lines else ""
        return Rewrite(
            original=question,
            question=standalone or question,
            prompt=template.ref(),
            model=result.model,
            turns=len(turns),
        )
