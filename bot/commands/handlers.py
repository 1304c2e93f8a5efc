"""Run the slash commands of one comment.

Reads top to bottom like a command's life: who wrote it (bots are ignored; people need
write, maintain or admin permission, checked now, not when the webhook arrived) -> parse
every line (one bad line and nothing runs) -> 👀 -> each command in order, each answered in
one reply comment that is edited as it progresses -> 🚀 when all succeeded, 😕 otherwise.

Commands that change what a pull request proposes (pin, unpin, ignore, unignore, rollback,
refresh, rebase) edit the intent (a spec, the ignore rules) on a fresh clone of the default
branch, carry over the branch's earlier edits and locks, recompile, rebuild, retest and
update the bot branch and its pull request through :meth:`BranchJobs.update_branch`. A
compile failure publishes nothing: the reply says what failed. Advisory rules go the same
way, so the pull request's advisory section is rewritten with them.

``audit`` changes nothing: it clones the pull request's branch (the default branch on an
issue) and looks up the advisories of its locks; lock text is only parsed, never run.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.utils import canonicalize_name

from bot.advisories.audit import audit_locks
from bot.advisories.service import ServiceConfig
from bot.commands import messages
from bot.commands.grammar import (
    Audit,
    Command,
    Explain,
    Help,
    Ignore,
    IgnoreAdvisory,
    ParsedComment,
    Pin,
    Rebase,
    Refresh,
    Rollback,
    Unignore,
    UnignoreAdvisory,
    Unpin,
    describe,
    parse_comment,
)
from bot.config import EnvironmentConfig, RepoConfig, load_config
from bot.errors import LockwardenError
from bot.git import Clone, fetch_branch, read_file_at
from bot.github.client import Client
from bot.github.ensure import ensure_comment
from bot.github.interactions import (
    PullInfo,
    Reaction,
    add_reaction,
    can_write,
    get_pull,
    permission_of,
)
from bot.jobs.branches import (
    BOT_BRANCH_PREFIX,
    REFRESH_BRANCH,
    BranchJobs,
    BranchOutcome,
    BranchState,
    BranchUpdate,
    JobOutcome,
    RollbackRequest,
)
from bot.jobs.payloads import CommandPayload
from bot.jobs.queue import JobRequest
from bot.locks.diff import LockDiff, diff_locks
from bot.locks.explain import dependency_chains, render_chain
from bot.locks.formats import parse_any_lock, read_spec
from bot.locks.formats.base import SpecEntry
from bot.locks.ignore import (
    IGNORE_FILE,
    add_advisory_ignore,
    add_ignore,
    remove_advisory_ignore,
    remove_ignore,
)
from bot.locks.lockfile import Lockfile
from bot.locks.pinning import PinAuthor, pin_spec, read_entry, unpin_spec
from bot.locks.spec import name_or_exact_pin
from bot.paths import is_file_inside, read_text_inside, write_text_inside
from bot.report import escape
from bot.report.advisories import render_audit_comment
from bot.worker import RefreshOptions

QUOTE_MAX_CHARS = 200
"""A reply quotes at most this much of each command line."""
QUOTED_LINES_MAX = 10
ERROR_MAX_CHARS = 1_000
"""A compiler's error is cut to this much in a reply (the job log has it whole)."""
# A GitHub login: letters, digits and single hyphens, at most 39 characters.
_LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")


class CommandFailed(LockwardenError):
    """A command could not run; ``user_message`` is the reply (what went wrong, what to do),
    Markdown whose values were made inert where it was built, so it is posted as it is."""

    code = "command"


@dataclass(frozen=True)
class CommandContext:
    job: JobRequest
    gh: Client
    comment_id: int
    number: int
    author: str
    is_pull_request: bool
    key: str
    """Identity of the comment's command text: replies to an edited comment are new ones."""


