"""Shared helpers: the embedded default model, logging, atomic file writes."""
