"""Lockwarden: keeps the lockfiles of ML projects fresh, built, tested and reviewable."""

__version__ = "0.1.0"