class CommandRunner:
    def __init__(
        self, runner: BranchJobs, app_slug: str | None, advisories: ServiceConfig | None = None
    ) -> None:
        self._runner = runner
        self._app_slug = app_slug
        self._advisories = advisories or ServiceConfig(service="off")

    def run(self, job: JobRequest) -> JobOutcome:
        payload = CommandPayload.of(job)
        author = payload.author
        if payload.author_type == "Bot" or author.endswith("[bot]"):
            return JobOutcome("command", job.repo, "skipped", note="comment by a bot")
        parsed = parse_comment(payload.body, self._app_slug)
        if not parsed.lines and parsed.error is None:
            return JobOutcome("command", job.repo, "skipped", note="no command")
        ctx = CommandContext(
            job=job,
            gh=self._runner.installation_client(job),
            comment_id=payload.comment_id,
            number=payload.issue_number,
            author=author,
            is_pull_request=payload.is_pull_request,
            key=parsed.key,
        )

        # who: write, maintain or admin on the repository, at the time of the command
        role = permission_of(ctx.gh, job.repo, author)
        if not can_write(role):
            refused = messages.REFUSED.format(role=escape.text(role))
            self._reply(ctx, 0, refused, quote=[line.text for line in parsed.lines])
            return JobOutcome("command", job.repo, "refused", ctx.number, f"@{author} is {role}")

        # what: every line must parse before anything runs
        if parsed.error is not None or any(line.error for line in parsed.lines):
            self._react(ctx, "confused")
            self._reply_syntax_errors(ctx, parsed)
            return JobOutcome("command", job.repo, "invalid", ctx.number)

        self._react(ctx, "eyes")
        failed = False
        for index, line in enumerate(parsed.lines):
            assert line.command is not None  # every line parsed (checked above)
            if failed:
                self._reply(ctx, index, messages.NOT_RUN, quote=[line.text])
                continue
            self._reply(ctx, index, messages.WORKING, quote=[line.text])
            try:
                answer = self._dispatch(ctx, line.command)
            except CommandFailed as exc:  # built from escaped values
                failed, answer = True, messages.FAILED.format(error=exc.user_message)
            except LockwardenError as exc:  # may quote the repository: escaped here
                failed = True
                answer = messages.FAILED.format(error=escape.text(exc.user_message))
            self._reply(ctx, index, answer, quote=[line.text])
        self._react(ctx, "confused" if failed else "rocket")
        return JobOutcome("command", job.repo, "failed" if failed else "done", ctx.number)

    # -- replies -----------------------------------------------------------------------------

    def _reply(self, ctx: CommandContext, index: int, text: str, *, quote: Sequence[str]) -> None:
        """Post or edit reply ``index``: the command lines it answers, quoted inertly, then
        ``text`` (Markdown whose values are already escaped) addressed to the author."""
        body = quote_lines(quote) + f"\n\n{addressee(ctx.author)} {text}"
        ensure_comment(
            ctx.gh,
            ctx.job.repo,
            ctx.number,
            marker=f"lockwarden:reply:{ctx.comment_id}:{ctx.key[:16]}:{index}",
            body=body,
        )

    def _reply_syntax_errors(self, ctx: CommandContext, parsed: ParsedComment) -> None:
        if parsed.error is not None:
            self._reply(ctx, 0, messages.INVALID.format(error=escape.text(parsed.error)), quote=())
            return
        for index, line in enumerate(parsed.lines):
            text = (
                messages.INVALID.format(error=escape.text(line.error))
                if line.error
                else messages.NOT_RUN_INVALID
            )
            self._reply(ctx, index, text, quote=[line.text])

    def _react(self, ctx: CommandContext, content: Reaction) -> None:
        add_reaction(ctx.gh, ctx.job.repo, ctx.comment_id, content)

    # -- commands ----------------------------------------------------------------------------

    def _dispatch(self, ctx: CommandContext, command: Command) -> str:
        if isinstance(command, Help):
            return messages.HELP_TEXT
        if isinstance(command, Explain):
            return self._explain(ctx, command)
        if isinstance(command, Rollback) and command.to is not None:
            return self._rollback_to(ctx, command.to)
        if isinstance(command, Pin):
            return self._edit(ctx, command, self._pin_edit(ctx, command))
        if isinstance(command, Unpin):
            return self._edit(ctx, command, self._unpin_edit(command))
        if isinstance(command, Ignore):
            return self._edit(ctx, command, self._ignore_edit(ctx, command))
        if isinstance(command, Unignore):
            return self._edit(ctx, command, self._unignore_edit(command))
        if isinstance(command, IgnoreAdvisory):
            return self._ignore_advisory(ctx, command)
        if isinstance(command, UnignoreAdvisory):
            return self._unignore_advisory(ctx, command)
        if isinstance(command, Audit):
            return self._audit(ctx, command)
        if isinstance(command, Rollback):
            return self._rollback(ctx, command)
        if isinstance(command, Refresh):
            return self._refresh(ctx, command)
        assert isinstance(command, Rebase)
        return self._rebase(ctx)

    def _branch(self, ctx: CommandContext, *, bot_pr_only: bool) -> str:
        """The bot branch a command acts on: the pull request's, when written on one of
        Lockwarden's pull requests; the refresh branch when written on an issue."""
        if not ctx.is_pull_request:
            if bot_pr_only:
                raise CommandFailed(messages.NEEDS_BOT_PR)
            return REFRESH_BRANCH
        pull = get_pull(ctx.gh, ctx.job.repo, ctx.number)
        if not _lockwarden_pull(pull, ctx.job.repo):
            raise CommandFailed(messages.NOT_A_BOT_PR.format(branch=escape.code(pull.head_ref)))
        if pull.state != "open":
            raise CommandFailed(messages.PR_NOT_OPEN)
        return pull.head_ref

    def _update(
        self,
        ctx: CommandContext,
        update: BranchUpdate,
        *,
        describe_change: Callable[[BranchOutcome], str] | None = None,
    ) -> str:
        with tempfile.TemporaryDirectory(prefix="lockwarden-command-") as tmp:
            try:
                repo = self._runner.clone(ctx.job, Path(tmp))
            except LockwardenError as exc:
                raise CommandFailed(
                    messages.CLONE_FAILED.format(error=escape.text(exc.user_message))
                ) from exc
            outcome = self._runner.update_branch(ctx.job, ctx.gh, repo, update)
        return self._summarize(update, outcome, describe_change)

    def _summarize(
        self,
        update: BranchUpdate,
        outcome: BranchOutcome,
        describe_change: Callable[[BranchOutcome], str] | None,
    ) -> str:
        if outcome.state.blocked:
            raise CommandFailed(messages.BRANCH_NOT_OURS.format(branch=escape.code(update.branch)))
        result = outcome.result
        assert result is not None
        failed = [r for r in result.compiled.results if r.status == "failed"]
        if failed and outcome.published is None:
            detail = "\n".join(_compile_failure(r.name, r.error) for r in failed)
            raise CommandFailed(messages.COMPILE_FAILED.format(details=detail))
        published = outcome.published
        assert published is not None
        parts = [describe_change(outcome) if describe_change else ""]
        parts.append(_lock_changes(outcome))
        tests = [
            messages.TEST_RESULT.format(name=escape.code(t.name), status=escape.text(t.status))
            for t in result.tests
        ]
        if tests:
            parts.append(messages.TESTS_LINE.format(tests=", ".join(tests)))
        parts.append(_published_line(published.action, published.pull_number))
        return "\n\n".join(p for p in parts if p)

    # -- pin, unpin, ignore, unignore ------------------------------------------------------

    def _edit(
        self, ctx: CommandContext, command: Command, edit: EditFn, *, detail: str = ""
    ) -> str:
        """Apply ``edit`` to the branch; the reply: done, ``detail``, and what changed."""
        branch = self._branch(ctx, bot_pr_only=False)
        options = RefreshOptions()
        if isinstance(command, Unpin | Unignore):
            # Released: the package goes back to the newest version the specs allow, as a
            # refresh would have proposed it, not to the version the pin held it at.
            options = RefreshOptions(upgrade_packages=(command.package,))
        update = BranchUpdate(
            options=options,
            branch=branch,
            edit=edit,
            stop_on_failure=True,
            narrow=True,
        )
        done = messages.DONE.format(command=escape.code(describe(command)))
        return "\n\n".join(part for part in (done, detail, self._update(ctx, update)) if part)

    def _pin_edit(self, ctx: CommandContext, command: Pin) -> EditFn:
        def edit(repo: Clone, config: RepoConfig, state: BranchState) -> Mapping[str, str]:
            envs = _environments(config, command.environments)
            current = _current_locks(repo, config, state)
            if not command.environments:
                envs = _holding(repo.path, config, command.package, current)
                if not envs:
                    raise CommandFailed(
                        messages.NOT_IN_ANY_LOCK.format(package=escape.code(command.package))
                    )
            written: dict[str, str] = {}
            for env in envs:
                requirement = command.requirement
                if requirement == command.package:  # a bare name: pin what is locked now
                    version = _version(current.get(env.name), command.package)
                    if version is None:
                        raise CommandFailed(_not_locked(command.package, env.name))
                    requirement = f"{command.package}=={version}"
                written.update(
                    _pin(repo, env, requirement, command.package, ctx, command.reason, "pinned")
                )
            if not written:
                specs = ", ".join(escape.code(e.spec) for e in envs)
                raise CommandFailed(
                    messages.ALREADY_PINNED.format(
                        requirement=escape.code(command.requirement), specs=specs
                    )
                )
            return written

        return edit

    def _unpin_edit(self, command: Unpin) -> EditFn:
        def edit(repo: Clone, config: RepoConfig, state: BranchState) -> Mapping[str, str]:
            envs = _environments(config, command.environments) or list(config.environments)
            written: dict[str, str] = {}
            for spec, env in {env.spec: env for env in envs}.items():
                before = _read_repo_file(repo.path, spec)
                if before is None:
                    continue
                try:
                    text, removed = _unpin(env, before, command.package)
                except CommandFailed:
                    raise
                except LockwardenError as exc:
                    raise CommandFailed(
                        messages.SPEC_EDIT_FAILED.format(error=escape.text(exc.user_message))
                    ) from exc
                if removed:
                    write_text_inside(repo.path, spec, text, source=spec)
                    written[spec] = text
            if not written:
                specs = ", ".join(escape.code(e.spec) for e in envs)
                raise CommandFailed(
                    messages.NO_PIN.format(package=escape.code(command.package), specs=specs)
                )
            return written

        return edit

    def _ignore_edit(self, ctx: CommandContext, command: Ignore) -> EditFn:
        note = messages.IGNORE_NOTE.format(login=ctx.author, number=ctx.number)
        if command.reason:
            note += f": {command.reason}"
        return _rules_edit(
            lambda before: add_ignore(before, command.package, command.specifier, note)
        )

    def _unignore_edit(self, command: Unignore) -> EditFn:
        missing = messages.NOT_IGNORED.format(package=escape.code(command.package))
        return _rules_edit(_removal(lambda text: remove_ignore(text, command.package), missing))

    # -- advisory rules --------------------------------------------------------------------

    def _ignore_advisory(self, ctx: CommandContext, command: IgnoreAdvisory) -> str:
        today = datetime.now(UTC).date()
        if command.until is not None and command.until < today:
            raise CommandFailed(
                messages.UNTIL_IN_PAST.format(
                    until=command.until.isoformat(),
                    today=today.isoformat(),
                    example=(today + timedelta(days=90)).isoformat(),
                )
            )
        note = messages.IGNORE_NOTE.format(login=ctx.author, number=ctx.number)
        note += f": {command.reason}"
        edit = _rules_edit(
            lambda before: add_advisory_ignore(before, command.advisory, note, command.until)
        )
        return self._edit(ctx, command, edit, detail=_recorded(command))

    def _unignore_advisory(self, ctx: CommandContext, command: UnignoreAdvisory) -> str:
        missing = messages.NOT_IGNORED_ADVISORY.format(advisory=escape.code(command.advisory))
        edit = _rules_edit(
            _removal(lambda text: remove_advisory_ignore(text, command.advisory), missing)
        )
        removed = messages.ADVISORY_REMOVED.format(advisory=escape.code(command.advisory))
        return self._edit(ctx, command, edit, detail=removed)

    # -- audit ---------------------------------------------------------------------------------

    def _audit(self, ctx: CommandContext, command: Audit) -> str:
        branch: str | None = None
        if ctx.is_pull_request:
            pull = get_pull(ctx.gh, ctx.job.repo, ctx.number)
            if pull.head_repo != ctx.job.repo:
                raise CommandFailed(messages.AUDIT_FORK)
            branch = pull.head_ref
        with tempfile.TemporaryDirectory(prefix="lockwarden-command-") as tmp:
            try:
                # Only the tree is read: the tip is enough.
                repo = self._runner.clone(ctx.job, Path(tmp), depth=1, branch=branch)
            except LockwardenError as exc:
                raise CommandFailed(
                    messages.CLONE_FAILED.format(error=escape.text(exc.user_message))
                ) from exc
            config = load_config(repo.path).config
            _environments(config, command.environments)  # unknown names fail with the known ones
            audit = audit_locks(
                repo.path, config, self._advisories, environments=command.environments
            )
        if branch is None:
            head = messages.AUDIT_OF_DEFAULT.format(branch=escape.code(repo.default_branch))
        else:
            head = messages.AUDIT_OF_BRANCH.format(branch=escape.code(branch))
        return head + "\n\n" + render_audit_comment(audit)

    # -- rollback, refresh, rebase -----------------------------------------------------------

    def _rollback(self, ctx: CommandContext, command: Rollback) -> str:
        branch = self._branch(ctx, bot_pr_only=True)
        if not command.packages:
            if command.environments:
                raise CommandFailed(messages.ROLLBACK_ENV_NEEDS_PACKAGE)
            update = BranchUpdate(branch=branch, carry=False, stop_on_failure=True)
            return (
                messages.RESET.format(command=escape.code(describe(command)))
                + "\n\n"
                + self._update(ctx, update)
            )

        def edit(repo: Clone, config: RepoConfig, state: BranchState) -> Mapping[str, str]:
            envs = _environments(config, command.environments) or list(config.environments)
            current = _current_locks(repo, config, state)
            written: dict[str, str] = {}
            for package in command.packages:
                done = False
                for env in envs:
                    base = _version(_parse(_lock_at(repo, env), env.lock_path), package)
                    now = _version(current.get(env.name), package)
                    if now == base:
                        continue
                    if base is None:
                        raise CommandFailed(_new_package(package, env.name))
                    written.update(
                        _pin(repo, env, f"{package}=={base}", package, ctx, None, "rolled back")
                    )
                    done = True
                if not done:
                    raise CommandFailed(
                        messages.ROLLBACK_UNCHANGED.format(package=escape.code(package))
                    )
            return written

        update = BranchUpdate(branch=branch, edit=edit, stop_on_failure=True, narrow=True)
        done = messages.DONE.format(command=escape.code(describe(command)))
        return done + "\n\n" + self._update(ctx, update)

    def _refresh(self, ctx: CommandContext, command: Refresh) -> str:
        branch = REFRESH_BRANCH
        if ctx.is_pull_request:
            pull = get_pull(ctx.gh, ctx.job.repo, ctx.number)
            if _lockwarden_pull(pull, ctx.job.repo):
                branch = pull.head_ref
        options = RefreshOptions(
            upgrade=not command.packages,
            upgrade_packages=command.packages,
            environments=command.environments,
        )

        def check(repo: Clone, config: RepoConfig, state: BranchState) -> Mapping[str, str]:
            _environments(config, command.environments)  # unknown names fail before compiling
            return {}

        update = BranchUpdate(options=options, branch=branch, edit=check, stop_on_failure=True)
        done = messages.DONE.format(command=escape.code(describe(command)))
        return done + "\n\n" + self._update(ctx, update)

    def _rebase(self, ctx: CommandContext) -> str:
        branch = self._branch(ctx, bot_pr_only=True)
        update = BranchUpdate(branch=branch, stop_on_failure=True)
        return messages.REBASED + "\n\n" + self._update(ctx, update)

    def _rollback_to(self, ctx: CommandContext, to: str) -> str:
        try:
            asked = RollbackRequest(to, requested_by=ctx.author, number=ctx.number)
            done = self._runner.rollback(ctx.job, asked)
        except CommandFailed:
            raise
        except LockwardenError as exc:
            raise CommandFailed(
                messages.ROLLBACK_FAILED.format(error=escape.text(exc.user_message))
            ) from exc
        target = done.target
        digests = "\n".join(
            messages.REDEPLOY_ITEM.format(env=escape.code(env), digest=escape.code(digest))
            for env, digest in sorted(target.digests.items())
        )
        head = messages.ROLLBACK_TO_DONE.format(
            to=escape.code(target.to), sha=escape.code(target.sha[:12])
        )
        if digests:
            head += "\n\n" + messages.REDEPLOY_TITLE + "\n" + digests
        update = BranchUpdate(branch=done.branch)
        return head + "\n\n" + self._summarize(update, done.outcome, None)

    # -- explain -------------------------------------------------------------------------------

    def _explain(self, ctx: CommandContext, command: Explain) -> str:
        package = command.package
        with tempfile.TemporaryDirectory(prefix="lockwarden-command-") as tmp:
            repo = self._runner.clone(ctx.job, Path(tmp))
            config = load_config(repo.path).config
            branch_locks: dict[str, str | None] = {}
            if ctx.is_pull_request:
                pull = get_pull(ctx.gh, ctx.job.repo, ctx.number)
                if _lockwarden_pull(pull, ctx.job.repo):
                    remote = fetch_branch(repo, pull.head_ref, token=self._runner.token(ctx.job))
                    if remote is not None:
                        branch_locks = {
                            env.name: read_file_at(repo.path, remote, env.lock_path)
                            for env in config.environments
                        }
            sections = []
            for env in config.environments:
                base = _parse(_lock_at(repo, env), env.lock_path)
                new = _parse(branch_locks.get(env.name), env.lock_path) if branch_locks else None
                lock = new or base
                if lock is None:
                    continue
                chains = dependency_chains(lock, package)
                before, after = _version(base, package), _version(new, package)
                if not chains and before is None:
                    continue
                lines = [
                    messages.EXPLAIN_HEADING.format(
                        env=escape.code(env.name), lock=escape.code(env.lock_path)
                    )
                ]
                lines += [
                    messages.EXPLAIN_STEP.format(chain=escape.text(render_chain(chain)))
                    for chain in chains
                ]
                if new is not None and before != after:
                    lines.append(
                        messages.EXPLAIN_CHANGE.format(before=_shown(before), after=_shown(after))
                    )
                elif branch_locks:
                    lines.append(messages.EXPLAIN_NO_CHANGE)
                sections.append("\n".join(lines))
        shown = escape.code(package)
        if not sections:
            raise CommandFailed(messages.NOT_IN_ANY_LOCK.format(package=shown))
        return messages.EXPLAIN_TITLE.format(package=shown) + "\n\n" + "\n\n".join(sections)


