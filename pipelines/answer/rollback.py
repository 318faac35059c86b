"""Automatic rollback in the answer path: after recorded answers, check the answer prompt's label and move it back to
the version it was promoted from when the promoted version's gate pass rate fell below it (:mod:`prompts.rollback`
decides; the outcomes are read from the audit store the answers were written to).
"""

from __future__ import annotations

import logging
import threading

from core.settings import RollbackSettings
from core.types import AnswerRecord
from pipelines.store.base import AuditStore
from pipelines.store.sql_audit import recent_outcomes
from prompts.registry import FilePromptRegistry
from prompts.rollback import RollbackDecision, RollbackMonitor, RollbackPolicy

log = logging.getLogger("kgrag.rollback")


class AutoRollback:
    """Watches one prompt's label from inside the answer service: every ``check_every`` answers made with that prompt
    (its first draft, when the strict retry ran), it compares the label's version with the previous one on the
    recorded outcomes and rolls the label back when it degraded. The move goes through the registry the answer
    service resolves from, so the next answer already uses the restored version."""

    def __init__(
        self,
        registry: FilePromptRegistry,
        audit: AuditStore,
        settings: RollbackSettings,
        *,
        prompt: str = "answer",
        label: str = "production",
    ) -> None:
        self.registry = registry
        self.audit = audit
        self.settings = settings
        self.prompt = prompt
        self.label = label
        self.monitor = RollbackMonitor(
            registry,
            RollbackPolicy(window=settings.window, margin=settings.margin, min_answers=settings.min_answers),
        )
        self._lock = threading.Lock()
        self._since_check = 0

    def observe(self, record: AnswerRecord) -> RollbackDecision | None:
        """Count ``record``; on every ``check_every``-th answer of the watched prompt, check (and maybe roll back).

        Returns the decision when a check ran. A failing check is logged, never raised: it must not lose an answer.
        """
        used = record.provenance.first_prompt or record.provenance.prompt
        if used.name != self.prompt:
            return None
        with self._lock:
            self._since_check += 1
            if self._since_check < self.settings.check_every:
                return None
            self._since_check = 0
            try:
                return self._check()
            except Exception as exc:  # the answer is saved already: a monitor failure must not fail the request
                log.warning("automatic rollback check of %s/%s failed: %s", self.prompt, self.label, exc, exc_info=True)
                return None

    def _check(self) -> RollbackDecision | None:
        current = self.registry.targets().get(self.prompt, {}).get(self.label)
        if not isinstance(current, int) or self.monitor.previous_version(self.prompt, self.label, current) is None:
            return None  # a split label, or nothing to roll back to: no audit read needed
        outcomes = recent_outcomes(self.audit, self.prompt, limit=self.settings.window * 20)
        decision = self.monitor.check(self.prompt, self.label, outcomes)
        if decision.event is not None:
            log.warning("automatic rollback of %s/%s: %s", self.prompt, self.label, decision.reason)
        return decision
