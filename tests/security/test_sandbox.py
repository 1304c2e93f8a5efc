"""Repository content runs in the sandbox: no secret, no host path, no way into the worker's
network. Each attack runs through the real pipeline (``refresh`` with the worker's sandbox)
or the real sandbox, and each test checks both the refusal and that nothing leaked."""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.errors import ToolNotFoundError
from bot.locks.sources import SpecSource, check_sources, spec_sources
from bot.pipeline.checkout import Workspace
from bot.sandbox import (
    SANDBOX_OFF_WARNING,
    EgressPolicy,
    Limits,
    Sandbox,
    SandboxUnavailableError,
    open_sandbox,
)
from bot.sandbox.egress import address_kind, check_destination
from bot.sandbox.environment import sandbox_environment
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh
from tests.pipeline.conftest import Repo, env_config, new_repo, publish_graph
from tests.support.index_server import PackageIndex

SECRET = "s3cr3t-webhook-value"
KEY_TEXT = "-----BEGIN PRIVATE KEY----- not-a-real-key"

pytestmark = pytest.mark.skipif(
    open_sandbox("auto", required=False).isolated is False,
    reason="needs bubblewrap (.ci/setup installs it)",
)


@pytest.fixture
def worker_sandbox() -> Sandbox:
    """The sandbox ``lockwarden worker`` runs jobs in: required, and trusting nothing a
    repository's config says about private indexes."""
    return open_sandbox("on", required=True)


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"worker-internal-data")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_service() -> Iterator[tuple[str, list[str]]]:
    """An HTTP service on the worker's loopback (a stand-in for PostgreSQL or /metrics), on
    127.0.0.2: the tests' index on 127.0.0.1 is allowed as an operator's mirror would be,
    and the policy is per host."""
    hits: list[str] = []
    handler = type("Handler", (Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/", hits
    finally:
        server.shutdown()
        server.server_close()


def _evil_backend(outside: Path, key: Path, service: str) -> str:
    """An in-tree PEP 517 build backend: what any sdist or local package can run."""
    return f"""
import os, pathlib, urllib.request

def _attack():
    report = ["ENV " + repr(dict(os.environ))]
    for path in ({str(outside / "marker")!r}, os.path.expanduser("~/marker")):
        try:
            pathlib.Path(path).write_text("written from the sandbox")
            report.append("WROTE " + path)
        except OSError as exc:
            report.append("NOWRITE " + path + " " + type(exc).__name__)
    try:
        report.append("KEY " + pathlib.Path({str(key)!r}).read_text())
    except OSError as exc:
        report.append("NOKEY " + type(exc).__name__)
    try:
        report.append("PROC " + pathlib.Path("/proc/1/environ").read_text())
    except OSError as exc:
        report.append("NOPROC " + type(exc).__name__)
    for url in ({service!r}, "http://169.254.169.254/latest/meta-data/"):
        try:
            report.append("NET " + urllib.request.urlopen(url, timeout=5).read().decode())
        except Exception as exc:
            report.append("NONET " + url + " " + str(exc))
    raise SystemExit("\\n".join(report))

def get_requires_for_build_wheel(config_settings=None):
    _attack()

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _attack()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _attack()
"""


def _plant_evil_package(repo: Repo, outside: Path, key: Path, service: str) -> None:
    repo.write(
        "evilpkg/pyproject.toml",
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        '[project]\nname = "evilpkg"\ndynamic = ["version"]\n',
    )
    repo.write("evilpkg/backend.py", _evil_backend(outside, key, service))


@pytest.fixture
def repo(tmp_path: Path, package_index: PackageIndex) -> Repo:
    return new_repo(tmp_path, publish_graph(package_index))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pip-tools", "uv"])
def test_a_build_backend_in_the_repository_sees_no_secret_no_key_and_no_loopback(
    repo: Repo,
    tmp_path: Path,
    backend: str,
    worker_sandbox: Sandbox,
    loopback_service: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, hits = loopback_service
    outside = tmp_path / "outside"
    outside.mkdir()
    key = tmp_path / "app-key.pem"
    key.write_text(KEY_TEXT, "utf-8")
    monkeypatch.setenv("LOCKWARDEN_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    _plant_evil_package(repo, outside, key, service)
    repo.spec("serve", "./evilpkg")
    repo.configure(env_config("serve", backend=backend))
    settings = Settings(cache_dir=repo.cache_dir, private_key_path=key)

    result = refresh(
        Workspace(repo.root, "repo"),
        RefreshOptions(build=False),
        settings,
        sandbox=worker_sandbox,
    )

    [lock] = result.compiled.results
    assert lock.status == "failed"
    said = json.dumps([lock.error, lock.tool_output, list(lock.notes)])
    [seen] = [line for line in (lock.tool_output or "").splitlines() if "ENV {" in line]
    assert "PATH" in seen  # the backend ran, and reported the environment it saw
    assert "LOCKWARDEN_" not in seen
    assert "GITHUB_TOKEN" not in seen
    assert SECRET not in said
    assert KEY_TEXT not in said
    assert "NOKEY" in said
    assert not (outside / "marker").exists()
    assert hits == []
    assert f"NONET {service}" in said
    assert "NONET http://169.254.169.254" in said
    notes = " ".join(lock.notes)
    assert "127.0.0.2 (127.0.0.2) is a loopback address" in notes
    assert "169.254.169.254 (169.254.169.254) is a link-local address" in notes


@pytest.mark.slow
def test_a_private_index_in_a_spec_is_refused_before_the_compiler_starts(
    repo: Repo, worker_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKWARDEN_ALLOWED_PRIVATE_HOSTS")
    repo.spec("serve", "--index-url http://169.254.169.254/simple", "alpha")
    # A config naming no index: the worker would not trust one the repository named anyway.
    repo.write(
        ".github/lockwarden.yml",
        "environments:\n  - name: serve\n    spec: requirements/serve.in\n",
    )
    result = refresh(
        Workspace(repo.root, "repo"),
        RefreshOptions(build=False),
        Settings(cache_dir=repo.cache_dir),
        sandbox=worker_sandbox,
    )

    [lock] = result.compiled.results
    assert lock.status == "failed"
    assert lock.failure == "refused"
    assert lock.error is not None
    assert lock.error.startswith(
        "requirements/serve.in:1: --index-url http://169.254.169.254/simple: "
        "169.254.169.254 is a link-local address"
    )
    assert "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS" in lock.error
    assert not repo.lock_path("serve").exists()


@pytest.mark.slow
def test_the_worker_does_not_trust_a_private_index_that_the_repository_config_names(
    repo: Repo, worker_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKWARDEN_ALLOWED_PRIVATE_HOSTS")
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve", backend="uv"))  # index_url: the loopback index

    as_worker = refresh(
        Workspace(repo.root, "repo"),
        RefreshOptions(build=False, dry_run=True),
        Settings(cache_dir=repo.cache_dir),
        sandbox=worker_sandbox,
    )
    on_own_checkout = refresh(
        Workspace(repo.root, "repo"),
        RefreshOptions(build=False, dry_run=True),
        Settings(cache_dir=repo.cache_dir),
        sandbox=open_sandbox("on", required=False),
    )

    [refused] = as_worker.compiled.results
    assert refused.failure == "refused"
    assert ".github/lockwarden.yml: --index-url" in (refused.error or "")
    [compiled] = on_own_checkout.compiled.results
    assert compiled.status != "failed", compiled.error


# -- index options and direct references ------------------------------------------------------


def test_index_options_are_named_in_notes(tmp_path: Path) -> None:
    spec = tmp_path / "requirements" / "train.in"
    spec.parent.mkdir()
    spec.write_text(
        "--extra-index-url https://download.pytorch.org/whl/cu121  # GPU wheels\n"
        "-f https://example.org/wheels/\n"
        "--trusted-host example.org\n"
        "torch==2.3.1+cu121\n"
        "mypkg @ git+https://github.com/org/mypkg@v1\n"
        "-e ./libs/core\n",
        "utf-8",
    )

    sources = spec_sources(tmp_path, ["requirements/train.in"])
    check = check_sources(sources, EgressPolicy(), sandboxed=True)

    assert check.error is None
    assert check.notes == (
        "requirements/train.in:1: --extra-index-url https://download.pytorch.org/whl/cu121 "
        "(index option)",
        "requirements/train.in:2: -f https://example.org/wheels/ (index option)",
        "requirements/train.in:3: --trusted-host example.org (index option)",
        "requirements/train.in:5: @ git+https://github.com/org/mypkg@v1 (direct reference)",
        "requirements/train.in:6: -e ./libs/core (direct reference)",
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("--index-url http://127.0.0.1:9/simple", "loopback"),
        ("-i http://localhost/simple", "loopback"),
        ("--extra-index-url=http://10.1.2.3/simple", "private"),
        ("--find-links http://192.168.0.10/wheels", "private"),
        ("--trusted-host 172.16.0.4", "private"),
        ("--index-url http://[::1]:8080/simple", "loopback"),
        ("--index-url http://[::ffff:169.254.169.254]/simple", "link-local"),
        ("--index-url http://100.64.0.1/simple", "shared (carrier-grade NAT)"),
    ],
)
def test_hosts_in_private_ranges_are_refused_with_the_line(
    tmp_path: Path, line: str, kind: str
) -> None:
    (tmp_path / "serve.in").write_text(f"alpha\n{line}\n", "utf-8")

    check = check_sources(spec_sources(tmp_path, ["serve.in"]), EgressPolicy(), sandboxed=True)

    assert check.error is not None
    assert check.error.startswith(f"serve.in:2: {line.replace('=', ' ', 1)}".split(" http")[0])
    assert f"is a {kind} address" in check.error


def test_an_allowed_private_index_passes(tmp_path: Path) -> None:
    (tmp_path / "serve.in").write_text("--index-url http://10.1.2.3/simple\nalpha\n", "utf-8")

    check = check_sources(
        spec_sources(tmp_path, ["serve.in"]), EgressPolicy(("10.0.0.0/8",)), sandboxed=True
    )

    assert check.error is None


def test_direct_references_need_the_sandbox() -> None:
    source = SpecSource("serve.in:3", "-e", "path", "./evilpkg")

    refused = check_sources([source], EgressPolicy(), sandboxed=False)
    allowed = check_sources([source], EgressPolicy(), sandboxed=True)

    assert refused.error is not None
    assert "only inside the sandbox" in refused.error
    assert allowed.error is None


# -- the sandbox itself -----------------------------------------------------------------------


def _python(sandbox: Sandbox, workspace: Path, code: str, **kwargs: object) -> str:
    run = sandbox.run([sys.executable, "-c", code], workspace=workspace, **kwargs)  # type: ignore[arg-type]
    return run.result.stdout + run.result.stderr


def test_the_sandbox_shows_only_the_workspace_and_the_toolchain(
    tmp_path: Path, worker_sandbox: Sandbox
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    (private / "key.pem").write_text(KEY_TEXT, "utf-8")

    said = _python(
        worker_sandbox,
        workspace,
        "import os, pathlib\n"
        f"print('KEY', pathlib.Path({str(private / 'key.pem')!r}).exists())\n"
        "print('UID', os.getuid())\n"
        "print('PIDS', sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
        "print('ROOT', sorted(os.listdir('/root')) if os.path.isdir('/root') else None)\n"
        "pathlib.Path('made-here').write_text('ok')\n",
    )

    assert "KEY False" in said
    assert "UID 65534" in said
    pids = json.loads(said.split("PIDS ")[1].splitlines()[0].replace("'", '"'))
    assert len(pids) <= 4  # bubblewrap's init, the relay, this interpreter
    assert (workspace / "made-here").read_text("utf-8") == "ok"


def test_the_environment_is_an_allow_list() -> None:
    env = sandbox_environment(
        {
            "PATH": "/usr/bin",
            "LOCKWARDEN_WEBHOOK_SECRET": SECRET,
            "LOCKWARDEN_DATABASE_URL": "postgresql://u:p@db/x",
            "GITHUB_TOKEN": SECRET,
            "AWS_ACCESS_KEY_ID": "AKIA",
            "PIP_INDEX_URL": "https://example.org/simple",
            "UV_INDEX_FOO_PASSWORD": SECRET,
            "POETRY_HTTP_BASIC_CORP_PASSWORD": SECRET,
            "PIP_CLIENT_CERT": "/secrets/client.pem",
            "DATABASE_URL": "postgresql://u:p@db/x",
        }
    )

    assert env == {
        "PATH": "/usr/bin",
        "PIP_INDEX_URL": "https://example.org/simple",
        "LANG": "C.UTF-8",
        "PYTHONUTF8": "1",
    }


def test_secrets_passed_by_mistake_never_reach_the_process(
    tmp_path: Path, worker_sandbox: Sandbox
) -> None:
    said = _python(
        worker_sandbox,
        tmp_path,
        "import os; print(sorted(os.environ))",
        env={"PATH": "/usr/bin:/bin", "LOCKWARDEN_PRIVATE_KEY": KEY_TEXT, "GH_TOKEN": SECRET},
    )

    assert "LOCKWARDEN" not in said
    assert "GH_TOKEN" not in said
    assert "'HOME'" in said


def test_output_is_capped(tmp_path: Path) -> None:
    sandbox = open_sandbox("on", required=True)
    capped = Sandbox(True, sandbox.bwrap, limits=Limits(output_bytes=1000))

    run = capped.run(
        [sys.executable, "-c", "print('x' * 100000)"], workspace=tmp_path, network=False
    )

    assert len(run.result.stdout) < 1200
    assert "output truncated by Lockwarden's sandbox" in run.result.stdout


def test_memory_is_limited(tmp_path: Path) -> None:
    sandbox = open_sandbox("on", required=True)
    small = Sandbox(True, sandbox.bwrap, limits=Limits(memory_bytes=256 * 1024**2))

    run = small.run([sys.executable, "-c", "b = bytearray(512 * 1024 * 1024)"], workspace=tmp_path)

    assert run.result.returncode != 0
    assert "MemoryError" in run.result.stderr


def test_a_missing_tool_is_reported_as_missing(tmp_path: Path, worker_sandbox: Sandbox) -> None:
    with pytest.raises(ToolNotFoundError, match="'/opt/no-such-tool' was not found"):
        worker_sandbox.run(["/opt/no-such-tool"], workspace=tmp_path)


def test_without_network_nothing_is_reachable(
    tmp_path: Path, worker_sandbox: Sandbox, loopback_service: tuple[str, list[str]]
) -> None:
    service, hits = loopback_service
    said = _python(
        worker_sandbox.with_policy(EgressPolicy(("127.0.0.1",))),
        tmp_path,
        f"import urllib.request\ntry:\n urllib.request.urlopen({service!r}, timeout=3)\n"
        "except Exception as exc: print('NONET', exc)",
        network=False,
    )

    assert "NONET" in said
    assert hits == []


# -- the egress policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address checked, not bound
        ("100.100.100.200", "shared (carrier-grade NAT)"),
        ("151.101.0.223", None),
        ("2a04:4e42::223", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    import ipaddress

    assert address_kind(ipaddress.ip_address(address)) == kind


def test_a_name_is_checked_by_the_address_it_resolves_to() -> None:
    address, refusal = check_destination(EgressPolicy(), "localhost", 80)

    assert address.is_loopback
    assert refusal is not None
    assert "localhost" in refusal


def test_an_allowed_network_admits_its_addresses() -> None:
    import ipaddress

    policy = EgressPolicy(("10.8.0.0/16", "mirror.internal"))

    assert policy.refusal("10.8.1.2", ipaddress.ip_address("10.8.1.2")) is None
    assert policy.refusal("mirror.internal", ipaddress.ip_address("10.9.0.1")) is None
    assert policy.refusal("other", ipaddress.ip_address("10.9.0.1")) is not None


# -- no silent fallback -------------------------------------------------------------------------


def test_the_worker_refuses_to_start_without_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here

    with pytest.raises(SandboxUnavailableError, match="LOCKWARDEN_SANDBOX=off"):
        open_sandbox("auto", required=True)
    local = open_sandbox("auto", required=False)
    off = open_sandbox("off", required=True)

    assert not local.isolated
    assert "bubblewrap (bwrap) is not installed" in local.reason
    assert not off.isolated
    assert off.reason == SANDBOX_OFF_WARNING


def test_serve_exits_when_the_sandbox_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    bin_dir = tmp_path / "bin"  # git, but no bwrap
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {
        "PATH": str(bin_dir),
        "LOCKWARDEN_APP_ID": "1",
        "LOCKWARDEN_PRIVATE_KEY": pem,
        "LOCKWARDEN_WEBHOOK_SECRET": SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["serve", "--port", "1"])

    assert result.exit_code == 2
    assert "the sandbox cannot start" in result.output
    assert "LOCKWARDEN_SANDBOX=off" in result.output


def test_healthz_warns_when_the_sandbox_is_off() -> None:
    from fastapi.testclient import TestClient

    from bot.jobs.queue import InMemoryQueue
    from bot.server.app import create_app

    app = create_app(
        Settings(webhook_secret=SECRET),  # type: ignore[arg-type]
        InMemoryQueue(),
        sandbox=open_sandbox("off", required=True),
    )

    body = TestClient(app).get("/healthz").json()

    assert body["sandbox"] == SANDBOX_OFF_WARNING


def test_each_repository_has_its_own_compile_cache_on_the_worker(
    tmp_path: Path, worker_sandbox: Sandbox
) -> None:
    from bot.worker import compile_cache

    settings = Settings(cache_dir=tmp_path)

    first = compile_cache(settings, worker_sandbox, "Org/First")
    second = compile_cache(settings, worker_sandbox, "org/second")
    local = compile_cache(settings, open_sandbox("on", required=False), "org/first")

    assert first == tmp_path / "repositories" / "org--first"
    assert second is not None
    assert second.parent == first.parent
    assert first != second
    assert local == tmp_path  # a person's own checkouts share one cache


def test_where_proc_cannot_be_mounted_the_sandbox_has_none(tmp_path: Path) -> None:
    """In a pod whose /proc is masked, bubblewrap cannot mount a fresh one: the sandbox then
    runs without /proc rather than showing the worker's."""
    bwrap = open_sandbox("on", required=True).bwrap
    sandbox = Sandbox(True, bwrap, fresh_proc=False)

    said = _python(sandbox, tmp_path, "import os; print('PROC', os.path.exists('/proc/1'))")

    assert "PROC False" in said
