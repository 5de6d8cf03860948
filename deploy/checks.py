#!/usr/bin/env python3
"""Consistency checks for deploy/, run by deploy/validate.sh (from the repo root).

  checks.py compose                        docker-compose.yml: services, wiring, health
  checks.py k8s BASE.yaml OVERLAY.yaml     rendered manifests: the settings the
                                           operator guide promises
  checks.py env BASE.yaml [OVERLAY.yaml…]  every environment variable the binaries
                                           read is in docker-compose.yml,
                                           .env.example, the ConfigMap/Secret and
                                           README.md's configuration table

Each failure is printed as `FAIL: …` naming the file and what is missing; the exit
status is 1 if anything failed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path("deploy")
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
K8S_BASE = DEPLOY / "k8s" / "base"
CONFIGMAP = K8S_BASE / "configmap.yaml"
SECRET_EXAMPLE = K8S_BASE / "secret.example.yaml"
SOURCE_DIRS = [Path("shared/src"), Path("api/src"), Path("worker/src")]

README = DEPLOY / "README.md"

SECRET_NAME = "attune-secrets"
PROMETHEUS_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
CONFIGMAP_NAME = "attune-config"
ATTUNE_SERVICES = ("migrate", "api", "worker")

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL: {message}")


def ok(message: str) -> None:
    print(f"ok: {message}")


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# --- environment variables read by the binaries --------------------------------------

ENV_ATTR = re.compile(r'\benv\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"')
FIELD = re.compile(r"^\s*pub\s+\w+\s*:\s*([^,]+),", re.MULTILINE)


def source_env_vars() -> dict[str, bool]:
    """Every `env = "NAME"` in the crates' sources, mapped to whether the field it
    configures is a `Secret` (the type of the next `pub field: Type`)."""
    found: dict[str, bool] = {}
    for directory in SOURCE_DIRS:
        for path in sorted(directory.rglob("*.rs")):
            text = path.read_text()
            for match in ENV_ATTR.finditer(text):
                field = FIELD.search(text, match.end())
                is_secret = bool(field and "Secret" in field.group(1))
                found[match.group(1)] = found.get(match.group(1), False) or is_secret
    return found


def env_example_vars() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def readme_config_vars() -> set[str]:
    """The variables in the first column of the guide's configuration reference table."""
    names: set[str] = set()
    section = False
    for line in README.read_text().splitlines():
        if line.startswith("## "):
            section = "configuration reference" in line.lower()
        elif section:
            m = re.match(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|", line)
            if m:
                names.add(m.group(1))
    if not names:
        fail(f"{README}: found no configuration reference table (a `## … Configuration reference` section)")
    return names


def check_env(base_rendered: Path, overlays: list[Path]) -> None:
    variables = source_env_vars()
    if not variables:
        fail(f"found no `env = \"…\"` in {', '.join(map(str, SOURCE_DIRS))}: is the extraction broken?")
        return
    secrets = sorted(n for n, s in variables.items() if s)
    print(f"   {len(variables)} variables read by the binaries ({len(secrets)} secret: {', '.join(secrets)})")

    compose = yaml.safe_load(COMPOSE.read_text())
    example = env_example_vars()
    rendered = load_all(base_rendered)
    configmap = next(
        (d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == CONFIGMAP_NAME), None
    )
    cm_keys = set((configmap or {}).get("data") or {})
    secret_docs = load_all(SECRET_EXAMPLE)
    secret_keys: set[str] = set()
    for doc in secret_docs:
        secret_keys |= set(doc.get("stringData") or {}) | set(doc.get("data") or {})

    documented = readme_config_vars()
    missing = 0
    for name in sorted(variables):
        lacking = []
        for service in ATTUNE_SERVICES:
            env = (compose.get("services", {}).get(service) or {}).get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
            if name not in env:
                lacking.append(service)
        if lacking:
            fail(f"{name} is read by the binaries but missing from {COMPOSE} (environment of {', '.join(lacking)})")
            missing += 1
        if name not in example:
            fail(f"{name} is read by the binaries but missing from {ENV_EXAMPLE}")
            missing += 1
        if variables[name]:
            if name not in secret_keys:
                fail(f"{name} is a secret but missing from {SECRET_EXAMPLE}")
                missing += 1
            if name in cm_keys:
                fail(f"{name} is a secret but is in the ConfigMap {CONFIGMAP}: move it to the Secret")
                missing += 1
        elif name not in cm_keys and name not in secret_keys:
            fail(f"{name} is read by the binaries but missing from {CONFIGMAP} (and {SECRET_EXAMPLE})")
            missing += 1
        if name not in documented:
            fail(f"{name} is read by the binaries but missing from the configuration table in {README}")
            missing += 1
    if not missing:
        ok(f"all {len(variables)} variables are in {COMPOSE}, {ENV_EXAMPLE}, the ConfigMap/Secret and {README}")

    # The other direction: a setting nothing reads any more is a typo or a leftover.
    known = set(variables)
    for name in sorted(cm_keys - known):
        fail(f"{CONFIGMAP} sets {name}, which no binary reads")
    for rendered_overlay in overlays:
        for doc in load_all(rendered_overlay):
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == CONFIGMAP_NAME:
                for name in sorted(set(doc.get("data") or {}) - known):
                    fail(f"the {rendered_overlay.stem} overlay's ConfigMap sets {name}, which no binary reads")
    for name in sorted(secret_keys - known):
        fail(f"{SECRET_EXAMPLE} sets {name}, which no binary reads")


# --- docker-compose.yml -----------------------------------------------------------------


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def strings_in(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def check_compose() -> None:
    before = len(failures)
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose.get("services") or {}
    for name in ("postgres", "redis", *ATTUNE_SERVICES):
        if name not in services:
            fail(f"{COMPOSE}: service `{name}` is missing")
    if len(failures) > before:
        return

    if not str(services["postgres"].get("image", "")).startswith("postgres:16"):
        fail(f"{COMPOSE}: postgres must use the postgres:16 image")
    if not str(services["redis"].get("image", "")).startswith("redis:7"):
        fail(f"{COMPOSE}: redis must use the redis:7 image")
    if "--appendonly" not in command_of(services["redis"]):
        fail(f"{COMPOSE}: redis must run with --appendonly (it holds the job queue)")

    expected_commands = {
        "migrate": ["attune-api", "migrate"],
        "api": ["attune-api", "serve"],
        "worker": ["attune-worker"],
    }
    for name, command in expected_commands.items():
        if command_of(services[name]) != command:
            fail(f"{COMPOSE}: service `{name}` must run {' '.join(command)}")

    if int(((services["worker"].get("deploy") or {}).get("replicas")) or 1) < 2:
        fail(f"{COMPOSE}: worker needs deploy.replicas of at least 2")

    for name in ("postgres", "redis", "api", "worker"):
        health = services[name].get("healthcheck") or {}
        if not health.get("test") or health.get("disable"):
            fail(f"{COMPOSE}: service `{name}` needs a healthcheck")
    for name in ("api", "worker"):
        test = (services[name].get("healthcheck") or {}).get("test") or []
        test = test if isinstance(test, str) else " ".join(map(str, test))
        if "/healthz" not in test:
            fail(f"{COMPOSE}: service `{name}`'s healthcheck must call /healthz")
    if not (services["migrate"].get("healthcheck") or {}).get("disable"):
        fail(f"{COMPOSE}: service `migrate` serves no HTTP: disable the image's healthcheck")

    wanted = {
        "migrate": {"postgres": "service_healthy"},
        "api": {"postgres": "service_healthy", "redis": "service_healthy", "migrate": "service_completed_successfully"},
        "worker": {"postgres": "service_healthy", "redis": "service_healthy", "migrate": "service_completed_successfully"},
    }
    for name, deps in wanted.items():
        depends = services[name].get("depends_on") or {}
        for dep, condition in deps.items():
            got = (depends.get(dep) or {}).get("condition") if isinstance(depends, dict) else None
            if got != condition:
                fail(f"{COMPOSE}: `{name}` must depend on `{dep}` with condition {condition} (has {got})")

    # Every ${VAR} the compose file interpolates is documented in .env.example.
    example = env_example_vars()
    used: set[str] = set()
    for text in strings_in(compose):
        used |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    for var in sorted(used):
        if var not in example:
            fail(f"{COMPOSE} uses ${{{var}}}, which {ENV_EXAMPLE} does not list")

    if len(failures) == before:
        ok(f"{COMPOSE}: postgres 16, redis 7 (AOF), migrate → api + {services['worker']['deploy']['replicas']} workers, health-gated")


# --- rendered Kubernetes manifests --------------------------------------------------------


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def check_workload(obj: dict[str, Any], where: str) -> None:
    name = f"{where}: {obj['kind']} {obj['metadata']['name']}"
    spec = pod_spec(obj)
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        fail(f"{name}: pod securityContext.runAsNonRoot must be true")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        fail(f"{name}: pod seccompProfile must be RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{name}: automountServiceAccountToken must be false")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for container in spec["containers"]:
        cname = f"{name} container {container['name']}"
        sc = container.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{cname}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{cname}: readOnlyRootFilesystem must be true")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            fail(f"{cname}: capabilities must drop ALL")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    fail(f"{cname}: resources.{kind}.{resource} is missing")
        refs = [next(iter(e.values()))["name"] for e in container.get("envFrom") or []]
        for wanted in (CONFIGMAP_NAME, SECRET_NAME):
            if wanted not in refs:
                fail(f"{cname}: envFrom must include {wanted}")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
        for path in ("/data", "/tmp"):
            if path not in mounts or "emptyDir" not in volumes.get(mounts[path], {}):
                fail(f"{cname}: needs an emptyDir mounted at {path} (read-only root filesystem)")


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name), None)


