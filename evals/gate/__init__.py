"""The answer gate: cheap checks that may only fail an answer fast, and the Ragas-based verdicts that release it;
below pipelines/."""
