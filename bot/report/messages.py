"""Every user-visible string of the reports, as templates in one place."""

from __future__ import annotations

TITLE = "## Lockwarden: lock refresh for {repo}"
MODE = {
    "minimal": "minimal (only what spec edits force)",
    "full": "full refresh (`--upgrade`)",
    "targeted": "targeted ({packages})",
}
SUMMARY_LINE = (
    "Mode: {mode} · {total} environment{s} · {changed} changed · {failed} failed{dry_run}"
)
DRY_RUN_SUFFIX = " · dry run: nothing written"
SUMMARY_HEADER = "| environment | status | changes | compile |\n|---|---|---|---|"
SUMMARY_ROW = "| {name} | {status} | {changes} | {compile_s:.1f} s |"
STATUS_ICON = {"changed": "🔄 changed", "unchanged": "✅ unchanged", "failed": "❌ failed"}
NO_CHANGES = "none"

HASH_ONLY_WARNING = (
    "> [!WARNING]\n"
    "> **Hash-only change**: {items}. The version is the same but the published files are "
    "not: a re-upload or possible tampering. Check the release on the index before merging."
)
HASH_ONLY_ITEM = "{requirement} in {env}{where}"
HASH_ONLY_GROUPS = " (Poetry group {groups})"
HASH_ONLY_OUTPUT = " ({path})"

ENV_SECTION_OPEN = (
    "<details{open}><summary><b>{name}</b>: <code>{lock}</code>, {summary}</summary>\n"
)
ENV_SECTION_CLOSE = "\n</details>"
ENV_CONSTRAINED = "Constrained by: {upstream}.\n"
CHANGES_HEADER = "| package | change | from | to | kind | |\n|---|---|---|---|---|---|"
CHANGE_ROW = "| {package} | {change} | {before} | {after} | {kind} | {direct} |"
DIRECT = "direct"
TRANSITIVE = "transitive"
FAILED_BODY = "**{error}**\n\n{output}"
NOTES_ITEM = "- {note}"

CONSISTENCY_TITLE = "### Versions that differ across environments"
CONSISTENCY_HEADER = "| package | versions | rule |\n|---|---|---|"
CONSISTENCY_ROW = "| {package} | {versions} | {rule} |"
CONSISTENCY_REQUIRED = "❌ listed in `consistent`"
CONSISTENCY_INFO = "informational"

CHANGE_COUNTS = {
    "added": "{n} added",
    "removed": "{n} removed",
    "upgraded": "{n} upgraded",
    "downgraded": "{n} downgraded",
    "hash-only": "{n} hash-only",
    "source": "{n} source changed",
    "rebuilt": "{n} rebuilt",
    "group": "{n} moved between groups",
    "files-added": "{n} with files added",
    "files-changed": "{n} with files changed",
    "marker": "{n} marker changed",
}
TEXT_CHANGE = {
    "header": "header only",
    "annotations": "annotations only",
    "metadata": "metadata only (content-hash)",
    "layout": "layout only",
    "format-migration": "format migration {detail}",
}
HASHES_REPLACED = " · hashes replaced: {added} added, {removed} removed"
FILES_REHASHED = " · new hash for {files}"
FILES_ADDED = " · {added} file(s) added"
FILES_CHANGED = " · files: {added} added, {removed} removed"
MARKER_CHANGED = " · marker {before} → {after}"

OUTPUT_TITLE = {
    "platform-lock": "**{path}** ({platform}): {summary}",
    "export": "**{path}** (exported from the lock for the image): {summary}",
}
GROUPS_MOVED = " · groups {before} → {after}"
GROUPS_TAG = " · {groups}"
BUILD_CHANGED = " · build {before} → {after}"
WHEEL_GAPS_WARNING = (
    "⚠️ **No wheel for a target platform**: pip would build these from source in the image "
    "(or fail): {items}."
)
WHEEL_GAP_ITEM = "{requirement} on {platform}{sdist}"
WHEEL_GAP_SDIST = ""
WHEEL_GAP_NOTHING = " (no file at all)"
WHEELS_UNCHECKED = "Wheel check incomplete: {reason}"
PINS_TITLE = "### Image inputs"
PINS_HEADER = "| where | what | from | to |\n|---|---|---|---|"
PINS_ROW = "| {where} | {what} | {before} | {after} |"
PINS_OS_PACKAGE = "{manager} package {name}"
PINS_DOWNGRADE = (
    " ⬇️ **downgrade**: the package sources no longer offer the pinned version (or the pin was "
    "ahead of them); check the older package is acceptable"
)
PINS_BASE_IMAGE = "base image {name}"
PINS_UNPINNED = (
    "Unpinned OS packages (the version installed changes whenever the mirror does; pin them "
    "as `pkg=version` and Lockwarden keeps the pins current): {items}."
)
PINS_UNPINNABLE = "Base images that cannot be pinned (built from variables): {items}."
PINS_ERROR = "❌ {error}"
PINS_NOTE = "Note: {note}."

