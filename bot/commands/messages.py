"""Every user-visible string of the slash commands, as templates in one place."""

from __future__ import annotations

# -- help ------------------------------------------------------------------------------------
HELP_TEXT = """\
### Lockwarden commands

Write a command on a line of its own in a pull request or issue comment. Several command \
lines in one comment run in order. A command is read only at the start of a line of \
ordinary text: not in code, quotes, lists, headings, tables or HTML comments.

| command | what it does | example |
|---|---|---|
| `pin <requirement> [--env ENV]... [-- reason]` | Pin a package, to the version given or \
to the version locked now, and recompile. | \
`/lockwarden pin numpy==1.26.4 --env serve -- breaks tokenizer` |
| `unpin <package> [--env ENV]...` | Remove a pin and recompile. | `/lockwarden unpin numpy` |
| `rollback [<package>...] [--env ENV]...` | Undo the latest update of the packages named, \
or of every package when none is named. | \
`/lockwarden rollback numpy`<br>`/lockwarden rollback` |
| `rollback --to <ref>` | Restore the locks of a commit, branch or tag, or of the last \
known-good set (tests passed on the default branch). | `/lockwarden rollback --to known-good` |
| `refresh [--env ENV]... [--package PKG]...` | Recompile now: everything, or only the \
environments and packages named (`PKG` is a name or `name==version`). | \
`/lockwarden refresh --env train --package torch` |
| `rebase` | Rebase the pull request on its base branch and recompile. | `/lockwarden rebase` |
| `explain <package>` | Say why a package is locked at its version: what requires it, \
constraints and pins. | `/lockwarden explain numpy` |
| `ignore <package> [<range>] [-- reason]` | Stop proposing updates of a package, or only \
those in one version range. | \
`/lockwarden ignore numpy ">=2" -- waiting for the 2.x migration` |
| `unignore <package>` | Propose updates of a package again. | `/lockwarden unignore numpy` |
| `ignore <advisory> [--until YYYY-MM-DD] -- reason` | Set an advisory aside: reports list \
it as ignored, with the reason, instead of as open, through the `--until` day when one is \
given. The reason is required. | \
`/lockwarden ignore GHSA-abcd-1234-wxyz --until 2027-01-31 -- no fix we can take yet` |
| `unignore <advisory>` | Report an advisory as open again. | \
`/lockwarden unignore GHSA-abcd-1234-wxyz` |
| `audit [--env ENV]...` | List the published advisories of the locked versions: on a pull \
request, of its branch's locks; on an issue, of the default branch's. | `/lockwarden audit` |
| `help` | Show this table. | `/lockwarden help` |

Only people with write, maintain or admin permission on the repository can run commands. \
`@` followed by the App's name works as a prefix too, in place of `/lockwarden`. `--env` can \
be repeated or given a comma list (`--env serve,train`); quote an argument that contains \
spaces, `<`, `>` or `;`. An advisory id is `GHSA-xxxx-xxxx-xxxx`, or `PYSEC`, `CVE`, `OSV`, \
`MAL` or `GSD` followed by `-YEAR-NUMBER` (e.g. `PYSEC-2024-12`); an advisory is matched by \
its id or any alias. Ignore rules live in `.github/lockwarden-ignore.txt`. Each command gets \
one reply, edited as it progresses, and a reaction on the comment: 👀 accepted, 🚀 done, 😕 failed.
"""

# -- grammar errors --------------------------------------------------------------------------
# Each says what is wrong and how to fix it. Values are quoted by the grammar and cut to 80
# characters, so a huge argument is never echoed back. The few placeholders inside backticks
# take only checked shapes (command names, advisory ids, refs, operators): no backtick.
SEE_HELP = "Write `/lockwarden help` for the commands and examples."

USAGE = {
    "pin": "`/lockwarden pin <requirement> [--env ENV]... [-- reason]`",
    "unpin": "`/lockwarden unpin <package> [--env ENV]...`",
    "rollback": (
        "`/lockwarden rollback [<package>...] [--env ENV]...` or `/lockwarden rollback --to <ref>`"
    ),
    "refresh": "`/lockwarden refresh [--env ENV]... [--package PKG]...`",
    "rebase": "`/lockwarden rebase`",
    "explain": "`/lockwarden explain <package>`",
    "ignore": (
        "`/lockwarden ignore <package> [<range>] [-- reason]` or "
        "`/lockwarden ignore <advisory> [--until YYYY-MM-DD] -- reason`"
    ),
    "unignore": "`/lockwarden unignore <package>` or `/lockwarden unignore <advisory>`",
    "audit": "`/lockwarden audit [--env ENV]...`",
    "help": "`/lockwarden help`",
}
OPTIONS = {
    "pin": "only `--env`",
    "unpin": "only `--env`",
    "rollback": "only `--env` and `--to`",
    "refresh": "only `--env` and `--package`",
    "ignore": "only `--until`, with an advisory id",
    "audit": "only `--env`",
}
NO_OPTIONS = "no options"
MISSING = {
    "pin": ("a requirement", "/lockwarden pin numpy==1.26.4"),
    "unpin": ("a package name", "/lockwarden unpin numpy"),
    "explain": ("a package name", "/lockwarden explain numpy"),
    "ignore": ("a package name or an advisory id", '/lockwarden ignore numpy ">=2"'),
    "unignore": ("a package name or an advisory id", "/lockwarden unignore numpy"),
}