EditFn = Callable[[Clone, RepoConfig, BranchState], Mapping[str, str]]


# -- helpers ---------------------------------------------------------------------------------


def quote_lines(lines: Sequence[str]) -> str:
    """The command lines a reply answers, each a blockquoted code span: what someone wrote is
    shown as written and rendered as nothing (no mention, reference, link, image or HTML),
    one line each, cut to ``QUOTE_MAX_CHARS``."""
    quoted = [
        f"> {escape.quote(line, QUOTE_MAX_CHARS)}"
        for line in lines[:QUOTED_LINES_MAX]
        if line.strip()
    ]
    return "\n".join(quoted) or messages.QUOTE_WHOLE_COMMENT


def addressee(login: str) -> str:
    """``@login`` for the author of the command (the one mention a reply makes on purpose),
    or the login as code when it is not a GitHub login."""
    return f"@{login}" if _LOGIN.fullmatch(login) else escape.code(login)


def _shown(version: str | None) -> str:
    """A version from a lock for a reply (a table cell too); "—" for none."""
    return escape.text(version) if version else "—"


def _compile_failure(env: str, error: str | None) -> str:
    """One environment's failed compile, cut to ``ERROR_MAX_CHARS``."""
    message = error or "the compile failed"
    if len(message) > ERROR_MAX_CHARS:
        message = message[: ERROR_MAX_CHARS - 1] + "…"
    return messages.COMPILE_FAILED_ITEM.format(env=escape.code(env), error=escape.text(message))


