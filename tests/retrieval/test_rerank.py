"""The optional listwise LLM rerank stage over real retrieval, with real local models."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError, InputError, ModelUnavailableError
from core.llm import ModelClient
from core.types import RetrievedChunk
from prompts.registry import FilePromptRegistry
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.hybrid import HybridRetriever
from retrieval.rerank import LLMReranker, apply_ranking
from tests.conftest import RunningModelServer, free_port
from tests.retrieval.conftest import BuiltStore

QUESTION = "How many days do customers have to send back an unused product for their money?"


class WorstFirst:
    """The real dense retriever with its top 10 reversed: the best passage comes last (a hard case for rerank)."""

    def __init__(self, dense: HybridRetriever) -> None:
        self.dense = dense

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]:
        return list(reversed(self.dense.retrieve(question, top_k=10)))[: top_k or 10]


def _reranker(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, client: ModelClient, candidates: int = 10
) -> LLMReranker:
    dense = HybridRetriever(embedder, built_store.vectors, built_store.keywords, built_store.chunks, mode="dense")
    registry = FilePromptRegistry(None)
    return LLMReranker(
        WorstFirst(dense), client, registry.resolve("rerank"), registry.render, candidates=candidates, passage_words=30
    )


def test_apply_ranking_puts_ranked_first_and_keeps_the_rest() -> None:
    hits = [f"h{i}" for i in range(5)]
    assert apply_ranking(hits, [3, 1]) == ["h2", "h0", "h1", "h3", "h4"]  # type: ignore[arg-type]
    assert apply_ranking(hits, [9, 0, -2, 3, 3]) == ["h2", "h0", "h1", "h3", "h4"]  # type: ignore[arg-type]
    assert apply_ranking(hits, []) == hits  # type: ignore[arg-type]


def test_rerank_off_never_calls_the_model_and_bad_input_is_clear(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder
) -> None:
    closed = ModelClient(base_url=f"http://127.0.0.1:{free_port()}/v1", model="none", timeout_s=5)
    reranker = _reranker(built_store, embedder, closed)
    plain = reranker.retriever.retrieve(QUESTION, top_k=5)
    assert [h.chunk.id for h in reranker.retrieve(QUESTION, top_k=5, rerank=False)] == [h.chunk.id for h in plain]
    with pytest.raises(ModelUnavailableError):
        reranker.retrieve(QUESTION, top_k=5)  # on by default here: the model is asked, and is unreachable
    with pytest.raises(InputError):
        reranker.retrieve("  ")
    with pytest.raises(InputError):
        reranker.retrieve(QUESTION, top_k=0)
    with pytest.raises(ConfigurationError, match="candidates"):
        LLMReranker(reranker.retriever, closed, reranker.template, reranker.render, candidates=1)


@pytest.mark.integration
def test_rerank_output_is_a_permutation_of_the_candidates(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, smol_server: RunningModelServer
) -> None:
    reranker = _reranker(built_store, embedder, smol_server.client(max_tokens=24), candidates=5)
    candidates = [h.chunk.id for h in reranker.retriever.retrieve(QUESTION, top_k=5)]
    reranked = [h.chunk.id for h in reranker.retrieve(QUESTION, top_k=3)]
    assert len(reranked) == len(set(reranked)) == 3 and set(reranked) <= set(candidates)


@pytest.mark.slow
def test_qwen_reranks_the_answering_passage_to_the_top(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, qwen_server: RunningModelServer
) -> None:
    reranker = _reranker(built_store, embedder, qwen_server.client(max_tokens=48))
    before = [h.chunk.document_id for h in reranker.retriever.retrieve(QUESTION, top_k=10)]
    assert before.index("refunds") >= 5  # worst first: the answer starts in the bottom half
    after = [h.chunk.document_id for h in reranker.retrieve(QUESTION, top_k=10)]
    assert after.index("refunds") < 2, after