COMMENT_TOO_LONG = (
    "This comment is {length:,} characters long and Lockwarden reads commands only in "
    "comments of at most {limit:,} characters. Put the commands in a short comment of their own."
)
TOO_MANY_COMMANDS = (
    "This comment has {count} command lines and Lockwarden runs at most {limit} per comment. "
    "Split them over several comments."
)
LINE_TOO_LONG = (
    "This command line is {length:,} characters long and the limit is {limit:,}. "
    "Shorten it, or split it into several commands."
)
NOT_ONE_LINE = "A command must fit on one line: remove the line break from {line}."
NO_PREFIX = "{line} is not a command: a command line starts with `/lockwarden`. " + SEE_HELP
EMPTY_COMMAND = "{prefix} needs a command, e.g. `/lockwarden pin numpy==1.26.4`. " + SEE_HELP
UNKNOWN_COMMAND = "Unknown command {name}. " + SEE_HELP
UNKNOWN_COMMAND_CLOSE = "Unknown command {name}: did you mean `{close}`? " + SEE_HELP
UNCLOSED_QUOTE = (
    "A quote in {text} is not closed: close it on the same line "
    "(a command and its arguments must fit on one line)."
)
BACKSLASH = "A command cannot contain backslashes, as in {text}: remove them."
CONTROL_CHARACTER = "The argument {token} contains a control character: remove it."
QUOTED_SEPARATOR = (
    "A quoted `--` is not allowed: write the reason after a bare ` -- `, "
    "e.g. `/lockwarden pin numpy==1.26.4 -- breaks tokenizer`."
)
REASON_NOT_TAKEN = (
    "`{name}` takes no reason: remove the ` -- ` and the text after it (only `pin` and "
    "`ignore` take a reason). Usage: {usage}."
)
ARGPARSE_ERROR = "`{name}`: {message}. Usage: {usage}."
UNKNOWN_OPTION = "`{name}` has no option {option}: it takes {options}. Usage: {usage}."
UNRECOGNIZED_ARGUMENTS = (
    "`{name}`: unrecognized arguments {extra}. Usage: {usage}; quote an argument that "
    "contains spaces, `<`, `>` or `;`."
)
MISSING_ARGUMENT = "`{name}` needs {what}, e.g. `{example}`. Usage: {usage}."
INVALID_REQUIREMENT = (
    "{requirement} is not a valid requirement ({error}). Write it like `numpy==1.26.4` or "
    '`"numpy>=1.26,<2"`, quoted when it contains spaces, `<`, `>` or `;`.'
)
URL_REQUIREMENT = (
    "{requirement} points at a URL, and Lockwarden pins only versions from the package "
    "index: write a version instead, like `numpy==1.26.4`."
)
UNSAFE_REQUIREMENT = (
    "{requirement} contains {what}, which a requirements file would read as a comment or an "
    "option: remove it."
)
INVALID_PACKAGE = (
    "{package} is not a package name: give the name alone, like `numpy` "
    "(no version, extras or markers)."
)
INVALID_PACKAGE_PIN = (
    "{package} is not a package name or `name==version`: write `--package torch` or "
    "`--package torch==2.3.1`."
)
INVALID_IGNORE_TARGET = (
    "{package} is not a package name, a name with one version range, or an advisory id: write "
    '`/lockwarden ignore numpy`, `/lockwarden ignore numpy ">=2"` or '
    "`/lockwarden ignore GHSA-abcd-1234-wxyz -- reason`."
)
ADVISORY_ID_SHAPES = (
    "an advisory id is `GHSA-xxxx-xxxx-xxxx` (letters and digits), or `PYSEC`, `CVE`, `OSV`, "
    "`MAL` or `GSD` followed by `-YEAR-NUMBER`, like `PYSEC-2024-12` or `CVE-2024-1234`"
)
INVALID_ADVISORY = (
    "{advisory} is not an advisory id: " + ADVISORY_ID_SHAPES + ". Copy the id from the "
    "advisory's page or from `/lockwarden audit`."
)
ADVISORY_NEEDS_REASON = (
    "Ignoring `{advisory}` needs a reason, the record of why the risk is accepted: write it "
    "after ` -- `, e.g. `/lockwarden ignore {advisory} --until 2027-01-31 -- no fix we can "
    "take yet`."
)
ADVISORY_WITH_RANGE = (
    "An advisory rule takes no version range ({extra}): write `/lockwarden ignore {advisory} "
    "-- reason`, with `--until YYYY-MM-DD` for an expiry."
)
REASON_TOO_LONG = (
    "The reason is {length:,} characters long and the limit is {limit:,}: shorten it, and "
    "link to an issue for the details."
)
UNTIL_NEEDS_ADVISORY = (
    "`--until` gives an advisory rule its expiry; package rules have none: write "
    "`/lockwarden ignore <advisory> --until YYYY-MM-DD -- reason`, or drop `--until`."
)
INVALID_UNTIL = (
    "{until} is not a date: write the last day the rule applies as `YYYY-MM-DD`, e.g. "
    "`--until 2027-01-31`."
)
INVALID_ENVIRONMENT = (
    "{env} is not a valid environment name: use the `name` of an environment in "
    "`.github/lockwarden.yml` (letters, digits, `.`, `_` and `-`; at most 64 characters)."
)
INVALID_REF = (
    "{ref} is not `known-good` or a valid commit, branch or tag: write "
    "`/lockwarden rollback --to known-good` or a ref like `main`, `v1.2` or a commit sha."
)
ROLLBACK_TO_COMBINED = (
    "`rollback --to` restores the whole set of locks, so it cannot be combined with packages "
    "or `--env`: write `/lockwarden rollback --to {ref}` alone, or drop `--to`."
)
INVALID_SPECIFIER = (
    "{specifier} is not a version range: write one range like `>=2`, `<2`, `==2.*` or "
    '`~=1.26`, quoted, e.g. `/lockwarden ignore numpy ">=2"`.'
)
SPECIFIER_OPERATOR = (
    "{specifier} uses `{operator}`, which `ignore` does not take: write one range with `==`, "
    '`>=`, `>`, `<=`, `<` or `~=`, e.g. `/lockwarden ignore numpy ">=2"`.'
)
SPECIFIER_CLAUSES = (
    "{specifier} has {count} clauses and `ignore` takes one version range: write one, "
    'like `/lockwarden ignore numpy ">=2"`.'
)
SPECIFIER_TWICE = (
    "The version range is given twice, in {first} and {second}: write it once, e.g. "
    '`/lockwarden ignore numpy ">=2"`.'
)


