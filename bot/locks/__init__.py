"""Lockfiles: model, parser, diff, compile backends and the environment graph.

This package knows nothing of GitHub, the web server or the job queue.
"""
