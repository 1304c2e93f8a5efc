"""Real locks from public repositories, replayed against the real index: the first minimal
run leaves each one byte-identical.

Only locks whose spec is known and whose pins are all installable here are listed (the
others need a VCS host, or pin a release with no file for this platform). The index is PyPI,
the one network place this machine and CI reach.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "lockfiles"

if not REALDATA.is_dir():
    pytest.skip("shared/realdata/lockfiles is not present", allow_module_level=True)

# (file-name prefix in realdata, the spec's path in its repository, the lock's path)
REPLAYED = [
    pytest.param(
        "kubeflow__pipelines__api__v2alpha1__python__requirements",
        "api/v2alpha1/python/requirements.in",
        "api/v2alpha1/python/requirements.txt",
        id="kubeflow-api-python3.9",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("prefix", "spec", "lock"), REPLAYED)
def test_a_real_lock_is_a_byte_identical_no_op(
    tmp_path: Path, prefix: str, spec: str, lock: str
) -> None:
    root = tmp_path / "repo"
    for source, target in ((f"{prefix}.in", spec), (f"{prefix}.txt", lock)):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALDATA / source, root / target)
    (root / ".github").mkdir()
    (root / ".github/lockwarden.yml").write_text(
        f"environments:\n  - name: main\n    spec: {spec}\n    lock: {lock}\n", "utf-8"
    )
    before = (root / lock).read_bytes()

    result = CliRunner().invoke(
        main,
        ["run", str(root), "--no-build"],
        env={
            "LOCKWARDEN_CACHE_DIR": str(tmp_path / "cache"),
            "LOCKWARDEN_TOOLCHAIN_DIR": str(tmp_path / "toolchains"),
        },
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "unchanged" in result.output
    assert (root / lock).read_bytes() == before
