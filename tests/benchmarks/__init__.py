"""Benchmarks: scripts run by hand (``python -m tests.benchmarks.<name>``), never by pytest."""
