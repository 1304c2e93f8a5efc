"""The deployment files: deploy/Dockerfile, .dockerignore, deploy/compose.yaml and the
kustomize base in deploy/kubernetes.

They are read as data and checked for what a production deployment relies on: every file
parses, every resource kustomization.yaml lists exists, the containers run as uid 10001 with
resources set, nothing mounts a Docker socket or runs privileged, probes hit the receiver's
real endpoints, the settings named are settings Lockwarden has, and the Secrets, ports and
names that refer to each other agree. ``kubectl kustomize`` renders the base when kubectl is
installed, and the KEDA trigger's query runs against the real queue schema.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from bot import __version__
from bot.images.dockerfile.checks import check_dockerfile
from bot.jobs.postgres import QUEUE_NAME, ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.settings import Settings
from tests.support.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"

UID = 10001
WORKLOAD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob")
# The capabilities of the runtime's default set (Pod Security "baseline" allows adding only
# these); rootless buildah must get by with them.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SETTINGS_VARIABLES = {f"LOCKWARDEN_{name.upper()}" for name in Settings.model_fields}


# -- reading ---------------------------------------------------------------------------------


def load_all(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]
    assert docs, f"{path} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def kustomization() -> dict[str, Any]:
    (doc,) = load_all(KUBE / "kustomization.yaml")
    return doc


def base_resources() -> list[dict[str, Any]]:
    """Every document of every file kustomization.yaml lists, in order."""
    return [doc for name in kustomization()["resources"] for doc in load_all(KUBE / name)]


def example_resources() -> list[dict[str, Any]]:
    return [
        *base_resources(),
        *load_all(KUBE / "secret.example.yaml"),
        *load_all(KUBE / "worker-autoscaling.yaml"),
    ]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def workloads() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every workload in the base."""
    for doc in base_resources():
        if doc["kind"] in WORKLOAD_KINDS:
            yield doc, pod_spec(doc)


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec(workload)["containers"]
    return container  # type: ignore[no-any-return]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def compose() -> dict[str, Any]:
    (doc,) = load_all(COMPOSE)
    return doc


