"""The cheap checks of the answer gate's cascade, one per module."""