PYPI_RELEASE_URL = "https://pypi.org/project/{name}/{version}/"
INDEX_PROJECT_URL = "{index}/{name}/"

IMAGES_TITLE = "### Images"
IMAGES_HEADER = (
    "| environment | before | after | size | change | layers | reproducible | tests |\n"
    "|---|---|---|---|---|---|---|---|"
)
IMAGES_ROW = (
    "| {name} | {before} | {after} | {size} | {delta} | {layers} | {reproducible} | {tests} |"
)
IMAGE_SKIPPED_ROW = "| {name} | | | | | | | skipped: {reason} |"
IMAGE_FAILED_ROW = "| {name} | | ❌ build failed | | | | | {reason} |"
REPRODUCIBLE = {True: "✅ yes", False: "⚠️ **no**", None: "not checked"}
TEST_STATUS = {
    "passed": "✅ passed",
    "failed": "❌ failed",
    "errored": "❌ errored",
    "timed-out": "⏱️ timed out",
    "skipped": "skipped",
}
CACHED_SUFFIX = " (cached)"
REPRODUCIBILITY_WARNING = (
    "> [!WARNING]\n> **Not reproducible**: rebuilding {name} without cache gave a different "
    "image: {differences}."
)
BUILD_FAILED_BODY = (
    "<details open><summary><b>{name}</b>: image build failed</summary>\n\n**{error}**\n\n"
    "{log}\n</details>"
)
TESTS_BODY = (
    "<details{open}><summary><b>{name}</b>: {tests}; lock install "
    "check {install}, pip check {pip_check}</summary>\n\n{log}\n</details>"
)
TESTS_RAN = "tests {status} in {duration:.1f} s"
TESTS_SKIPPED = "tests skipped ({reason})"
FINDINGS_TITLE = "### Dockerfile findings"
FINDINGS_HEADER = "| where | rule | severity | finding |\n|---|---|---|---|"
FINDING_ROW = "| {where} | {rule} | {severity} | {message} |"

