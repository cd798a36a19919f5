"""Backprop Ninja's web layer: FastAPI routes that call ninja_core and serialise its results."""
