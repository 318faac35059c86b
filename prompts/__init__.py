"""Versioned prompt templates and the registry that resolves labels to versions and renders them."""
