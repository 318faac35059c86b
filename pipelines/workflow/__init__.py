"""The workflow engine: declared DAGs of typed steps (Python builder or YAML spec), validated when built, run with
retries, timeouts, branches, fallbacks and a per-step trace; and their drawings."""
