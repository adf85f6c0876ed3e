"""Recommendation-event tracking gateway."""

__version__ = "0.1.0"
