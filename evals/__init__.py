"""The answer gate (scored before release) and the offline benchmark harness."""