def check_rendered(path: Path, production: bool, base_objs: list[dict[str, Any]] | None = None) -> None:
    before = len(failures)
    objs = load_all(path)
    where = f"rendered {path.stem}"
    required = [
        ("ConfigMap", CONFIGMAP_NAME),
        ("Deployment", "attune-api"),
        ("Service", "attune-api"),
        ("Ingress", "attune-api"),
        ("HorizontalPodAutoscaler", "attune-api"),
        ("PodDisruptionBudget", "attune-api"),
        ("Deployment", "attune-worker"),
        ("Job", "attune-migrate"),
        ("NetworkPolicy", "attune-api"),
        ("NetworkPolicy", "attune-worker"),
    ]
    for kind, name in required:
        if not find(objs, kind, name):
            fail(f"{where}: {kind} {name} is missing")
    if any(o["kind"] == "Secret" for o in objs):
        fail(f"{where}: renders a Secret: secrets must never come from the kustomization")
    if len(failures) > before:
        return

    api = find(objs, "Deployment", "attune-api")
    worker = find(objs, "Deployment", "attune-worker")
    job = find(objs, "Job", "attune-migrate")
    for workload in (api, worker, job):
        check_workload(workload, where)

    spec = pod_spec(api)
    container = spec["containers"][0]
    if container.get("command") != ["attune-api", "serve"]:
        fail(f"{where}: the API container must run attune-api serve")
    if (container.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
        fail(f"{where}: the API readinessProbe must GET /readyz")
    if (container.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
        fail(f"{where}: the API livenessProbe must GET /healthz")
    if "preStop" not in (container.get("lifecycle") or {}):
        fail(f"{where}: the API needs a preStop pause")
    if spec.get("terminationGracePeriodSeconds", 30) < 45:
        fail(f"{where}: the API needs terminationGracePeriodSeconds >= 45 (5 s preStop + 30 s drain)")
    for label, workload in (("API", api), ("worker", worker)):
        annotations = workload["spec"]["template"]["metadata"].get("annotations") or {}
        for key, value in PROMETHEUS_ANNOTATIONS.items():
            if annotations.get(key) != value:
                fail(f"{where}: the {label} pod template needs the annotation {key}: \"{value}\"")
        ports = {p.get("name"): p.get("containerPort") for p in pod_spec(workload)["containers"][0].get("ports") or []}
        if ports.get("http") != 8080:
            fail(f"{where}: the {label} container needs the port `http` (containerPort 8080)")
    if "replicas" in api["spec"]:
        fail(f"{where}: the API Deployment must not set replicas (the HPA owns them)")
    if worker["spec"].get("replicas", 1) < 2:
        fail(f"{where}: the worker Deployment needs at least 2 replicas")
    worker_container = pod_spec(worker)["containers"][0]
    if worker_container.get("command") != ["attune-worker"]:
        fail(f"{where}: the worker container must run attune-worker")
    for probe in ("livenessProbe", "readinessProbe"):
        if (worker_container.get(probe) or {}).get("httpGet", {}).get("path") != "/healthz":
            fail(f"{where}: the worker {probe} must GET /healthz")

    # The worker's only inbound traffic is Prometheus on 8080, from chosen sources.
    worker_policy = find(objs, "NetworkPolicy", "attune-worker")
    rules = worker_policy["spec"].get("ingress") or []
    if "Ingress" not in (worker_policy["spec"].get("policyTypes") or []):
        fail(f"{where}: NetworkPolicy attune-worker must restrict Ingress")
    if not rules:
        fail(f"{where}: NetworkPolicy attune-worker must admit Prometheus on 8080")
    for rule in rules:
        if not rule.get("from"):
            fail(f"{where}: NetworkPolicy attune-worker admits every source: name Prometheus's in `from`")
        if [p.get("port") for p in rule.get("ports") or []] != [8080]:
            fail(f"{where}: NetworkPolicy attune-worker may admit port 8080 only")
    if pod_spec(job)["containers"][0].get("command") != ["attune-api", "migrate"]:
        fail(f"{where}: the migration Job must run attune-api migrate")

    # The documented first step of every rollout applies only the objects selected
    # by `app.kubernetes.io/component in (shared,migrate)`: they must include the Job
    # and everything its pod needs (the Secret is created by hand beforehand).
    selected = {
        (o["kind"], o["metadata"]["name"])
        for o in objs
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") in ("shared", "migrate")
    }
    job_spec = pod_spec(job)
    needs = {("Job", "attune-migrate"), ("ServiceAccount", job_spec.get("serviceAccountName", "default"))}
    for c in job_spec["containers"]:
        for ref in c.get("envFrom") or []:
            if "configMapRef" in ref:
                needs.add(("ConfigMap", ref["configMapRef"]["name"]))
    for kind, name in sorted(needs - selected):
        fail(
            f"{where}: {kind} {name} is needed by the migration Job but lacks the label "
            "app.kubernetes.io/component: shared (or migrate), so the migrate-first step would not apply it"
        )

    if production:
        namespaced = [o for o in objs if o["kind"] != "Namespace"]
        for o in namespaced:
            if o["metadata"].get("namespace") != "attune":
                fail(f"{where}: {o['kind']} {o['metadata']['name']} is not in namespace attune")
        for workload in (api, worker, job):
            for c in pod_spec(workload)["containers"]:
                image = c["image"]
                pinned = "@sha256:" in image or (
                    ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
                )
                if not pinned:
                    fail(f"{where}: {workload['metadata']['name']} image {image} is not pinned to a tag or digest")
        base_hpa = find(base_objs or [], "HorizontalPodAutoscaler", "attune-api")
        hpa = find(objs, "HorizontalPodAutoscaler", "attune-api")
        if base_hpa and hpa["spec"]["minReplicas"] <= base_hpa["spec"]["minReplicas"]:
            fail(f"{where}: production should run more API replicas than the base")

    if len(failures) == before:
        ok(f"{where}: {len(objs)} objects; probes, security contexts, resources, envFrom and annotations as required")


def check_secret_example() -> None:
    before = len(failures)
    docs = load_all(SECRET_EXAMPLE)
    if len(docs) != 1 or docs[0].get("kind") != "Secret" or docs[0]["metadata"].get("name") != SECRET_NAME:
        fail(f"{SECRET_EXAMPLE}: must hold exactly one Secret named {SECRET_NAME}")
        return
    for key, value in (docs[0].get("stringData") or {}).items():
        if value != "REPLACE_ME":
            fail(f"{SECRET_EXAMPLE}: {key} must be the placeholder REPLACE_ME, not a value")
    for kustomization in sorted((DEPLOY / "k8s").rglob("kustomization.yaml")):
        resources = (yaml.safe_load(kustomization.read_text()) or {}).get("resources") or []
        if any(Path(r).name == SECRET_EXAMPLE.name for r in resources):
            fail(f"{kustomization}: lists {SECRET_EXAMPLE.name}: placeholders would be applied")
    if len(failures) == before:
        ok(f"{SECRET_EXAMPLE}: placeholders only, and in no kustomization")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command == "compose":
        check_compose()
    elif command == "k8s" and len(args) == 2:
        check_rendered(Path(args[0]), production=False)
        check_rendered(Path(args[1]), production=True, base_objs=load_all(Path(args[0])))
        check_secret_example()
    elif command == "env" and args:
        check_env(Path(args[0]), [Path(a) for a in args[1:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
