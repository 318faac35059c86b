"""Automatic rollback: when a promoted version's gate pass rate over its last N answers falls below the previous
version's by more than a margin, the label moves back to the previous version and the move is logged.

The decision is a pure function of recorded outcomes (:func:`decide`); :class:`RollbackMonitor` finds the previous
version in the label log, feeds the decision with outcomes, and performs the move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import PromptError
from prompts.labels import LabelEvent
from prompts.registry import FilePromptRegistry

ROLLBACK_ACTOR = "auto-rollback"


class Outcome(BaseModel):
    """One answered request: the prompt version that produced it and whether the gate released it."""

    model_config = ConfigDict(frozen=True)

    version: int
    passed: bool
    created_at: str = ""


class RollbackPolicy(BaseModel):
    """When to roll back: over the last ``window`` answers of each version, a drop of more than ``margin``."""

    model_config = ConfigDict(frozen=True)

    window: int = Field(default=50, ge=1)
    margin: float = Field(default=0.1, ge=0, le=1)
    min_answers: int = Field(default=20, ge=1, description="Fewer answers than this on either side: no decision.")


class RollbackDecision(BaseModel):
    """The comparison and its verdict."""

    prompt: str
    label: str
    current: int
    previous: int | None
    current_rate: float | None
    previous_rate: float | None
    current_n: int
    previous_n: int
    rollback: bool
    reason: str
    event: LabelEvent | None = None


def pass_rate(outcomes: Sequence[Outcome], version: int, window: int) -> tuple[float | None, int]:
    """Pass rate of the newest ``window`` outcomes of ``version`` (outcomes are given oldest first)."""
    mine = [o.passed for o in outcomes if o.version == version][-window:]
    return (sum(mine) / len(mine) if mine else None), len(mine)


def decide(
    prompt: str, label: str, current: int, previous: int | None, outcomes: Sequence[Outcome], policy: RollbackPolicy
) -> RollbackDecision:
    """Roll back iff both versions have enough answers and ``rate(current) < rate(previous) - margin``."""
    cur_rate, cur_n = pass_rate(outcomes, current, policy.window)
    prev_rate, prev_n = pass_rate(outcomes, previous, policy.window) if previous is not None else (None, 0)
    base: dict[str, Any] = {
        "prompt": prompt,
        "label": label,
        "current": current,
        "previous": previous,
        "current_rate": cur_rate,
        "previous_rate": prev_rate,
        "current_n": cur_n,
        "previous_n": prev_n,
    }
    if previous is None:
        return _verdict(base, rollback=False, reason="no previous version of this label to roll back to")
    if cur_rate is None or prev_rate is None or min(cur_n, prev_n) < policy.min_answers:
        return _verdict(
            base, rollback=False, reason=f"not enough answers yet (need {policy.min_answers} of each version)"
        )
    drop = prev_rate - cur_rate
    if drop > policy.margin:
        reason = (
            f"gate pass rate of v{current} {cur_rate:.1%} over its last {cur_n} answers is {drop:.1%} below "
            f"v{previous}'s {prev_rate:.1%} over {prev_n} (margin {policy.margin:.1%})"
        )
        return _verdict(base, rollback=True, reason=reason)
    return _verdict(base, rollback=False, reason=f"pass rate drop {drop:.1%} is within the margin {policy.margin:.1%}")


def _verdict(base: dict[str, Any], *, rollback: bool, reason: str) -> RollbackDecision:
    return RollbackDecision.model_validate({**base, "rollback": rollback, "reason": reason})


class RollbackMonitor:
    """Checks a label against recorded outcomes and moves it back to the previous version when it degraded."""

    def __init__(self, registry: FilePromptRegistry, policy: RollbackPolicy) -> None:
        self.registry = registry
        self.policy = policy

    def previous_version(self, prompt: str, label: str, current: int) -> int | None:
        """The version the label pointed to before it was last moved to ``current`` (from the label log)."""
        for event in reversed(self.registry.history(prompt, label)):
            if event.to == str(current):
                if event.kind == "rollback":  # never roll "forward" to the version that was just rolled back
                    return None
                return int(event.from_) if event.from_ is not None and event.from_.isdigit() else None
            if event.kind != "rollback":
                return None
        return None

    def check(self, prompt: str, label: str, outcomes: Iterable[Outcome], *, apply: bool = True) -> RollbackDecision:
        """Decide, and when the decision is to roll back (and ``apply``), move the label back and log it."""
        targets = self.registry.targets().get(prompt, {})
        current = targets.get(label)
        if not isinstance(current, int):
            raise PromptError(
                f"prompt {prompt!r} label {label!r} is {'a split' if current is not None else 'not set'}",
                hint="automatic rollback watches labels that point at one version",
            )
        previous = self.previous_version(prompt, label, current)
        decision = decide(prompt, label, current, previous, list(outcomes), self.policy)
        if decision.rollback and apply and previous is not None:
            event = self.registry.label_store.move(
                prompt, label, previous, actor=ROLLBACK_ACTOR, kind="rollback", reason=decision.reason
            )
            self.registry.reload()
            decision = decision.model_copy(update={"event": event})
        return decision