def lockwarden_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == "lockwarden:local"
    }


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_FACTORS = {
    None: 1,
    "m": 0.001,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: object) -> float:
    """A Kubernetes quantity (``500m``, ``2Gi``, ``1``) as a number."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


# -- every file parses -----------------------------------------------------------------------


def test_every_deployment_file_parses() -> None:
    files = [COMPOSE, *sorted(KUBE.glob("*.yaml"))]
    assert len(files) >= 11
    for path in files:
        load_all(path)
    for doc in example_resources():
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), doc


def test_kustomization_lists_existing_files_and_unique_resources() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (KUBE / name).is_file(), f"kustomization.yaml lists {name}, which is missing"
    # The placeholders and the KEDA example are not applied with the base.
    assert "secret.example.yaml" not in listed
    assert "worker-autoscaling.yaml" not in listed
    on_disk = {path.name for path in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - set(listed) == {"secret.example.yaml", "worker-autoscaling.yaml"}
    keys = [(d["kind"], d["metadata"]["name"]) for d in base_resources()]
    assert len(keys) == len(set(keys)), "a resource is defined twice"
    assert kustomization()["namespace"] == "lockwarden"
    find(base_resources(), "Namespace", "lockwarden")


def test_kustomize_renders_the_base() -> None:
    kubectl, kustomize = shutil.which("kubectl"), shutil.which("kustomize")
    if kubectl is None and kustomize is None:
        # Neither is in Debian's bookworm archive nor in .ci/setup; the structure is still
        # checked by the other tests.
        pytest.skip("needs kubectl or kustomize")
    argv = [kubectl, "kustomize", str(KUBE)] if kubectl else [str(kustomize), "build", str(KUBE)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rendered = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    expected = sorted((d["kind"], d["metadata"]["name"]) for d in base_resources())
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == expected
    image = kustomization()["images"][0]
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "lockwarden", doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "lockwarden"
        if doc["kind"] in WORKLOAD_KINDS:
            for container in containers(pod_spec(doc)):
                assert container["image"] == f"{image['newName']}:{image['newTag']}"


# -- nothing privileged, no Docker socket ----------------------------------------------------


def test_no_docker_socket_and_nothing_privileged_anywhere() -> None:
    for path in [COMPOSE, DOCKERFILE, *KUBE.glob("*.yaml")]:
        text = path.read_text("utf-8")
        assert "docker.sock" not in text, path
        assert not re.search(r"privileged:\s*true", text), path
    for name, service in compose()["services"].items():
        assert not service.get("privileged"), name
        assert "pid" not in service, name
        assert "network_mode" not in service, name
        for volume in service.get("volumes", []):
            assert "/run/docker" not in str(volume), name
    for workload, pod in workloads():
        name = workload["metadata"]["name"]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(flag), (name, flag)
        for volume in pod.get("volumes", []):
            assert "hostPath" not in volume, (name, volume)
        for container in containers(pod):
            context = container.get("securityContext", {})
            assert context.get("privileged", False) is False, name
            added = set(context.get("capabilities", {}).get("add", []))
            assert added <= BASELINE_CAPABILITIES, (name, added - BASELINE_CAPABILITIES)
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name


def test_every_pod_runs_as_uid_10001_with_resources() -> None:
    seen = set()
    for workload, pod in workloads():
        name = workload["metadata"]["name"]
        seen.add(name)
        pod_context = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(pod):
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, name
            assert context.get("runAsUser") == UID, name
            assert context.get("runAsGroup") == UID, name
            assert context.get("readOnlyRootFilesystem") is True, name
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory", "ephemeral-storage"):
                    assert resource in resources.get(bound, {}), (name, bound, resource)
                    quantity(resources[bound][resource])
            for resource in ("cpu", "memory", "ephemeral-storage"):
                request = quantity(resources["requests"][resource])
                assert request <= quantity(resources["limits"][resource]), (name, resource)
    assert seen == {"lockwarden-receiver", "lockwarden-worker", "lockwarden-migrate"}


def test_receiver_and_migration_meet_the_restricted_pod_security_standard() -> None:
    for name in ("lockwarden-receiver", "lockwarden-migrate"):
        kind = "Job" if name.endswith("migrate") else "Deployment"
        workload = find(base_resources(), kind, name)
        pod = pod_spec(workload)
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        context = only_container(workload)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert "add" not in context["capabilities"], name


# -- the receiver ----------------------------------------------------------------------------


def test_receiver_probes_service_and_ingress() -> None:
    docs = base_resources()
    receiver = find(docs, "Deployment", "lockwarden-receiver")
    assert receiver["spec"]["replicas"] == 2
    container = only_container(receiver)
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    # Readiness follows the queue's database (/healthz answers 503 without it); liveness
    # must not, or a database outage would restart every receiver.
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness == {"path": "/healthz", "port": "http"}
    liveness = container["livenessProbe"]["httpGet"]
    assert liveness["port"] == "http"
    assert liveness["path"] == "/metrics"

    labels = receiver["spec"]["template"]["metadata"]["labels"]
    assert receiver["spec"]["selector"]["matchLabels"] == labels
    service = find(docs, "Service", "lockwarden-receiver")
    assert service["spec"]["selector"] == labels
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports

    ingress = find(docs, "Ingress", "lockwarden")
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == ["lockwarden.example.com"]
    assert tls["secretName"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "lockwarden.example.com"
    (path,) = rule["http"]["paths"]
    # Only the webhook is public: /healthz and /metrics stay inside the cluster.
    assert (path["path"], path["pathType"]) == ("/webhook", "Exact")
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == service_port["name"]

    budget = find(docs, "PodDisruptionBudget", "lockwarden-receiver")
    assert budget["spec"]["selector"]["matchLabels"] == labels


# -- the workers -----------------------------------------------------------------------------


def test_worker_builds_with_rootless_buildah_and_finishes_its_job() -> None:
    docs = base_resources()
    worker = find(docs, "Deployment", "lockwarden-worker")
    assert worker["spec"]["replicas"] == 2
    pod = pod_spec(worker)
    assert pod["terminationGracePeriodSeconds"] == 600
    container = only_container(worker)
    assert container["args"][0] == "worker"
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
    assert "readinessProbe" not in container
    context = container["securityContext"]
    # newuidmap/newgidmap's file capabilities need it; the user namespace needs the rest.
    assert context["allowPrivilegeEscalation"] is True
    assert context["seccompProfile"] == {"type": "Unconfined"}
    assert context["appArmorProfile"] == {"type": "Unconfined"}
    assert {"SETUID", "SETGID", "SYS_CHROOT"} <= set(context["capabilities"]["add"])
    assert "SYS_ADMIN" not in context["capabilities"]["add"]

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # buildah's storage (in $HOME), the cache, and the temporary directories are emptyDirs
    # that never outlive the pod; their sizes fit the ephemeral-storage limit.
    empty_dirs = ["/home/lockwarden", "/var/cache/lockwarden", "/tmp", "/var/tmp"]
    for path in empty_dirs:
        assert "emptyDir" in volumes[mounts[path]], path
    total = sum(quantity(volumes[mounts[p]]["emptyDir"]["sizeLimit"]) for p in empty_dirs)
    assert total <= quantity(container["resources"]["limits"]["ephemeral-storage"])

    budget = find(docs, "PodDisruptionBudget", "lockwarden-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"] == labels


def test_compose_and_kubernetes_workers_get_the_same_capabilities() -> None:
    worker = compose()["services"]["worker"]
    kube = only_container(find(base_resources(), "Deployment", "lockwarden-worker"))
    assert worker["cap_drop"] == ["ALL"]
    assert sorted(worker["cap_add"]) == sorted(kube["securityContext"]["capabilities"]["add"])
    assert "seccomp=unconfined" in worker["security_opt"]
    assert "apparmor=unconfined" in worker["security_opt"]
    assert not any("no-new-privileges" in opt for opt in worker["security_opt"])


# -- settings and secrets --------------------------------------------------------------------


def test_only_real_settings_are_set() -> None:
    (configmap,) = [d for d in base_resources() if d["kind"] == "ConfigMap"]
    named = set(configmap["data"])
    for _workload, pod in workloads():
        for container in containers(pod):
            named |= set(env_of(container))
    for service in compose()["services"].values():
        named |= set(service.get("environment", {}))
    named |= set(re.findall(r"\b(LOCKWARDEN_[A-Z_]+)=", DOCKERFILE.read_text("utf-8")))
    lockwarden = {name for name in named if name.startswith("LOCKWARDEN_")}
    assert lockwarden - SETTINGS_VARIABLES == set()
    assert all(isinstance(value, str) for value in configmap["data"].values())


def test_secrets_referenced_exist_in_the_example_and_are_placeholders() -> None:
    secrets = {
        doc["metadata"]["name"]: doc
        for doc in load_all(KUBE / "secret.example.yaml")
        if doc["kind"] == "Secret"
    }
    assert set(secrets["lockwarden-github"]["stringData"]) == {"private-key.pem", "webhook-secret"}
    referenced: set[tuple[str, str]] = set()
    for workload, pod in workloads():
        for container in containers(pod):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
            env = env_of(container)
            if "LOCKWARDEN_PRIVATE_KEY_PATH" in env:
                key_path = env["LOCKWARDEN_PRIVATE_KEY_PATH"]["value"]
                mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
                volumes = {v["name"]: v for v in pod["volumes"]}
                (name,) = [n for n, p in mounts.items() if key_path.startswith(p + "/")]
                secret = volumes[name]["secret"]
                referenced.add((secret["secretName"], "private-key.pem"))
                assert secret["items"] == [
                    {"key": "private-key.pem", "path": key_path.rsplit("/", 1)[1]}
                ]
                # root-owned, group fsGroup: the uid 10001 process reads it through its group
                assert pod["securityContext"]["fsGroup"] == UID
                assert secret["defaultMode"] & 0o040
                assert not secret["defaultMode"] & 0o007
            assert workload["kind"] != "Job" or "LOCKWARDEN_PRIVATE_KEY_PATH" not in env
    assert ("lockwarden-github", "private-key.pem") in referenced
    assert ("lockwarden-github", "webhook-secret") in referenced
    assert ("lockwarden-database", "url") in referenced
    for name, key in referenced:
        assert key in secrets[name]["stringData"], (name, key)

    text = (KUBE / "secret.example.yaml").read_text("utf-8")
    for doc in secrets.values():
        for value in doc["stringData"].values():
            assert "REPLACE-ME" in value
    # Nothing that looks like a real key: no PEM header line followed by base64.
    assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/=]{40,}", text)


def test_migration_job() -> None:
    job = find(base_resources(), "Job", "lockwarden-migrate")
    container = only_container(job)
    assert container["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["backoffLimit"] >= 1
    assert set(env_of(container)) == {"LOCKWARDEN_DATABASE_URL"}


# -- autoscaling on queue depth --------------------------------------------------------------


def keda_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = load_all(KUBE / "worker-autoscaling.yaml")
    return find(docs, "ScaledObject", "lockwarden-worker"), find(
        docs, "TriggerAuthentication", "lockwarden-database"
    )


def test_keda_scales_the_workers_on_the_queue() -> None:
    scaled, auth = keda_documents()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "lockwarden-worker"
    find(base_resources(), "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert scaled["spec"]["minReplicaCount"] == 1
    assert scaled["spec"]["maxReplicaCount"] == 20
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"]["targetQueryValue"] == "5"
    query = trigger["metadata"]["query"]
    assert "FROM procrastinate_jobs" in query
    assert f"queue_name = '{QUEUE_NAME}'" in query
    assert "status = 'todo'" in query
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection"
    database = find(load_all(KUBE / "secret.example.yaml"), "Secret", ref["name"])
    assert ref["key"] in database["stringData"]


@pytest.mark.slow
def test_keda_query_counts_due_and_running_jobs(postgres_cluster: PostgresCluster) -> None:
    (trigger,) = keda_documents()[0]["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    url = postgres_cluster.create_database("deploy_keda_query")

    def depth() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    with ProcrastinateQueue(url) as queue:
        queue.migrate()
        assert depth() == 0
        ids = [
            queue.enqueue(JobRequest("refresh", f"acme/repo{n}", 7, f"delivery-{n}"))
            for n in range(3)
        ]
    assert all(ids)
    assert depth() == 3
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (ids[0],))
    assert depth() == 3, "a running job still counts"
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour' WHERE id = %s",
            (ids[1],),
        )
    assert depth() == 2, "a job waiting for its retry's backoff does not"
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (ids[0],))
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name) "
            "VALUES ('lockwarden-scheduler', 'lockwarden.schedule_tick')"
        )
    assert depth() == 1, "finished jobs and other queues do not"


# -- compose ---------------------------------------------------------------------------------


def test_compose_services() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"postgres", "migrate", "receiver", "worker"}
    assert set(lockwarden_services()) == {"migrate", "receiver", "worker"}
    for name, service in lockwarden_services().items():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert (COMPOSE.parent / service["build"]["context"] / "deploy/Dockerfile").is_file()
        assert service["env_file"] == "env", name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
    for name in ("receiver", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["restart"] == "unless-stopped"
    assert services["postgres"]["restart"] == "unless-stopped"
    # One-shot: restarted only when it fails, never once it has succeeded.
    assert services["migrate"]["restart"].startswith("on-failure")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["receiver"]["command"][0] == "serve"
    assert services["receiver"]["ports"] == ["8000:8000"]
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["stop_grace_period"] == "10m"
    # Only the receiver listens: the image's HEALTHCHECK is switched off for the others.
    for name in ("migrate", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in services["receiver"]


def test_compose_postgres_is_pinned_persistent_and_checked() -> None:
    doc = compose()
    postgres = doc["services"]["postgres"]
    assert postgres["image"] == "postgres:16-bookworm"
    (volume,) = postgres["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert name in doc["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")


def test_compose_resources_and_hardening() -> None:
    for name, service in compose()["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert "cpus" in limits, name
        assert "memory" in limits, name
    for name, service in lockwarden_services().items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        if name != "worker":
            assert "no-new-privileges:true" in service["security_opt"], name
            assert "cap_add" not in service, name
    worker = compose()["services"]["worker"]
    # Per-replica anonymous volumes: two workers never share buildah's storage.
    assert "/home/lockwarden" in worker["volumes"]


def test_compose_secrets_come_from_files() -> None:
    doc = compose()
    declared = doc["secrets"]
    for secret in declared.values():
        assert set(secret) == {"file"}
        assert secret["file"].startswith("./secrets/")
    for name, service in doc["services"].items():
        for secret in service.get("secrets", []):
            assert secret in declared, (name, secret)
    for name in ("receiver", "worker"):
        service = doc["services"][name]
        key_path = service["environment"]["LOCKWARDEN_PRIVATE_KEY_PATH"]
        assert key_path in {f"/run/secrets/{s}" for s in service["secrets"]}
    postgres = doc["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == (
        f"/run/secrets/{postgres['secrets'][0]}"
    )
    # The migration needs the database only: no App key.
    assert "secrets" not in doc["services"]["migrate"]


def _compose_command() -> list[str] | None:
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) is None:
            continue
        probe = subprocess.run(
            [*argv, "version"], capture_output=True, text=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return argv
    return None


def test_compose_config_validates(tmp_path: Path) -> None:
    """``docker compose config`` (or docker-compose 1.x) on a copy of the file, beside the
    env file and secrets an install makes."""
    argv = _compose_command()
    if argv is None:
        pytest.skip("needs docker compose or docker-compose")
    text = COMPOSE.read_text("utf-8")
    if argv == ["docker-compose"]:
        # 1.x validates the Compose spec of its time, before the top-level project name.
        text = re.sub(r"^name: .*\n", "", text, flags=re.M)
    deploy = tmp_path / "deploy"
    (deploy / "secrets").mkdir(parents=True)
    (deploy / "compose.yaml").write_text(text, "utf-8")
    (deploy / "env").write_text((DEPLOY / "env.example").read_text("utf-8"), "utf-8")
    for secret in compose()["secrets"].values():
        (deploy / secret["file"]).write_text("placeholder\n", "utf-8")
    proc = subprocess.run(
        [*argv, "--file", str(deploy / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=deploy,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(proc.stdout)
    assert set(rendered["services"]) == {"postgres", "migrate", "receiver", "worker"}
    assert rendered["services"]["worker"]["deploy"]["replicas"] == 2
    # The env file reached every Lockwarden service.
    for name in lockwarden_services():
        assert "LOCKWARDEN_WEBHOOK_SECRET" in rendered["services"][name]["environment"], name


# -- the Dockerfile and its build context -----------------------------------------------------


def test_dockerfile_has_no_findings() -> None:
    findings = check_dockerfile(
        DOCKERFILE,
        display_path="deploy/Dockerfile",
        lock_path="deploy/requirements.txt",
        lock_has_hashes=True,
    )
    assert findings == (), "\n".join(f"{f.line} {f.rule} {f.message}" for f in findings)


def test_dockerfile_structure() -> None:
    text = DOCKERFILE.read_text("utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS build$", text, re.M)
    # The lock is installed before the source is copied, with hashes and no resolver.
    lock_copy = text.index("COPY deploy/requirements.txt")
    install = text.index("--require-hashes --no-deps")
    assert lock_copy < install < text.index("COPY bot/")
    assert "--no-build-isolation" in text
    # The final stage takes only the venvs (Lockwarden's, Poetry's) and the other Pythons
    # from the build stage.
    final = text[text.rindex("\nFROM ") :]
    assert re.findall(r"COPY --from=(\S+)", final) == ["build", "build", "build"]
    assert "COPY --from=build /opt/lockwarden /opt/lockwarden" in final
    assert "COPY --from=build /opt/poetry /opt/poetry" in final
    assert "LOCKWARDEN_POETRY_BIN=/opt/poetry/bin/poetry" in final
    assert not re.search(r"^COPY (?!--from)", final, re.M)
    assert re.search(rf"^ARG VERSION={re.escape(__version__)}$", text, re.M), (
        "the image's version label must follow bot.__version__"
    )
    assert re.search(rf"^USER {UID}:{UID}$", final, re.M)
    assert re.search(r"^EXPOSE 8000$", final, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", final, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "lockwarden"]' in final
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in final
    assert "BUILDAH_ISOLATION=chroot" in final
    assert "rm -rf /var/lib/apt/lists/*" in final
    for package in ("buildah", "runc", "uidmap", "git", "ca-certificates", "tini"):
        assert re.search(rf"^\s+{re.escape(package)}=\S+ \\$", final, re.M), package


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Whether the build context keeps ``path``: the last matching pattern decides."""
    kept = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
            kept = negated
    return kept


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "an allow-list: everything out, then what the build copies"
    sources = [
        word
        for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text("utf-8"), re.M)
        for word in line.split()[:-1]
    ]
    # The code last: an edit to it leaves every step before its copy cached.
    assert sources == [
        "deploy/requirements.txt",
        "deploy/requirements-poetry.txt",
        "deploy/requirements-piptools.txt",
        "pyproject.toml",
        "README.md",
        "bot/",
    ]
    for source in sources:
        assert _dockerignore_allows(source.rstrip("/"), patterns), source
    assert _dockerignore_allows("bot/cli.py", patterns)
    for unwanted in (
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "examples/ml-service/Dockerfile.serve",
        ".mypy_cache/x",
        "deploy/env",
        "deploy/secrets/lockwarden-app.pem",
        "bot/__pycache__/cli.cpython-311.pyc",
    ):
        assert not _dockerignore_allows(unwanted, patterns), unwanted


