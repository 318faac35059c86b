"""Claim verdicts from an LLM judge: Ragas' NLI step, one claim at a time, constrained and read through logprobs.

Ragas' :class:`~ragas.metrics.collections.Faithfulness` first asks the model to split the answer into statements,
then judges every statement against the whole context (``NLIStatementPrompt``, a reason and a 0/1 verdict per
statement). Here the answer's own sentences are the statements (the statement-generation call is skipped), each is
judged against only the sentences it cites, and the verdict is three-way (entailed / contradicted / not found)
with no reason text: the output is one label, constrained by a JSON schema, and its probability is read from the
first label token's logprobs. A 1.5B model on two cores spends most of an answer's time evaluating its prompt, so
the prompts are a few lines: a fixed instruction (the llama.cpp server reuses it between calls) and the evidence.

Verdicts are cached by (judge model, prompt version, question, claim, evidence).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, get_args

from rapidfuzz import fuzz
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from core.errors import ConfigurationError, ModelOutputError, ModelUnavailableError
from core.llm import ChatResult, TokenLogprob
from core.types import VerdictLabel
from evals.gate.base import Verdict, VerdictModel

LABELS: tuple[VerdictLabel, ...] = get_args(VerdictLabel)

#: Ragas' NLI instruction, made three-way and told what "otherwise" looks like in the answers it will see.
ENTAILMENT_INSTRUCTION = (
    "Judge the claim using only the evidence. "
    "entailed: the evidence states the claim or directly implies it. "
    "contradicted: the evidence states something else (another name, number, date or place, a negation, "
    "swapped roles). "
    "not_found: the evidence does not say."
)
#: The question-answer verdict as extraction: the judge answers the question from the evidence sentences alone
#: (copying their words), and the answer must say what it copied. A yes/no "does it answer?" from a 1.5B model says
#: yes to any on-topic sentence, and an answer that names the question's own entity reads as "entailed" when judged
#: as a claim; reading only the cited sentences, the judge copies the right answer far more often than the draft
#: (which read every passage) named it, so a wrong or off-topic answer disagrees with it.
RELEVANCE_INSTRUCTION = (
    "Answer the question from the evidence only. Copy the few words of the evidence that answer it: the kind of "
    "thing the question asks for (a person, a song, a date...), never a name the question already gives. If the "
    "evidence does not answer it, write none."
)
_ENTAILMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": list(LABELS)}},
    "required": ["verdict"],
}
_RELEVANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 80}},
    "required": ["answer"],
}
#: What the relevance judge writes when the text does not answer the question.
NONE = "none"
_INSTRUCTIONS = (ENTAILMENT_INSTRUCTION + RELEVANCE_INSTRUCTION).encode()
PROMPT_VERSION = "claim-nli-4:" + hashlib.sha256(_INSTRUCTIONS).hexdigest()[:8]


def label_probability(
    tokens: Sequence[TokenLogprob] | None, labels: Sequence[str], chosen: str, *, field: str = "verdict"
) -> float | None:
    """The probability of ``chosen`` among ``labels`` at the token where the generated text enters the value of
    ``field``, from that token's top alternatives (an alternative counts for the label it starts; with an empty
    label among ``labels``, for it when it starts no other); None without logprobs."""
    if not tokens:
        return None
    text = ""
    for token in tokens:
        before = text
        text += token.token
        marker = text.rfind(f'"{field}"')
        if marker < 0:
            continue
        opening = text.find('"', text.find(":", marker) + 1)
        if opening < 0 or len(text) <= opening + 1:
            continue
        # This token carries the label's first characters: weigh each alternative by the label it starts.
        offset = max(0, opening + 1 - len(before))
        mass = dict.fromkeys(labels, 0.0)
        for alternative, logprob in {**token.top, token.token: token.logprob}.items():
            piece = alternative[offset:] if alternative.startswith(token.token[:offset]) else ""
            if not piece:
                continue
            for label in sorted(labels, key=len, reverse=True):
                if label.startswith(piece) or piece.startswith(label):
                    mass[label] += math.exp(logprob)
                    break
        total = sum(mass.values())
        return round(mass[chosen] / total, 4) if total > 0 else None
    return None


class LlmClaimJudge:
    """A :class:`~evals.gate.base.ClaimJudge` on any OpenAI-compatible endpoint: one short schema-constrained call
    per claim (and one for relevance), the verdict's probability from logprobs, verdicts cached in memory."""

    def __init__(
        self,
        model: VerdictModel,
        *,
        cache_size: int = 4096,
        top_logprobs: int = 5,
        relevance_logprobs: int = 0,
        retries: int = 1,
    ) -> None:
        if retries < 0:
            raise ConfigurationError(f"gate retries must be 0 or more, got {retries}")
        self.model = model
        self.cache_size = cache_size
        #: Top alternatives per token asked for by the claim and the relevance calls (0: none, the label decides).
        self.top_logprobs = top_logprobs
        self.relevance_logprobs = relevance_logprobs
        self.retries = retries
        self._cache: OrderedDict[str, Verdict] = OrderedDict()

    @property
    def version(self) -> str:
        return PROMPT_VERSION

    def entailment(self, question: str, claim: str, evidence: Sequence[str]) -> Verdict:
        lines = "\n".join(f"- {' '.join(s.split())}" for s in evidence)
        user = f"Evidence:\n{lines}\nQuestion: {question.strip()}\nClaim: {claim.strip()}"
        return self._ask("entailment", ENTAILMENT_INSTRUCTION, user, _ENTAILMENT_SCHEMA, LABELS)

    def relevance(self, question: str, answer: str, evidence: Sequence[str]) -> Verdict:
        lines = "\n".join(f"- {' '.join(s.split())}" for s in evidence)
        user = f"Evidence:\n{lines}\nQuestion: {question.strip()}"
        key = self._key("relevance", user)
        hit = self._hit(key)
        if hit is None:
            result = self._call(
                RELEVANCE_INSTRUCTION,
                user,
                _RELEVANCE_SCHEMA,
                lambda t: self._field(t, "answer"),
                logprobs=self.relevance_logprobs,
            )
            extracted = self._field(result.text, "answer").strip()
            none = label_probability(result.logprobs, (NONE, ""), NONE, field="answer")
            hit = self._store(
                key,
                Verdict(
                    "not_found",
                    None if none is None else round(1.0 - none, 4),
                    text=extracted,
                    prompt_tokens=result.prompt_tokens or 0,
                    completion_tokens=result.completion_tokens or 0,
                ),
            )
        extracted = (hit.text or "").strip()
        if not extracted or extracted.casefold().strip(" .") == NONE:
            label: VerdictLabel = "not_found"
        else:
            label = "entailed" if agrees(extracted, answer) else "contradicted"
        return Verdict(
            label,
            hit.probability,
            cached=hit.cached,
            text=extracted,
            prompt_tokens=hit.prompt_tokens,
            completion_tokens=hit.completion_tokens,
        )

    def _ask(self, kind: str, instruction: str, user: str, schema: dict[str, Any], labels: Sequence[str]) -> Verdict:
        key = self._key(kind, user)
        hit = self._hit(key)
        if hit is not None:
            return hit

        def parse(text: str) -> str:
            return self._label(text, labels)

        result = self._call(instruction, user, schema, parse, logprobs=self.top_logprobs)
        raw = self._label(result.text, labels)
        # The probability of the label that would release: "entailed".
        probability = label_probability(result.logprobs, labels, labels[0])
        label: VerdictLabel = "not_found"
        if raw == "entailed":
            label = "entailed"
        elif raw == "contradicted":
            label = "contradicted"
        used = Verdict(
            label,
            probability,
            prompt_tokens=result.prompt_tokens or 0,
            completion_tokens=result.completion_tokens or 0,
        )
        return self._store(key, used)

    def _key(self, kind: str, user: str) -> str:
        return hashlib.sha256(json.dumps([self.model.model, PROMPT_VERSION, kind, user]).encode()).hexdigest()

    def _hit(self, key: str) -> Verdict | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        self._cache.move_to_end(key)
        return Verdict(hit.label, hit.probability, cached=True, text=hit.text)  # a cached verdict costs no tokens

    def _store(self, key: str, verdict: Verdict) -> Verdict:
        if self.cache_size > 0:
            self._cache[key] = verdict
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return verdict

    def _call(
        self, instruction: str, user: str, schema: dict[str, Any], parse: Callable[[str], object], *, logprobs: int
    ) -> ChatResult:
        """One constrained call, retried when the server fails or the reply does not parse; the result's token
        counts are those of every attempt that got a reply."""
        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": user}]
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            retry=retry_if_exception_type((ModelUnavailableError, ModelOutputError)),
            reraise=True,
        )
        prompt = completion = 0
        for attempt in retrying:
            with attempt:
                result = self.model.chat(
                    messages,
                    json_schema=schema,
                    json_mode=True,
                    max_tokens=32,
                    temperature=0.0,
                    logprobs=logprobs or None,  # 0: the label alone, no probability
                )
                prompt += result.prompt_tokens or 0
                completion += result.completion_tokens or 0
                parse(result.text)
        return result.model_copy(update={"prompt_tokens": prompt, "completion_tokens": completion})

    def _field(self, text: str, name: str) -> str:
        try:
            value = json.loads(text)[name]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelOutputError(f"judge {self.model.model!r} returned no {name}: {text[:80]!r}") from exc
        if not isinstance(value, str):
            raise ModelOutputError(f"judge {self.model.model!r} returned a {name} that is not text: {value!r}")
        return value

    def _label(self, text: str, labels: Sequence[str]) -> str:
        raw = self._field(text, "verdict")
        if raw not in labels:
            raise ModelOutputError(f"judge {self.model.model!r} returned verdict {raw!r}, not one of {list(labels)}")
        return raw


