"""Benchmarks: the retrieval and answer harness, its metrics, the benchmark scripts and the gate's proof set; above
pipelines/."""