def _not_locked(package: str, env: str) -> str:
    example = escape.code(f"pin {package}==VERSION --env {env}")
    return messages.NOT_LOCKED.format(
        package=escape.code(package), env=escape.code(env), example=example
    )


def _new_package(package: str, env: str) -> str:
    return messages.ROLLBACK_NEW_PACKAGE.format(
        package=escape.code(package),
        env=escape.code(env),
        explain=escape.code(f"explain {package}"),
    )


def _lockwarden_pull(pull: PullInfo, repo: str) -> bool:
    """A pull request from one of Lockwarden's branches of this repository (not a fork's)."""
    return pull.head_ref.startswith(BOT_BRANCH_PREFIX) and pull.head_repo == repo


def _environments(config: RepoConfig, names: Sequence[str]) -> list[EnvironmentConfig]:
    known = {env.name: env for env in config.environments}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandFailed(
            messages.UNKNOWN_ENV.format(
                names=", ".join(map(escape.code, unknown)),
                known=", ".join(map(escape.code, known)) or "none",
            )
        )
    return [known[name] for name in names]


def _lock_at(repo: Clone, env: EnvironmentConfig) -> str | None:
    """The default branch's lock of ``env``."""
    return read_file_at(repo.path, "HEAD", env.lock_path)


def _current_locks(
    repo: Clone, config: RepoConfig, state: BranchState
) -> dict[str, Lockfile | None]:
    """Each environment's lock as the pull request has it now (the branch's where it still
    changes it, else the default branch's)."""
    out: dict[str, Lockfile | None] = {}
    for env in config.environments:
        text = state.seeds.get(env.lock_path) or _lock_at(repo, env)
        out[env.name] = _parse(text, env.lock_path)
    return out