# -- the workers' network --------------------------------------------------------------------

PRIVATE_RANGES = {
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "127.0.0.0/8",
}


def test_worker_egress_network_policy() -> None:
    docs = base_resources()
    policy = find(docs, "NetworkPolicy", "lockwarden-worker-egress")
    worker = find(docs, "Deployment", "lockwarden-worker")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items(), "the policy must select the worker pods"
    receiver = find(docs, "Deployment", "lockwarden-receiver")
    assert not selector.items() <= receiver["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Egress"]
    rules = policy["spec"]["egress"]
    ports = [{(p["protocol"], p["port"]) for p in rule["ports"]} for rule in rules]
    # Every rule names its ports: nothing is open on every port.
    assert all(rule.get("ports") for rule in rules)
    assert {("UDP", 53), ("TCP", 53)} in ports
    (internet,) = [
        r
        for r in rules
        if any("ipBlock" in t and t["ipBlock"]["cidr"] == "0.0.0.0/0" for t in r["to"])
    ]
    (block,) = internet["to"]
    assert set(block["ipBlock"]["except"]) >= PRIVATE_RANGES
    assert {(p["protocol"], p["port"]) for p in internet["ports"]} == {("TCP", 443), ("TCP", 80)}
    (database,) = [
        r for r in rules if {("TCP", 5432)} == {(p["protocol"], p["port"]) for p in r["ports"]}
    ]
    for target in database["to"]:
        assert target["ipBlock"]["cidr"] not in ("0.0.0.0/0", "169.254.0.0/16")
    (dns,) = [r for r in rules if ("UDP", 53) in {(p["protocol"], p["port"]) for p in r["ports"]}]
    assert all("ipBlock" not in target for target in dns["to"]), "DNS goes to the cluster's only"


def test_compose_worker_shares_a_network_with_the_database_only() -> None:
    doc = compose()
    services = doc["services"]
    networks = doc["networks"]
    worker = set(services["worker"]["networks"])
    for name, service in services.items():
        if name in ("worker", "postgres"):
            continue
        shared = worker & set(service.get("networks", ["default"]))
        assert not shared, f"the worker shares {shared} with {name}"
    with_database = worker & set(services["postgres"]["networks"])
    assert with_database, "the worker must reach the database"
    for name in with_database:
        assert networks[name]["internal"] is True, name
    # The receiver is published on a network the worker is not on.
    assert "front" in services["receiver"]["networks"]
    assert "front" not in worker
