"""The deploy files agree with the app and with each other: every NINJA_* variable they set is a real
setting with a valid value, probes hit /healthz on the app's port, trained weights sit on a volume
every replica shares, and nginx's upstream names the compose service. (No cluster here: these read
the files; `kubectl kustomize` renders the Kubernetes set when kubectl is installed.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def k8s() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def check_env(env: dict[str, str]) -> None:
    """Every NINJA_* variable names a setting, and the values are accepted as they are."""
    fields = {}
    for name, value in env.items():
        if name.startswith("NINJA_"):
            field = name.removeprefix("NINJA_").lower()
            assert field in Settings.model_fields, f"{name} is not a setting of app/settings.py"
            fields[field] = value
    Settings(**fields)  # raises on a value the app would refuse at start


def test_compose_runs_replicas_behind_nginx_with_a_shared_volume() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    app, proxy = compose["services"]["app"], compose["services"]["nginx"]
    assert app["deploy"]["replicas"] >= 2
    check_env(app["environment"])
    state = app["environment"]["NINJA_STATE_DIR"]
    assert any(v.endswith(f":{state}") for v in app["volumes"])  # the state and checkpoints on the named volume
    assert set(app["deploy"]["resources"]) == {"reservations", "limits"}
    mounts = {v.split(":")[1] for v in proxy["volumes"]}
    assert {"/etc/nginx/nginx.conf", "/etc/nginx/upstream-servers.conf"} <= mounts
    assert all((DEPLOY / v.split(":")[0].removeprefix("./")).is_file() for v in proxy["volumes"])
    assert proxy["ports"] == ["8080:8080"] and "listen 8080;" in (DEPLOY / "nginx.conf").read_text()
    # nginx's upstream is the compose service on the image's port
    assert "server app:8000 " in (DEPLOY / "upstream-servers.conf").read_text()
    assert "EXPOSE 8000" in (DEPLOY.parent / "Dockerfile").read_text()


def test_the_deployment_probes_healthz_limits_resources_and_shares_checkpoints() -> None:
    docs = k8s()
    deployment = docs["Deployment/backprop-ninja"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert port == 8000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(container["resources"]) == {"requests", "limits"}
    env = {e["name"]: e["value"] for e in container["env"]}
    check_env(env)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    checkpoints = volumes[next(n for n, p in mounts.items() if p == env["NINJA_CHECKPOINT_DIR"])]
    claim = docs[f"PersistentVolumeClaim/{checkpoints['persistentVolumeClaim']['claimName']}"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod, on any node, reads and writes it
    service = docs["Service/backprop-ninja"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    hpa = docs["HorizontalPodAutoscaler/backprop-ninja"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backprop-ninja"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    train = docs["Ingress/backprop-ninja-train"]["metadata"]["annotations"]
    assert train["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert train["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$arg_stream_id"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_set() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(out.stdout))
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "Ingress", "PersistentVolumeClaim", "Service"]
