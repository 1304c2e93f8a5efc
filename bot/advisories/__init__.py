"""Published vulnerability advisories of locked versions.

``service`` asks pip-audit's PyPI or OSV service about (package, version) pairs, cached and
concurrently; ``audit`` audits a repository's locks (``lockwarden audit``); ``blocked``
finds advisories whose every fix the spec rules out. The pipeline's signals stage
(``bot.pipeline.signals``) compares a run's locks before and after with them.
"""

from bot.advisories.audit import Audit, EnvironmentAudit, audit_locks, split_ignored
from bot.advisories.service import Lookup, ServiceConfig, lookup_advisories, service_config

__all__ = [
    "Audit",
    "EnvironmentAudit",
    "Lookup",
    "ServiceConfig",
    "audit_locks",
    "lookup_advisories",
    "service_config",
    "split_ignored",
]
