"""Split an answer into claims (sentences) with the passage numbers each cites, and band a score into a verdict."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import ConfigurationError
from core.text import sentence_spans
from core.types import GateStageOutcome
from evals.gate.base import CheckInput, Claim
from prompts.abstention import is_abstention

#: ``[1]``, ``[1, 2]``, ``[1-3]``, ``[1][2]``.
_MARKER = re.compile(r"\s*\[\s*(\d+(?:\s*[,;\u2013-]\s*\d+)*)\s*\]")
_LEADING = re.compile(r"(?:\s*\[\s*\d+(?:\s*[,;\u2013-]\s*\d+)*\s*\])+")
_NUMBER = re.compile(r"\d+")
#: A piece ending like this did not end a sentence: an initial, or a common abbreviation.
_ABBREVIATION = re.compile(
    r"(?:\b[A-Z]|\b(?:Sr|Jr|Dr|Mr|Mrs|Ms|St|Mt|Ft|Gen|Gov|Col|Lt|Sgt|Rev|Prof|No|vs|etc|Inc|Ltd|Co|Corp|approx|ca)"
    r"|\b(?:U\.S|U\.K|e\.g|i\.e))\.[\"')\]]*$"
)
#: A piece opening like this continues the previous sentence.
_CONTINUES = re.compile(r"[a-z0-9(,;]")
_RANGE = re.compile(r"(\d+)\s*[\u2013-]\s*(\d+)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_WHITESPACE = re.compile(r"\s+")


def strip_citations(text: str) -> str:
    """Remove ``[n]``-style citation markers and tidy the spacing they leave behind."""
    without = _SPACE_BEFORE_PUNCT.sub(r"\1", _MARKER.sub("", text))
    return _WHITESPACE.sub(" ", without).strip()


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"[,;]", group):
        span = _RANGE.fullmatch(part.strip())
        if span and int(span.group(2)) - int(span.group(1)) < 50:
            out.extend(range(int(span.group(1)), int(span.group(2)) + 1))
        else:
            out.extend(int(n) for n in _NUMBER.findall(part))
    return out


def _sentences(text: str) -> list[str]:
    """Sentence spans, re-joined where the split followed an initial or an abbreviation (``E. B. White``,
    ``Hank Williams, Sr. and``) or the next piece does not open like a sentence."""
    out: list[str] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        if out and (_ABBREVIATION.search(_MARKER.sub("", out[-1])) or _CONTINUES.match(piece)):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def split_claims(answer: str) -> list[Claim]:
    """The answer's sentences (abstention sentences left out), each with the passage numbers it cites.

    A marker standing after the sentence's full stop (``... in 1867. [2]``) belongs to the sentence before it.
    """
    out: list[Claim] = []
    for piece in _sentences(answer):
        lead = _LEADING.match(piece)
        if lead and out:  # markers opening a sentence belong to the one before it
            extra = [n for m in _MARKER.finditer(lead.group(0)) for n in _numbers(m.group(1))]
            out[-1] = Claim(out[-1].text, tuple(dict.fromkeys((*out[-1].cited, *extra))))
            piece = piece[lead.end() :]
        cited = [n for m in _MARKER.finditer(piece) for n in _numbers(m.group(1))]
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", _MARKER.sub("", piece)).strip()
        if not any(ch.isalnum() for ch in text):
            if out and cited:
                out[-1] = Claim(out[-1].text, tuple(dict.fromkeys((*out[-1].cited, *cited))))
            continue
        if is_abstention(text):
            continue
        out.append(Claim(text, tuple(dict.fromkeys(cited))))
    return out


def check_input(question: str, answer: str, contexts: Sequence[str]) -> CheckInput:
    """Build the input every cheap check reads."""
    return CheckInput(
        question=question, answer=answer, claims=tuple(split_claims(answer)), contexts=tuple(str(c) for c in contexts)
    )


def validate_band(stage: str, fail_below: float, pass_at: float) -> None:
    """A stage's band must satisfy ``0 <= fail_below <= pass_at <= 1``."""
    if not 0.0 <= fail_below <= pass_at <= 1.0:
        raise ConfigurationError(
            f"gate stage {stage}: need 0 <= fail_below <= pass_at <= 1, got fail_below={fail_below} pass_at={pass_at}",
            hint=f"set KGRAG_GATE__{stage.upper()}_FAIL_BELOW and _PASS_AT accordingly",
        )


def band(score: float, fail_below: float, pass_at: float) -> GateStageOutcome:
    """``fail`` below ``fail_below``, ``pass`` at or above ``pass_at``, ``inconclusive`` in between."""
    if score < fail_below:
        return "fail"
    if score >= pass_at:
        return "pass"
    return "inconclusive"


def render_claims(item: CheckInput) -> str:
    """The answer written back from its claims, each with its (possibly re-pointed) markers."""
    return " ".join(f"{c.text}" + "".join(f" [{n}]" for n in c.cited) for c in item.claims)
