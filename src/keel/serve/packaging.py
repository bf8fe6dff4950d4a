"""``keel deploy package``'s files: a Dockerfile and Kubernetes manifests that run ``keel serve DEPLOYMENT``.

Pure text: nothing here reads the store or the file system (``keel.cli.deploy_package`` does, then writes).
The image installs keel from a wheel in the build context (``wheels/``), never by name from an index: the
name ``keel`` on PyPI is another project. Store, artifacts and prediction log reach the pods through a
ConfigMap; the bearer token (and a PostgreSQL password) through a Secret the user creates, never a value here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument

PORT = 8080
UID = 10001
SERVE_EXTRAS = ("registry", "onnx", "postgres", "s3", "kafka")  # models and their ONNX form, any store, any log sink
LIVE, READY = "/v2/health/live", "/v2/health/ready"
GRACE_SECONDS = 40  # > keel serve's 30 s graceful shutdown: in-flight requests finish, the prediction log is flushed


@dataclass(frozen=True)
class PackageSpec:
    """What the files say. ``requirements``: the served models' own (``scikit-learn==1.8.0``...), pinned as registered."""

    deployment: str
    keel_version: str
    image: str
    store: str
    artifacts: str = ""
    prediction_log: str = "parquet"
    requirements: tuple[str, ...] = ()
    replicas: int = 2
    wheel: str = ""  # the wheel's file name in wheels/ (default: keel's own for keel_version)
    resources: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    )

    @property
    def wheel_name(self) -> str:
        return self.wheel or f"keel-{self.keel_version}-py3-none-any.whl"


def k8s_name(deployment: str) -> str:
    """A DNS-1123 name for ``deployment`` (lower case, dashes; a short hash when that changed the name)."""
    base = re.sub(r"[^a-z0-9]+", "-", deployment.lower()).strip("-")[:40] or "deployment"
    name = f"keel-{base}"
    if base != deployment:
        name += "-" + hashlib.sha256(deployment.encode()).hexdigest()[:6]
    return name


def dockerfile(spec: PackageSpec) -> str:
    install = [f"/tmp/wheels/{spec.wheel_name}[{','.join(SERVE_EXTRAS)}]", *spec.requirements]
    unsafe = [r for r in install if any(ord(c) < 32 or ord(c) == 127 for c in r)]
    if unsafe:  # the store checks requirements; a version written before it did must not add Dockerfile lines
        raise InvalidArgument.for_field("requirements", unsafe[0], "one line of printable characters per requirement")
    health = ["python", "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}{LIVE}', timeout=2)"]
    command = ["keel", "serve", spec.deployment, "--host", "0.0.0.0", "--port", str(PORT)]
    return "\n".join([
        f"# Written by `keel deploy package` (keel {spec.keel_version}) for deployment {json.dumps(spec.deployment)}.",
        "# Build: see README.txt (the keel wheel goes in wheels/).",
        "FROM python:3.11-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DO_NOT_TRACK=true",
        "COPY wheels/ /tmp/wheels/",
        "RUN pip install " + " ".join(_shell_quote(x) for x in install) + " && rm -rf /tmp/wheels",
        f"RUN useradd --create-home --uid {UID} --user-group keel",
        f"USER {UID}:{UID}",
        "WORKDIR /home/keel",
        f"EXPOSE {PORT}",
        f"HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 CMD {json.dumps(health)}",
        f"CMD {json.dumps(command)}",
        "",
    ])  # fmt: skip


def _shell_quote(word: str) -> str:
    return "'" + word.replace("'", "'\"'\"'") + "'"