PR_TITLE = "Update locks: {environments}"
PR_TITLE_FULL = "Refresh locks: {environments}"
COMMIT_BODY = "Recompiled {environments} ({mode} refresh) with Lockwarden."
COMMIT_EDITED = "Edited by review commands: {files}."
PR_TRUNCATED = "*The report is cut here to fit GitHub's limit; the full report is in {where}.*"
PR_TESTS_FAILED = (
    "> [!CAUTION]\n> **Tests failed** in {environments}: this pull request stays a draft until "
    "they pass."
)
PR_FAILURE_EXCERPT = "\n<details open><summary>{name}</summary>\n\n{log}\n</details>"
PR_YANKED_TITLE = "### Yanked upstream"
PR_YANKED_INTRO = (
    "The index now marks a locked version as yanked; this refresh moves the package off it. "
    "Check whether images built from the old lock need a rebuild."
)
PR_YANKED = "- {package} {version} was yanked: {reason}"
PR_YANKED_NO_REASON = "- {package} {version} was yanked (the index gives no reason)"
ROLLBACK_TITLE = "### Rollback"
ROLLBACK_BEFORE = "Before merging, comment on this pull request:"
ROLLBACK_PACKAGE = (
    "- {command} (any packages; `--env ENV` for some environments only): pins them back to "
    "their versions on {branch} at {sha} and recompiles the rest."
)
ROLLBACK_ALL = (
    "- `/lockwarden rollback`: every lock back to {branch} at {sha}; the pull request, left "
    "with nothing to propose, is closed. Closing it yourself does the same."
)
ROLLBACK_AFTER = "After merging, comment on this pull request or on an issue:"
ROLLBACK_KNOWN_GOOD = (
    "- `/lockwarden rollback --to known-good`: opens a pull request that restores every lock "
    "(and the images' base digests and OS package pins) of the known-good set {sha} of {date}, "
    "the newest whose tests all passed, rebuilt and retested."
)
ROLLBACK_NO_KNOWN_GOOD = (
    "- There is no known-good set (a merged Lockwarden pull request whose tests all passed) "
    "among the recent commits of {branch}, so `/lockwarden rollback --to known-good` would "
    "refuse unless an older one exists. `/lockwarden rollback --to {sha}` opens a pull "
    "request that restores the locks from before this one, rebuilt and retested."
)
ROLLBACK_REVERT = "- Or revert by hand: {command}."
ROLLBACK_IMAGES = "Images of the current locks, to redeploy:"
ROLLBACK_IMAGE = "- {name}: {digest}"
EDITS_DROPPED = (
    "> [!WARNING]\n> The review edits of the previous commit could not be carried onto the "
    "default branch and were dropped ({error}). Write the commands again if they still apply."
)
ROLLBACK_PR_TITLE = "Roll back locks to {to} ({sha})"
ROLLBACK_PR_SECTION = "### Restored locks"
ROLLBACK_PR_SOURCE = (
    "Every environment's lock is restored from {to} ({sha}){asked}, then recompiled "
    "against the current specs only where they need it, rebuilt and retested."
)
ROLLBACK_ASKED = ", as asked by @{login}"
ROLLBACK_PR_MISSING = "Left as they are (no lock at that commit): {envs}."
ROLLBACK_PR_REDEPLOY = "Images built from those locks, to redeploy:"
CHECK_PASSED = "Locks of {count} environment(s) refreshed; images built and tested"
CHECK_FAILED = "Failed: {environments}"
PR_CLOSED_EMPTY = (
    "The locks on the default branch already match what this refresh would write; closing."
)
PR_HUMAN_PUSH = (
    "Someone other than Lockwarden pushed to {branch}, so Lockwarden stopped updating it and "
    "will not overwrite those commits. Merge or close this pull request, or delete the branch, "
    "to let Lockwarden take over again."
)
ONBOARDING_COMMIT = (
    "Configure Lockwarden\n\nProposed from the environments found in the repository."
)
ONBOARDING_TITLE = "Configure Lockwarden"
ONBOARDING_BODY = """\
Lockwarden keeps this repository's lockfiles fresh: it recompiles each environment's lock from
its spec, builds the image, runs the tests inside it and opens one pull request to review.

It found these environments:

{found}

Merging this pull request adds the configuration below (commit `{sha}`); until then nothing
else happens. Adjust it first if needed (`lockwarden schema` prints the JSON Schema).

```yaml
{config}```
"""
KNOWN_GOOD = (
    "Merged with every test passing: this lock set (`{sha}` on the default branch) is now a "
    "known-good set that `/lockwarden rollback --to known-good` can return to."
)
CHECK_CLONE_FAILED = "Lockwarden could not clone the repository"
NOT_KNOWN_GOOD = (
    "Merged, but its tests did not all pass, so this lock set (`{sha}`) is not recorded as "
    "known-good; rollbacks to known-good skip it."
)

# -- the security pull request ---------------------------------------------------------------

SECURITY_PR_TITLE = "Security fixes: {moves}"
SECURITY_SECTION = "### Security fixes"
SECURITY_INTRO = (
    "Only the packages below move, each to the lowest fixed version every spec allows; "
    "the rest of every lock stays as it is on the default branch."
)
SECURITY_FIXED = "- {advisory}: {package} {old} → {new} ({environments})"
SECURITY_UNFIXED_SECTION = "### Not fixed"
SECURITY_UNFIXED = "- {advisory}: {package} {version} ({environments}): {reason}"
SECURITY_BLOCKED = (
    "the fixed versions ({fixes}) are ruled out by {requirement} ({spec}); relax that line "
    "and the next security run moves it"
)
SECURITY_NO_FIX = (
    "no fixed version is published yet; Lockwarden moves it once one is, or record the "
    "decision with `/lockwarden ignore <advisory>`"
)
SECURITY_NO_COMMON_FIX = (
    "each advisory of the package has a fix the specs allow, but no one version fixes them "
    "all; pin a version in the spec that does (`/lockwarden pin`)"
)
SECURITY_POETRY = (
    "Poetry cannot move one package to a given version without changing pyproject.toml; "
    "pin it there ({pin}) or run `poetry update --lock` for the package"
)
SECURITY_NOT_MOVED = (
    "the compile did not move it (see the report above); the lock keeps the affected version"
)
SECURITY_QUARANTINE = (
    "### Release-age quarantine passed\n\nThese security fixes are younger than the "
    "quarantine (`min_release_age`) and are taken anyway:"
)
SECURITY_NOTHING_TO_FIX = (
    "No advisory affecting the default branch's locks has a fixed version the specs allow."
)
SECURITY_CLOSED = "Closing: nothing is left for this pull request to fix. {reason}"
SECURITY_UNCHECKED = (
    "advisories could not be looked up; the security pull request is left as it is until a "
    "run that can (check LOCKWARDEN_ADVISORY_SERVICE and the service's reachability)"
)
