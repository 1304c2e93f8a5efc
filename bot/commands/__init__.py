"""Slash commands in pull request and issue comments: the grammar (pure, no I/O) in
grammar.py; the handlers that run them in handlers.py."""
