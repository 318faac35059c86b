"""Benchmark scripts (run by hand; they print measured figures, nothing is asserted)."""