def _parse(text: str | None, path: str) -> Lockfile | None:
    if text is None:
        return None
    try:
        return parse_any_lock(text, path)
    except LockwardenError:
        return None


def _version(lock: Lockfile | None, package: str) -> str | None:
    if lock is None:
        return None
    return lock.versions().get(canonicalize_name(package))


def _holding(
    root: Path, config: RepoConfig, package: str, current: Mapping[str, Lockfile | None]
) -> list[EnvironmentConfig]:
    """The environments to pin ``package`` in when none is named: those whose lock has it,
    except environments that follow another of them (through ``-c`` on its lock, or by
    including its spec with ``-r``); the pin reaches those through the upstream one."""
    having = [e for e in config.environments if _version(current.get(e.name), package)]
    by_lock = {e.lock_path: e.name for e in having}
    by_spec = {e.spec: e.name for e in having}
    out = []
    for env in having:
        try:
            tree = read_spec(root, env.backend, env.spec)
        except LockwardenError:
            out.append(env)
            continue
        upstream = {by_lock[p] for p in tree.constraint_files if p in by_lock}
        upstream |= {by_spec[p] for p in tree.files if p in by_spec and p != env.spec}
        upstream |= {name for name in env.constraints if name in by_spec.values()}
        upstream.discard(env.name)
        if not upstream:
            out.append(env)
    return out


