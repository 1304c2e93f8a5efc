"""The sandbox the tests compile in: bubblewrap's where it works (CI installs it), as the
worker's would be; a plain subprocess on a developer machine without it. The tests' package
indexes listen on 127.0.0.1, which the policy allows as an operator would allow a mirror.

``PLAIN`` runs commands as plain subprocesses, for tests that record what reaches
``shell.run``."""

from __future__ import annotations

from bot.sandbox import EgressPolicy, Sandbox, open_sandbox

SANDBOX: Sandbox = open_sandbox("auto", required=False).with_policy(EgressPolicy(("127.0.0.1",)))
PLAIN = Sandbox(isolated=False, policy=EgressPolicy(("127.0.0.1",)))
