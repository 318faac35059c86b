"""Protocols of the core layer: what the rest of kgrag asks of a chat model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.llm import ChatResult  # the openai client's module: not imported for the Protocol alone


class ChatModel(Protocol):
    """A chat model as the answer workflow, the question rewriter, the reranker and the extractor use it.

    :class:`core.llm.ModelClient` (any OpenAI-compatible endpoint) satisfies it structurally; ``tests/scripted_model``
    holds an in-process one for fast unit tests of workflow logic. Both methods raise
    :class:`core.errors.ModelUnavailableError` when the model cannot be reached; ``chat_json`` raises
    :class:`core.errors.ModelOutputError` when the reply is not a JSON object.
    """

    @property
    def model(self) -> str:
        """The model's name, as requests and provenance record it."""
        ...

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        logprobs: int | None = None,
    ) -> ChatResult:
        """One chat completion; with ``json_mode`` ask for a JSON object (optionally constrained by a schema); with
        ``logprobs``, that many top alternatives per generated token where the server gives them."""
        ...

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Chat in JSON mode and return the parsed object."""
        ...


class ModelCallObserver(Protocol):
    """Told about each model call (the API's metrics): how long it took, how it ended, and the tokens it used."""

    def model_call(
        self,
        *,
        seconds: float,
        outcome: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        role: str = "answer",
    ) -> None:
        """``outcome``: ``ok``, ``error`` (the endpoint failed), ``rejected`` (the breaker is open) or ``cancelled``
        (the request's deadline passed or its client left while the call was in flight). ``role``: ``answer`` (the
        answer model and the rewriter) or ``judge`` (the gate's verdict calls)."""
        ...