def _pin(
    repo: Clone,
    env: EnvironmentConfig,
    requirement: str,
    package: str,
    ctx: CommandContext,
    reason: str | None,
    verb: str,
) -> dict[str, str]:
    text = _read_repo_file(repo.path, env.spec)
    if text is None:
        raise CommandFailed(
            messages.SPEC_MISSING.format(spec=escape.code(env.spec), env=escape.code(env.name))
        )
    fmt = env.format
    pin = name_or_exact_pin(requirement) or ""
    if fmt.exact_pins_only and "==" not in pin:
        raise CommandFailed(
            messages.PIN_EXACT_ONLY.format(
                requirement=escape.code(requirement), backend=escape.text(env.backend)
            )
        )
    author = PinAuthor(verb, ctx.author, ctx.number, reason)
    try:
        edit = read_entry(fmt, text, env.spec, package)
        new = pin_spec(fmt, edit, env.spec, pin or requirement, author)
    except LockwardenError as exc:
        raise CommandFailed(
            messages.SPEC_EDIT_FAILED.format(error=escape.text(exc.user_message))
        ) from exc
    if new == "already-pinned":
        return {}
    if new == "edited-by-hand":
        raise CommandFailed(_edited_by_hand(env, package, edit.entry))
    write_text_inside(repo.path, env.spec, new, source=env.spec)
    return {env.spec: new}


