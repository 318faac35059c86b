"""Shared types, settings, errors and the model client. Imports no other kgrag package."""
