"""Constants shared by prompt templates and the code that reads model output (kept in sync by tests)."""

from __future__ import annotations

#: The exact sentence the answer prompt tells the model to reply with when the passages do not hold the answer.
#: ``prompts/templates/answer.v1.yaml`` spells it out literally; the answer gate compares against it.
ABSTENTION_TEXT = "The documents do not answer this question."