def _edited_by_hand(env: EnvironmentConfig, package: str, entry: SpecEntry | None) -> str:
    line = escape.code(entry.written) if entry is not None else "the line"
    return messages.PIN_EDITED_BY_HAND.format(
        package=escape.code(package), spec=escape.code(env.spec), line=line
    )


def _read_repo_file(root: Path, relative: str) -> str | None:
    """A file of the clone, None when absent; a path that leads outside the clone (a
    symlink, ``..``) raises ``PathEscapeError`` instead of being read."""
    if not is_file_inside(root, relative, source=relative):
        return None
    return read_text_inside(root, relative, source=relative)


def _unpin(env: EnvironmentConfig, text: str, package: str) -> tuple[str, bool]:
    """The spec without Lockwarden's pin of ``package``, and whether there was one. A pin
    whose line was changed by hand is left alone, and the reply says so."""
    edit = read_entry(env.format, text, env.spec, package)
    new = unpin_spec(env.format, edit, env.spec, package)
    if new == "edited-by-hand":
        raise CommandFailed(_edited_by_hand(env, package, edit.entry))
    return new, new != text


def _lock_changes(outcome: BranchOutcome) -> str:
    """What this command changed in each lock, against the pull request before it."""
    result = outcome.result
    assert result is not None
    rows = []
    for r in result.compiled.results:
        if r.new_text is None:
            continue
        before_text = outcome.state.seeds.get(r.lock, r.old_text)
        before = _parse(before_text, r.lock)
        after = _parse(r.new_text, r.lock)
        if after is None:
            continue
        diff: LockDiff = diff_locks(before, after)
        for change in diff.changes:
            if change.change == "hash-only":
                continue
            rows.append(
                messages.CHANGE_ROW.format(
                    env=escape.code(r.name, table=True),
                    package=escape.code(change.name, table=True),
                    before=_shown(change.before),
                    after=_shown(change.after),
                )
            )
    if not rows:
        return messages.NO_LOCK_CHANGE
    return "\n".join([messages.CHANGES_TITLE, "", messages.CHANGES_HEADER, *rows])


