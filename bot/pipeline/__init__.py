"""The fixed pipeline stages: checkout -> configure -> compile -> build -> verify -> publish.

Each stage has one contract (frozen dataclasses in, frozen dataclasses out); ``bot.worker``
runs them top to bottom.
"""
