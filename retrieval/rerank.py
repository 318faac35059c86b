"""Optional rerank stage: the local LLM reorders the fused candidates listwise (one chat call per question).

The first ``candidates`` hits of the wrapped retriever are shown to the model, each cut to ``passage_words`` words,
with the versioned ``rerank`` prompt; it answers ``{"ranking": [passage numbers, best first]}``. Numbers it ranks
come first in its order, the rest keep the retriever's order after them, so a model that ranks nothing (or answers
badly) leaves the retriever's ranking unchanged. Reranking is chosen per call (``rerank=``) or by default
(``enabled``, from ``KGRAG_RETRIEVAL__RERANK``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.base import ChatModel
from core.errors import ConfigurationError, InputError, ModelOutputError
from core.types import RetrievedChunk
from prompts.base import PromptTemplate, RenderedPrompt
from retrieval.base import Retriever

_NUMBER = re.compile(r"\d+")
_SCHEMA = {
    "type": "object",
    "properties": {"ranking": {"type": "array", "items": {"type": "integer"}}},
    "required": ["ranking"],
}


def apply_ranking(hits: list[RetrievedChunk], ranking: list[int]) -> list[RetrievedChunk]:
    """``hits`` reordered: the 1-based numbers in ``ranking`` first (unknown or repeated ignored), then the rest."""
    order = [n - 1 for n in dict.fromkeys(ranking) if 1 <= n <= len(hits)]
    chosen = set(order)
    return [hits[i] for i in order] + [hit for i, hit in enumerate(hits) if i not in chosen]


class LLMReranker:
    """A :class:`retrieval.base.Retriever` that reranks another retriever's top ``candidates`` with a chat model."""

    def __init__(
        self,
        retriever: Retriever,
        client: ChatModel,
        template: PromptTemplate,
        render: Callable[..., RenderedPrompt],
        *,
        top_k: int = 5,
        candidates: int = 10,
        passage_words: int = 60,
        enabled: bool = True,
        max_tokens: int = 64,
    ) -> None:
        if candidates < 2:
            raise ConfigurationError(f"rerank candidates must be at least 2, got {candidates}")
        if passage_words < 5:
            raise ConfigurationError(f"rerank passage_words must be at least 5, got {passage_words}")
        self.retriever = retriever
        self.client = client
        self.template = template
        self.render = render
        self.top_k = top_k
        self.candidates = candidates
        self.passage_words = passage_words
        self.enabled = enabled
        self.max_tokens = max_tokens

    def _ranking(self, question: str, hits: list[RetrievedChunk]) -> list[int]:
        passages = [
            {"n": n, "title": hit.chunk.title, "text": " ".join(hit.chunk.text.split()[: self.passage_words])}
            for n, hit in enumerate(hits, start=1)
        ]
        prompt = self.render(self.template, question=question, passages=passages)
        try:
            reply: dict[str, Any] = self.client.chat_json(
                prompt.as_messages(), schema=_SCHEMA, max_tokens=self.max_tokens
            )
        except ModelOutputError:
            return []  # unparseable: keep the retriever's order
        ranking = reply.get("ranking")
        if not isinstance(ranking, list):
            return []
        return [int(m) for item in ranking for m in _NUMBER.findall(str(item))[:1]]

    def retrieve(self, question: str, *, top_k: int | None = None, rerank: bool | None = None) -> list[RetrievedChunk]:
        """The wrapped retriever's hits, its first ``candidates`` reordered by the model when reranking is on."""
        if not question or not question.strip():
            raise InputError("the question is empty")
        k = self.top_k if top_k is None else top_k
        if k < 1:
            raise InputError(f"top_k must be at least 1, got {k}")
        hits = self.retriever.retrieve(question, top_k=max(k, self.candidates))
        on = self.enabled if rerank is None else rerank
        if on and len(hits) > 1:
            head = hits[: self.candidates]
            hits = apply_ranking(head, self._ranking(question, head)) + hits[self.candidates :]
        return hits[:k]
