"""Builds and tests never use the worker's network.

A real image is built with buildah from a Dockerfile whose RUN steps install from the test
package index (on 127.0.0.1, allowed as LOCKWARDEN_ALLOWED_PRIVATE_HOSTS allows it) and try
a loopback "canary" server (127.0.0.2, not allowed) and the cloud metadata address. Test
containers of that image then run with no network, and with the private proxied network of
``test_network: true``, under OCI and chroot isolation. The canary counts every request it
gets: it must get none.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.images import BuildOutcome, BuildSpec, RunSpec
from bot.images.buildah import BuildahBuilder
from bot.sandbox.egress import EgressPolicy
from tests.support.base_image import BASE_IMAGE
from tests.support.index_server import PackageIndex

LOCAL_INDEX = EgressPolicy(("127.0.0.1",))
METADATA = "169.254.169.254"
# Each probe prints one line: what a connection attempt led to.
PROBE = """
import socket, sys, urllib.request
def probe(name, url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            print(name, "reached", answer.status)
    except urllib.error.HTTPError as exc:
        print(name, "refused", exc.code)
    except OSError as exc:
        print(name, "failed", type(exc).__name__)
def direct(name, host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        print(name, "reached")
    except OSError as exc:
        print(name, "failed", type(exc).__name__)
for arg in sys.argv[1:]:
    name, _, url = arg.partition("=")
    probe(name, url)
# The canary comes last: its port, for a connection that bypasses the proxy.
direct("direct-canary", "127.0.0.2", int(sys.argv[-1].rsplit(":", 1)[1].split("/")[0]))
direct("direct-metadata", "169.254.169.254", 80)
"""


class _Canary(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"leaked\n")

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass(frozen=True)
class Scene:
    builder: BuildahBuilder
    outcome: BuildOutcome
    tag: str
    index: PackageIndex
    canary_url: str
    canary_hits: list[str]

    def probe_command(self) -> tuple[str, ...]:
        index = f"index={self.index.url}/lwnet/"
        metadata = f"metadata=http://{METADATA}/latest/meta-data/"
        return ("python", "/probe.py", index, metadata, f"canary={self.canary_url}")


@pytest.fixture(scope="module")
def scene(buildah_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    work = tmp_path_factory.mktemp("image-network")
    hits: list[str] = []
    handler = type("Canary", (_Canary,), {"hits": hits})
    canary = ThreadingHTTPServer(("127.0.0.2", 0), handler)
    threading.Thread(target=canary.serve_forever, kwargs={"poll_interval": 0.05}).start()
    canary_url = f"http://127.0.0.2:{canary.server_address[1]}/canary"
    context = work / "context"
    context.mkdir()
    (context / "probe.py").write_text(PROBE, "utf-8")
    with PackageIndex(work / "index").start() as index:
        index.publish("lwnet", "1.0")
        (context / "Dockerfile").write_text(
            f"FROM {BASE_IMAGE}\n"
            "COPY probe.py /probe.py\n"
            "RUN python -m venv /opt/venv\n"
            f"RUN /opt/venv/bin/pip install --no-cache-dir --index-url {index.url} lwnet==1.0\n"
            f"RUN python /probe.py metadata=http://{METADATA}/ canary={canary_url}\n",
            "utf-8",
        )
        builder = BuildahBuilder(os.environ, runtime="runc", pull="never", egress=LOCAL_INDEX)
        tag = f"localhost/lockwarden-test/network:{uuid.uuid4().hex[:12]}"
        outcome = builder.build(
            BuildSpec(context, context / "Dockerfile", tag, timestamp=0, timeout_s=300)
        )
        try:
            yield Scene(builder, outcome, tag, index, canary_url, hits)
        finally:
            canary.shutdown()
            canary.server_close()
            builder.remove(tag)


@pytest.mark.slow
def test_build_installs_from_an_allowed_index_and_reaches_nothing_else(scene: Scene) -> None:
    outcome = scene.outcome
    assert outcome.ok, outcome.log_tail
    assert "Successfully installed lwnet-1.0" in outcome.log_tail
    lines = outcome.log_tail.splitlines()
    # Through the proxy: refused, with its reason. Around it: no route at all.
    assert "canary refused 403" in lines
    assert "metadata refused 403" in lines
    assert "direct-canary failed ConnectionRefusedError" in lines
    assert any(line.startswith("direct-metadata failed") for line in lines)
    assert any("127.0.0.2" in r and "loopback" in r for r in outcome.refused)
    assert any(METADATA in r and "link-local" in r for r in outcome.refused)
    assert scene.canary_hits == []


@pytest.mark.slow
def test_the_image_keeps_no_proxy_settings(scene: Scene) -> None:
    assert scene.outcome.ok, scene.outcome.log_tail
    result = subprocess.run(
        ["buildah", "inspect", "--type=image", scene.tag],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout)
    config = json.loads(data["Config"])
    recorded = json.dumps([config.get("config", {}), config.get("history", [])])
    # No setting survives: not the proxy's port, no proxy variable in the image's environment.
    # (A stage's ARG line in the history lists the build arguments' names, not their values.)
    assert "3128" not in recorded
    env = config.get("config", {}).get("Env") or []
    assert not [e for e in env if "proxy" in e.split("=", 1)[0].lower()]


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["oci", "chroot"])
def test_tests_get_no_network_by_default(scene: Scene, isolation: str) -> None:
    builder = _builder(isolation)
    outcome = builder.run(RunSpec(scene.tag, scene.probe_command(), timeout_s=120))

    lines = outcome.log_tail.splitlines()
    assert outcome.exit_code == 0, outcome.log_tail
    assert any(line.startswith("index failed") for line in lines), outcome.log_tail
    assert any(line.startswith("canary failed") for line in lines)
    assert any(line.startswith("direct-metadata failed") for line in lines)
    assert outcome.refused == ()  # nothing even got as far as the proxy
    assert scene.canary_hits == []


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["oci", "chroot"])
def test_test_network_reaches_allowed_hosts_only(scene: Scene, isolation: str) -> None:
    builder = _builder(isolation)
    outcome = builder.run(RunSpec(scene.tag, scene.probe_command(), network=True, timeout_s=120))

    lines = outcome.log_tail.splitlines()
    assert outcome.exit_code == 0, outcome.log_tail
    assert "index reached 200" in lines
    assert "canary refused 403" in lines
    assert "metadata refused 403" in lines
    assert "direct-canary failed ConnectionRefusedError" in lines
    assert any("127.0.0.2" in r for r in outcome.refused)
    assert scene.canary_hits == []


def _builder(isolation: str) -> BuildahBuilder:
    env = {**os.environ, "BUILDAH_ISOLATION": isolation}
    return BuildahBuilder(env, runtime="runc", pull="never", egress=LOCAL_INDEX)