# -- replies of the command handlers ---------------------------------------------------------
# Each reply starts with the quoted command and "@<author> "; these are what follows. Every
# value is Markdown made inert by the caller (``escape.code`` or ``escape.text``), so no
# template puts backticks around a placeholder: a backtick in the value would end the span.
QUOTE_WHOLE_COMMENT = "> (the whole comment)"
REFUSED = (
    "sorry, commands can only be run by people with write, maintain or admin permission on "
    "this repository (yours: {role}). Nothing was run. A maintainer can run it for you."
)
INVALID = "😕 this command was not run: {error}"
NOT_RUN_INVALID = "⏸️ not run: another command in this comment is invalid, so none of them ran."
NOT_RUN = "⏸️ not run: an earlier command in this comment failed."
WORKING = "⏳ working on it: recompiling, rebuilding and retesting. This reply will be updated."
FAILED = "😕 {error}"
DONE = "🚀 done: {command}."
RESET = "🚀 done: {command}: every lock is back to the default branch's."
REBASED = "🚀 rebuilt this branch on the current default branch."
CLONE_FAILED = "could not clone the repository: {error}"
COMPILE_FAILED = (
    "nothing was changed: the recompile failed.\n\n{details}\n\n"
    "Fix the command (a version that exists, a compatible range) and write it again."
)
NEEDS_BOT_PR = (
    "this command works on Lockwarden's pull requests: write it in a comment on the refresh "
    "pull request."
)
NOT_A_BOT_PR = (
    "this pull request's branch {branch} is not Lockwarden's; write the command on a "
    "Lockwarden pull request, or on an issue to change the next refresh."
)
PR_NOT_OPEN = "this pull request is closed; reopen it or write the command on an issue."
BRANCH_NOT_OURS = (
    "someone else pushed to {branch}, so Lockwarden no longer rewrites it. Nothing was "
    "changed: edit the branch by hand, or delete it to let Lockwarden start again."
)
UNKNOWN_ENV = "unknown environment {names}; this repository has {known}."
NOT_IN_ANY_LOCK = "{package} is in none of this repository's locks."
NOT_LOCKED = (
    "{package} is not in the {env} lock, so there is no version to pin; give one: {example}."
)
NO_PIN = (
    "{package} has no pin written by Lockwarden in {specs}; a requirement written by a "
    "person is theirs to change in a commit."
)
NOT_IGNORED = "{package} has no rule in `.github/lockwarden-ignore.txt`; nothing to undo."
NOT_IGNORED_ADVISORY = (
    "{advisory} has no rule in `.github/lockwarden-ignore.txt`; nothing to undo "
    "(`/lockwarden audit` lists the advisories ignored now)."
)
UNTIL_IN_PAST = (
    "the expiry {until} is in the past (today is {today}), so the rule would never apply: "
    "give a day from today on, e.g. `--until {example}`, or drop `--until`."
)
ADVISORY_RECORDED = (
    "Recorded in `.github/lockwarden-ignore.txt`: {advisory} is reported as ignored, "
    "with the reason: {reason}"
)
ADVISORY_EXPIRES = (
    "It expires after {until}: from the next day on, reports list it as open again. Renew it "
    "with the same command and a later `--until`, or remove it with {unignore}."
)
ADVISORY_NO_EXPIRY = (
    "It has no expiry: reports list it as ignored until {unignore} removes the rule."
)
ADVISORY_REMOVED = (
    "Removed {advisory} from `.github/lockwarden-ignore.txt`: reports list it as open again."
)
AUDIT_OF_BRANCH = "Advisories of the locks on {branch} (this pull request's branch):"
AUDIT_OF_DEFAULT = "Advisories of the locks on the default branch {branch}:"
AUDIT_FORK = (
    "this pull request comes from another repository, whose branch Lockwarden does not "
    "fetch; run `lockwarden audit` in a checkout of it, or write `/lockwarden audit` on an "
    "issue for the default branch's locks."
)
SPEC_MISSING = "the spec {spec} of {env} does not exist on the default branch."
ROLLBACK_ENV_NEEDS_PACKAGE = (
    "`rollback --env` needs package names: `rollback numpy --env serve`; `rollback` alone "
    "resets every lock."
)
ROLLBACK_NEW_PACKAGE = (
    "{package} is new in {env} in this pull request, so there is no earlier version to go "
    "back to; roll back or pin the package that pulls it in ({explain} shows which)."
)
ROLLBACK_UNCHANGED = "{package} is not changed by this pull request; nothing to roll back."
ROLLBACK_FAILED = "could not roll back: {error}"
ROLLBACK_TO_DONE = "🚀 rollback to {to} ({sha}) proposed."
REDEPLOY_TITLE = "Images built from those locks, to redeploy:"
REDEPLOY_ITEM = "- {env}: {digest}"
CHANGES_TITLE = "Lock changes made by this command:"
CHANGES_HEADER = "| environment | package | before | after |\n|---|---|---|---|"
NO_LOCK_CHANGE = "No lock changed (the locks already satisfied it)."
TESTS_LINE = "Tests: {tests}."
PUBLISHED = "Pull request #{number} {action}."
PUBLISHED_CLOSED = "Nothing is left to propose, so the pull request was closed."
PUBLISHED_NOTHING = "Nothing to publish."
EXPLAIN_TITLE = "Why {package} is locked:"
EXPLAIN_CHANGE = "- this pull request changes it: {before} → {after}"
EXPLAIN_NO_CHANGE = "- this pull request does not change it"
IGNORE_NOTE = "ignored by @{login} in #{number}"
COMPILE_FAILED_ITEM = "- {env}: {error}"
CHANGE_ROW = "| {env} | {package} | {before} | {after} |"
TEST_RESULT = "{name} {status}"
EXPLAIN_HEADING = "**{env}** ({lock})"
EXPLAIN_STEP = "- {chain}"

PIN_EXACT_ONLY = (
    "{requirement}: a {backend} environment takes exact pins only; write `name==version`."
)
SPEC_EDIT_FAILED = "The spec could not be edited: {error}"
ALREADY_PINNED = "{requirement} is already pinned in {specs}; nothing to change, nothing pushed."
PIN_EDITED_BY_HAND = (
    "{package} in {spec} carries Lockwarden's pin note, but its line was changed by hand "
    "({line}), so Lockwarden leaves it alone. Edit the line yourself, or delete the note and "
    "run the command again."
)
