"""The answer gate's proof: a labelled set of faithful and hallucinated answers, and its runner."""