_MARKER = re.compile(r"\[\d+\]")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_WORD = re.compile(r"[^\W\d_]+")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def agrees(extracted: str, answer: str) -> bool:
    """Whether the answer says what the judge copied from the evidence: the copied words are (nearly) in the answer,
    or the answer is (nearly) in them and most of them (``Disney`` for ``Walt Disney Pictures``; not ``Cooper
    Firearms`` for a whole copied sentence that merely names it). A number answers a copied phrase holding that one
    number and every other word of the answer (``28`` for ``28 days of paid annual leave``); a name of two words or
    more ends a copied phrase that gives its title (``Rafael Mendes`` for ``Chief ... Officer Rafael Mendes``); the
    part before a comma followed by at most three words is enough (``Warsaw`` for ``Warsaw, Poland``)."""
    copied = " ".join(extracted.casefold().split())
    said = " ".join(_MARKER.sub(" ", answer).casefold().split())
    if not copied or not said:
        return False
    head, _, tail = copied.partition(",")
    if tail and head.strip() and len(tail.split()) <= 3 and agrees(head, said):
        return True  # a place with its country, a name with its suffix: "Warsaw, Poland" for "... in Warsaw"
    if fuzz.partial_ratio(copied, said) < 85:
        return False
    if len(copied) <= len(said):
        return True
    numbers = _NUMBER.findall(said)
    if numbers and _numbers(copied) == _numbers(said) and len(set(_NUMBER.findall(copied))) == 1:
        copied_words = set(_WORD.findall(copied))
        if all(word in copied_words for word in _WORD.findall(_NUMBER.sub(" ", said))):
            return True
    words, answer_words = len(copied.split()), len(said.split())
    if answer_words >= 2 and copied.rstrip(" .,;").endswith(" " + said.rstrip(" .,;")):
        return True  # the head of the copied phrase: a name after its title ("Chief ... Officer Rafael Mendes")
    return words <= max(2 * answer_words, answer_words + 3)
