"""Guardrails attached to a prompt: input checks (empty, prompt injection in the question or in retrieved passages,
PII) and output checks (must cite, must not reveal the system prompt).

The question's length is not a guardrail: its one limit is ``KGRAG_API__MAX_QUESTION_CHARS``, stated in the API's
schema and enforced once, before any guardrail runs (``AnswerService.validate_question``).

A prompt's guardrails are declared beside its templates in ``<name>.guardrails.yaml`` (the action each check takes:
``block``, ``sanitise``, ``review`` or ``record``). Checks only report :class:`~core.types.GuardrailViolation`s and
return sanitised text; the answer workflow decides what a violation does to the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz

from core.errors import PromptError
from core.types import GuardrailAction, GuardrailViolation
from prompts.abstention import is_abstention

#: Prompt-injection phrasings (case-insensitive), each with the name reported in the violation.
INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "ignore-instructions",
            r"\b(ignore|disregard|forget|override|bypass)\b[\w\s,]{0,40}?\b(previous|prior|above|earlier|preceding|"
            r"all|any|your|the|system)\b[\w\s]{0,20}?\b(instructions?|prompts?|rules|directions|guidelines|context)\b",
        ),
        (
            "reveal-system-prompt",
            r"\b(reveal|print|show|repeat|output|display|leak|tell me|what (is|are))\b[\w\s]{0,30}?"
            r"\b(system prompt|system message|initial prompt|hidden prompt|your instructions|your rules|"
            r"the instructions above)\b",
        ),
        (
            "role-override",
            r"\byou are now\b|\bfrom now on,? you\b|\bact as (an? )?(unrestricted|unfiltered|jailbroken)",
        ),
        ("jailbreak", r"\b((?-i:DAN)|do anything now|developer mode|jailbreak)\b"),
        ("fake-role-tag", r"<\|?/?\s*(system|assistant|im_start|im_end)\s*\|?>|^\s*#{2,}\s*(system|instruction)s?\b"),
        ("new-instructions", r"\b(new|updated|real) instructions\s*:"),
    )
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class _Pii:
    kind: str
    pattern: re.Pattern[str]
    placeholder: str


PII_PATTERNS: tuple[_Pii, ...] = (
    _Pii("email", re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}\b"), "[EMAIL]"),
    _Pii("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), "[IBAN]"),
    _Pii("card", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), "[CARD]"),
    _Pii("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "[SSN]"),
    _Pii("phone", re.compile(r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d{2,4}){2,3}\b"), "[PHONE]"),
)
_CITATION = re.compile(r"\[\s*\d+(?:\s*[,;\u2013-]\s*\d+)*\s*\]")  # [2], [1, 3], [2-4], as the gate reads them


class InputActions(BaseModel):
    """What each input check does when it fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    injection: GuardrailAction = "block"
    passage_injection: GuardrailAction = "sanitise"
    pii: GuardrailAction = "sanitise"