def manifests(spec: PackageSpec) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and Service (in that order: what the Deployment reads exists first)."""
    name = k8s_name(spec.deployment)
    config, secret = f"{name}-config", f"{name}-secret"
    labels = {"app.kubernetes.io/name": "keel-serve", "app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": "keel"}
    annotations = {"keel/deployment": spec.deployment}
    meta = {"name": name, "labels": labels, "annotations": annotations}
    probe = {"httpGet": {"path": LIVE, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}
    ready = {"httpGet": {"path": READY, "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2}

    def secret_env(env: str, key: str) -> dict[str, Any]:
        return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}

    container = {
        "name": "keel-serve",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config}}],
        "env": [secret_env("KEEL_TOKEN", "token"), secret_env("PGPASSWORD", "pgpassword")],
        "resources": spec.resources,
        "livenessProbe": {**probe, "initialDelaySeconds": 5},
        "readinessProbe": ready,
        # the load balancer stops sending before the server stops taking requests
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": UID},
    }
    pod_annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT), "prometheus.io/path": "/metrics"}
    return [
        {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": config},
            "data": {"KEEL_STORE": spec.store, "KEEL_ARTIFACTS": spec.artifacts, "KEEL_PREDICTION_LOG": spec.prediction_log},
        },
        {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {
                "replicas": spec.replicas,
                "selector": {"matchLabels": {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels, "annotations": {**annotations, **pod_annotations}},
                    "spec": {"terminationGracePeriodSeconds": GRACE_SECONDS, "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {
                "type": "ClusterIP",
                "selector": {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")},
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]  # fmt: skip


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """YAML documents in block style; a string is plain when YAML cannot read it as anything else, else
    double-quoted as JSON (which YAML reads the same)."""
    return "".join("---\n" + "\n".join(_yaml_lines(doc, 0)) + "\n" for doc in documents)


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}  # YAML 1.1 reads these as bool/null


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return text if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS else json.dumps(text)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                lines += _yaml_lines(item, indent + 2)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_empty(item) if isinstance(item, (dict, list)) else _scalar(item)}")
        return lines
    for item in value:
        nested = _yaml_lines(item, indent + 2) if isinstance(item, (dict, list)) and item else [f"{pad}  {_scalar(item)}"]
        lines.append(f"{pad}- {nested[0].lstrip()}")
        lines += nested[1:]
    return lines


def _empty(value: dict[str, Any] | list[Any]) -> str:
    return "{}" if isinstance(value, dict) else "[]"


def readme(spec: PackageSpec) -> str:
    name = k8s_name(spec.deployment)
    return f"""keel deploy package: deployment {spec.deployment!r}, keel {spec.keel_version}

Files
  Dockerfile        python:3.11-slim, keel with the extras serving needs ({", ".join(SERVE_EXTRAS)}) and the
                    served models' own requirements, a non-root user ({UID}), port {PORT}, a health check on
                    {LIVE}; runs `keel serve` for this deployment.
  kubernetes.yaml   ConfigMap {name}-config (KEEL_STORE, KEEL_ARTIFACTS, KEEL_PREDICTION_LOG), Deployment {name}
                    ({spec.replicas} replicas, liveness {LIVE}, readiness {READY}, resource requests and limits),
                    Service {name} (port {PORT}). Pods annotated for Prometheus scraping of /metrics.
  wheels/           put the keel wheel here before building: {spec.wheel_name}

1. The keel wheel (keel is installed from this file, not by name from a package index):
     pip wheel --no-deps -w wheels/ /path/to/keel/source
   (or run `keel deploy package ... --wheel PATH` with a wheel you already have).

2. Build and push the image:
     docker build -t {spec.image} .
     docker push {spec.image}

3. Check kubernetes.yaml: KEEL_STORE must be a store every pod reaches (postgresql://... or the http(s) URL of a
   keel server), KEEL_ARTIFACTS the artifact store (s3://... or empty for the keel server's), KEEL_PREDICTION_LOG
   parquet, kafka://HOST:PORT[/TOPIC] or off. Secrets never go in this file: create them, then apply:
     kubectl create secret generic {name}-secret --from-literal=token=YOUR_KEEL_TOKEN
       (add --from-literal=pgpassword=... when the store is PostgreSQL with a password)
     kubectl apply -f kubernetes.yaml
     kubectl rollout status deployment/{name}

4. Try it:
     kubectl port-forward service/{name} {PORT}:{PORT}
     curl http://127.0.0.1:{PORT}{READY}

More replicas: `kubectl scale deployment/{name} --replicas=N`; every replica follows the deployment in the store,
so a `keel deploy promote/rollback/canary/shadow` reaches all of them without a new image.
"""


WHEELS_NOTE = "Put the keel wheel here (see ../README.txt): the Dockerfile installs keel from it.\n"


def files(spec: PackageSpec) -> dict[str, str]:
    """Relative path -> text of every file ``keel deploy package`` writes."""
    return {
        "Dockerfile": dockerfile(spec),
        "kubernetes.yaml": to_yaml(manifests(spec)),
        "README.txt": readme(spec),
        "wheels/README.txt": WHEELS_NOTE,
    }