def _rules_edit(change: Callable[[str | None], str]) -> EditFn:
    """An edit of the ignore rules: ``change`` turns the file's text (None when there is no
    file) into the new text, which is written back."""

    def edit(repo: Clone, config: RepoConfig, state: BranchState) -> Mapping[str, str]:
        text = change(_read_repo_file(repo.path, IGNORE_FILE))
        write_text_inside(repo.path, IGNORE_FILE, text, source=IGNORE_FILE)
        return {IGNORE_FILE: text}

    return edit


def _removal(remove: Callable[[str], tuple[str, int]], missing: str) -> Callable[[str | None], str]:
    """A change that removes rules with ``remove``; fails with ``missing`` when none was."""

    def change(before: str | None) -> str:
        text, removed = remove(before or "")
        if not removed:
            raise CommandFailed(missing)
        return text

    return change


def _recorded(command: IgnoreAdvisory) -> str:
    """What an advisory rule records, and when it stops applying."""
    ident = escape.code(command.advisory)
    unignore = escape.code(f"/lockwarden unignore {command.advisory}")
    reason = escape.text(command.reason)
    lines = [messages.ADVISORY_RECORDED.format(advisory=ident, reason=reason)]
    if command.until is not None:
        lines.append(messages.ADVISORY_EXPIRES.format(unignore=unignore, until=command.until))
    else:
        lines.append(messages.ADVISORY_NO_EXPIRY.format(unignore=unignore))
    return "\n\n".join(lines)


def _published_line(action: str, number: int | None) -> str:
    if action == "closed":
        return messages.PUBLISHED_CLOSED
    if number is None:
        return messages.PUBLISHED_NOTHING
    return messages.PUBLISHED.format(action=action, number=number)