class OutputActions(BaseModel):
    """What each output check does when it fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    must_cite: GuardrailAction = "review"
    system_prompt_leak: GuardrailAction = "block"


class GuardrailConfig(BaseModel):
    """A prompt's guardrails, as declared in ``<name>.guardrails.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str
    input: InputActions = Field(default_factory=InputActions)
    output: OutputActions = Field(default_factory=OutputActions)
    leak_min_chars: int = Field(default=40, ge=10, description="System-prompt lines shorter than this are ignored.")
    leak_similarity: float = Field(default=90.0, gt=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _no_length_limit(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_question_chars" in data:
            raise ValueError(
                "max_question_chars is not a guardrail setting: the one limit on a question's length is "
                "KGRAG_API__MAX_QUESTION_CHARS (remove the line)"
            )
        return data


class QuestionCheck(BaseModel):
    """The question after the input checks: possibly sanitised, with what fired."""

    question: str
    violations: list[GuardrailViolation]

    @property
    def blocked(self) -> bool:
        return any(v.action == "block" for v in self.violations)


class Guardrails:
    """Pattern-based guardrails for one prompt (regexes for injection and PII, fuzzy matching for leaks)."""

    def __init__(self, config: GuardrailConfig) -> None:
        self.config = config

    @classmethod
    def load(cls, path: Path) -> Guardrails:
        """Read ``<name>.guardrails.yaml``; a malformed file raises PromptError naming it."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(GuardrailConfig.model_validate(data))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PromptError(f"guardrail file {path} cannot be read: {exc}") from exc
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise PromptError(f"guardrail file {path} is invalid: {where}") from exc

    # ----- input -----

    def check_question(self, question: str) -> QuestionCheck:
        """An empty question blocks; injection and PII take their configured actions (the length was checked
        before, against the one limit)."""
        text = question.strip()
        if not text:
            return QuestionCheck(question=text, violations=[_v("empty", "question", "block", "the question is empty")])
        violations = [
            _v("injection", "question", self.config.input.injection, name) for name in injection_matches(text)
        ]
        kinds = pii_kinds(text)
        if kinds:
            violations.append(_v("pii", "question", self.config.input.pii, ", ".join(kinds)))
            if self.config.input.pii == "sanitise":
                text = redact_pii(text)
        return QuestionCheck(question=text, violations=violations)

    def check_passage(self, chunk_id: str, text: str) -> list[GuardrailViolation]:
        """Injection phrasings inside a retrieved passage (indirect prompt injection)."""
        action = self.config.input.passage_injection
        return [_v("injection", "passage", action, name, chunk_id) for name in injection_matches(text)]

    # ----- output -----

    def check_answer(self, answer: str, system_prompt: str) -> list[GuardrailViolation]:
        """An answer (other than the abstention) must cite [n]; it must not repeat the system prompt."""
        text = answer.strip()
        found: list[GuardrailViolation] = []
        if text and not is_abstention(text) and not _CITATION.search(text):
            found.append(_v("must_cite", "answer", self.config.output.must_cite, "no [n] citation in the answer"))
        leaked = self.leaked_lines(text, system_prompt)
        if leaked:
            detail = f"{len(leaked)} system-prompt line(s) repeated, e.g. {leaked[0][:60]!r}"
            found.append(_v("system_prompt_leak", "answer", self.config.output.system_prompt_leak, detail))
        return found

    def leaked_lines(self, answer: str, system_prompt: str) -> list[str]:
        """System-prompt lines (long enough to be distinctive) that appear, nearly verbatim, in the answer."""
        lowered = answer.lower()
        lines = [ln.strip() for ln in system_prompt.splitlines() if len(ln.strip()) >= self.config.leak_min_chars]
        # partial_ratio aligns the shorter string inside the longer: only lines the answer could contain count.
        return [
            ln
            for ln in lines
            if len(lowered) >= 0.9 * len(ln) and fuzz.partial_ratio(ln.lower(), lowered) >= self.config.leak_similarity
        ]


def injection_matches(text: str) -> list[str]:
    """Names of the injection patterns found in ``text``."""
    return [name for name, pattern in INJECTION_PATTERNS if pattern.search(text)]


def _scan(text: str) -> tuple[str, list[str]]:
    """Redact PII pattern by pattern (so one span is reported once) and list the kinds found."""
    kinds: list[str] = []
    for pii in PII_PATTERNS:

        def replace(match: re.Match[str], pii: _Pii = pii) -> str:
            if pii.kind == "card" and not _luhn(re.sub(r"\D", "", match.group())):
                return match.group()
            if pii.kind not in kinds:
                kinds.append(pii.kind)
            return pii.placeholder

        text = pii.pattern.sub(replace, text)
    return text, kinds


def pii_kinds(text: str) -> list[str]:
    """Kinds of PII found (email, iban, card, ssn, phone), each once, in pattern order."""
    return _scan(text)[1]


def redact_pii(text: str) -> str:
    """``text`` with each PII match replaced by its placeholder (``[EMAIL]``, ``[CARD]``...)."""
    return _scan(text)[0]


def load_guardrails(directory: Path, prompt: str) -> Guardrails | None:
    """The guardrails declared for ``prompt`` beside its templates, or None if it declares none."""
    path = directory / f"{prompt}.guardrails.yaml"
    if not path.is_file():
        return None
    guardrails = Guardrails.load(path)
    if guardrails.config.prompt != prompt:
        raise PromptError(f"guardrail file {path} declares prompt {guardrails.config.prompt!r}, not {prompt!r}")
    return guardrails


def summarise(violations: Sequence[GuardrailViolation]) -> str:
    """One line naming each violation (for gate reasons and logs)."""
    return "; ".join(f"{v.check} in {v.where} ({v.detail}) -> {v.action}" for v in violations)


def _v(check: str, where: str, action: GuardrailAction, detail: str, chunk_id: str | None = None) -> GuardrailViolation:
    return GuardrailViolation.model_validate(
        {"check": check, "where": where, "action": action, "detail": detail, "chunk_id": chunk_id}
    )
