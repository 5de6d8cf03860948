#!/usr/bin/env python3
"""Render a kustomization directory to multi-document YAML, like `kustomize build`.

No kustomize binary can be installed by our CI (only PyPI is reachable), so this
renders the subset of kustomize that deploy/k8s uses:

  resources      files (multi-document YAML) and directories (nested kustomizations)
  patches        strategic-merge patches by `path:` or inline `patch:`, matched to
                 their target by apiVersion, kind and metadata.name
  namespace      set on every namespaced object
  labels         `pairs` added to metadata.labels (includeSelectors/includeTemplates
                 must be false, as kustomize's defaults)
  replicas       `name` + `count`
  images         `name` with `newName`, `newTag` and/or `digest`

Transformers run in kustomize's order (patches, namespace, labels, replicas,
images) and objects come out in kustomize's "legacy" order, so the output can be
piped to `kubectl apply -f -`. Anything else in a kustomization is an error rather
than being silently ignored: extend this script (and its check against
`kubectl kustomize` in validate.sh) before using a new kustomize feature.

Usage:
  render_kustomize.py DIR                     print the rendered YAML
  render_kustomize.py DIR --compare FILE      also compare with FILE (for example the
                                              output of `kubectl kustomize DIR`) and
                                              exit 1 on any difference
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "patches",
    "namespace",
    "labels",
    "replicas",
    "images",
}

# Kinds without a namespace. A kind in neither list is an error: we must know
# whether `namespace:` applies to it.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
NAMESPACED = {
    "ConfigMap",
    "CronJob",
    "DaemonSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Job",
    "LimitRange",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Pod",
    "PodDisruptionBudget",
    "ReplicaSet",
    "ResourceQuota",
    "Role",
    "Secret",
    "Service",
    "ServiceAccount",
    "StatefulSet",
}
# Kinds whose namespace kustomize also rewrites inside the object (subjects of
# role bindings): not supported here.
UNSUPPORTED_KINDS = {"RoleBinding", "ClusterRoleBinding"}

# kustomize's legacy output order (api/resid/gvk.go): these kinds first, in this
# order; the last list at the end; all others between, by group, version and kind.
ORDER_FIRST = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]

# Strategic-merge keys of the lists our patches touch; other lists are replaced
# whole, as in a strategic merge of a list without a patch strategy.
MERGE_KEYS = {
    "containers": ["name"],
    "initContainers": ["name"],
    "ephemeralContainers": ["name"],
    "env": ["name"],
    "volumes": ["name"],
    "volumeMounts": ["mountPath"],
    "imagePullSecrets": ["name"],
}
# Lists whose merge kustomize keys on several fields (ports: port + protocol), with
# results this renderer does not reproduce: patching them is refused.
UNMERGEABLE_LISTS = {"ports"}

WORKLOAD_KINDS_WITH_REPLICAS = {"Deployment", "StatefulSet", "ReplicaSet"}


class RenderError(Exception):
    pass


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise RenderError(f"{path}: not valid YAML: {e}") from e
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise RenderError(f"{path}: every document must be an object with apiVersion and kind")
        if not doc.get("metadata", {}).get("name"):
            raise RenderError(f"{path}: a {doc['kind']} has no metadata.name")
        if doc["kind"] in UNSUPPORTED_KINDS:
            raise RenderError(f"{path}: kind {doc['kind']} is not supported by this renderer")
        if doc["kind"] not in CLUSTER_SCOPED and doc["kind"] not in NAMESPACED:
            raise RenderError(
                f"{path}: unknown kind {doc['kind']}: add it to NAMESPACED or CLUSTER_SCOPED "
                "in render_kustomize.py"
            )
    return docs


def find_kustomization(directory: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise RenderError(f"{directory}: no kustomization.yaml")


def res_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def describe(obj: dict[str, Any]) -> str:
    api, kind, ns, name = res_id(obj)
    return f"{kind} {ns + '/' if ns else ''}{name} ({api})"


# --- strategic merge ----------------------------------------------------------------


def strategic_merge(base: Any, patch: Any, where: str) -> Any:
    if isinstance(patch, dict):
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        out = dict(base)
        for key, value in patch.items():
            if isinstance(key, str) and key.startswith("$"):
                raise RenderError(f"{where}: patch directive {key} is not supported")
            if value is None:
                out.pop(key, None)
            elif isinstance(value, list) and isinstance(out.get(key), list):
                out[key] = merge_list(key, out[key], value, f"{where}.{key}")
            else:
                out[key] = strategic_merge(out.get(key), value, f"{where}.{key}")
        return out
    return copy.deepcopy(patch)


def merge_list(field: str, base: list[Any], patch: list[Any], where: str) -> list[Any]:
    """Merge by key as kustomize does: the patch's items first, in the patch's order
    (merged into the base item with the same key), then the base's other items."""
    if field in UNMERGEABLE_LISTS:
        raise RenderError(f"{where}: patching a `{field}` list is not supported by this renderer")
    for key in MERGE_KEYS.get(field, []):
        items = base + patch
        if items and all(isinstance(i, dict) and key in i for i in items):
            originals = {i[key]: i for i in base}
            out = []
            for item in patch:
                if item[key] in originals:
                    out.append(strategic_merge(originals[item[key]], item, f"{where}[{key}={item[key]}]"))
                else:
                    out.append(copy.deepcopy(item))
            patched = {i[key] for i in patch}
            out.extend(copy.deepcopy(i) for i in base if i[key] not in patched)
            return out
    return copy.deepcopy(patch)


# --- transformers --------------------------------------------------------------------


def apply_patches(objs: list[dict[str, Any]], patches: list[Any], directory: Path) -> None:
    for entry in patches:
        if not isinstance(entry, dict) or set(entry) - {"path", "patch"} or len(entry) != 1:
            raise RenderError(
                f"{directory}: each patch must have exactly one of `path` or `patch` "
                f"(targets and options are not supported): {entry!r}"
            )
        if "path" in entry:
            source = directory / entry["path"]
            docs = load_documents(source)
        else:
            source = directory / "<inline patch>"
            docs = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
        for doc in docs:
            meta = doc.get("metadata", {})
            matches = [
                o
                for o in objs
                if o["apiVersion"] == doc.get("apiVersion")
                and o["kind"] == doc.get("kind")
                and o["metadata"]["name"] == meta.get("name")
                and ("namespace" not in meta or o["metadata"].get("namespace") == meta["namespace"])
            ]
            if len(matches) != 1:
                raise RenderError(
                    f"{source}: patch for {doc.get('kind')} {meta.get('name')} matches "
                    f"{len(matches)} objects, not exactly one"
                )
            target = matches[0]
            merged = strategic_merge(target, doc, f"{source}:{doc['kind']}/{meta['name']}")
            target.clear()
            target.update(merged)


def apply_namespace(objs: list[dict[str, Any]], namespace: str) -> None:
    for obj in objs:
        if obj["kind"] in NAMESPACED:
            obj["metadata"]["namespace"] = namespace


def apply_labels(objs: list[dict[str, Any]], specs: list[Any], directory: Path) -> None:
    for spec in specs:
        if not isinstance(spec, dict) or set(spec) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise RenderError(f"{directory}: unsupported `labels` entry: {spec!r}")
        if spec.get("includeSelectors") or spec.get("includeTemplates"):
            raise RenderError(
                f"{directory}: labels with includeSelectors/includeTemplates are not supported"
            )
        for obj in objs:
            labels = obj["metadata"].setdefault("labels", {})
            for key, value in (spec.get("pairs") or {}).items():
                labels[key] = str(value)


def apply_replicas(objs: list[dict[str, Any]], specs: list[Any], directory: Path) -> None:
    for spec in specs:
        if not isinstance(spec, dict) or set(spec) != {"name", "count"}:
            raise RenderError(f"{directory}: each `replicas` entry needs exactly name and count")
        targets = [o for o in objs if o["kind"] in WORKLOAD_KINDS_WITH_REPLICAS and o["metadata"]["name"] == spec["name"]]
        if not targets:
            raise RenderError(f"{directory}: `replicas` names {spec['name']}, which is no workload")
        for obj in targets:
            obj.setdefault("spec", {})["replicas"] = int(spec["count"])


def split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest_part = image.partition("@")
    digest = digest_part or None
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def pod_specs(node: Any):
    """Every object in the tree that has a `containers` list (pod specs)."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from pod_specs(value)


def apply_images(objs: list[dict[str, Any]], specs: list[Any], directory: Path) -> None:
    for spec in specs:
        if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "newName", "newTag", "digest"}:
            raise RenderError(f"{directory}: unsupported `images` entry: {spec!r}")
        for obj in objs:
            for pod in pod_specs(obj.get("spec")):
                for field in ("initContainers", "containers"):
                    for container in pod.get(field) or []:
                        name, tag, digest = split_image(container.get("image", ""))
                        if name != spec["name"]:
                            continue
                        name = spec.get("newName", name)
                        if "newTag" in spec:
                            tag, digest = str(spec["newTag"]), None
                        if "digest" in spec:
                            tag, digest = None, spec["digest"]
                        image = name
                        if tag:
                            image += f":{tag}"
                        if digest:
                            image += f"@{digest}"
                        container["image"] = image


# --- build ---------------------------------------------------------------------------


def build(directory: Path, seen: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    directory = directory.resolve()
    if directory in seen:
        raise RenderError(f"{directory}: kustomization cycle")
    kfile = find_kustomization(directory)
    k = yaml.safe_load(kfile.read_text()) or {}
    unsupported = set(k) - SUPPORTED_FIELDS
    if unsupported:
        raise RenderError(
            f"{kfile}: field(s) {', '.join(sorted(unsupported))} not supported by render_kustomize.py"
        )
    if k.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{kfile}: kind must be Kustomization")

    objs: list[dict[str, Any]] = []
    for entry in k.get("resources") or []:
        if "://" in entry or entry.startswith("github.com/"):
            raise RenderError(f"{kfile}: remote resource {entry} is not supported")
        path = directory / entry
        if path.is_dir():
            objs.extend(build(path, seen + (directory,)))
        elif path.is_file():
            objs.extend(copy.deepcopy(load_documents(path)))
        else:
            raise RenderError(f"{kfile}: resource {entry} does not exist")

    ids = [res_id(o) for o in objs]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RenderError(f"{kfile}: duplicate objects: {sorted(duplicates)}")

    apply_patches(objs, k.get("patches") or [], directory)
    if k.get("namespace"):
        apply_namespace(objs, k["namespace"])
    apply_labels(objs, k.get("labels") or [], directory)
    apply_replicas(objs, k.get("replicas") or [], directory)
    apply_images(objs, k.get("images") or [], directory)
    return objs


def order_key(obj: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = obj["kind"]
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind) - len(ORDER_FIRST)
    elif kind in ORDER_LAST:
        rank = ORDER_LAST.index(kind) + 1
    else:
        rank = 0
    group, _, version = obj["apiVersion"].rpartition("/")
    gvk = f"{group or '~G'}_{version}_{kind}"
    meta = obj["metadata"]
    return (rank, gvk, meta.get("namespace", ""), meta["name"])


def render(directory: Path) -> list[dict[str, Any]]:
    return sorted(build(directory), key=order_key)


def dump(objs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=True, default_flow_style=False) for o in objs)


def compare(ours: list[dict[str, Any]], theirs_path: Path) -> list[str]:
    theirs = [d for d in yaml.safe_load_all(theirs_path.read_text()) if d is not None]
    by_id = {res_id(o): o for o in ours}
    other = {res_id(o): o for o in theirs}
    problems = []
    for key in sorted(set(by_id) | set(other)):
        if key not in other:
            problems.append(f"only in our rendering: {key}")
        elif key not in by_id:
            problems.append(f"only in {theirs_path}: {key}")
        elif json.dumps(by_id[key], sort_keys=True) != json.dumps(other[key], sort_keys=True):
            problems.append(
                f"differs: {key}\n  ours:   {json.dumps(by_id[key], sort_keys=True)}\n"
                f"  theirs: {json.dumps(other[key], sort_keys=True)}"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--compare", type=Path, help="YAML rendered by kustomize to compare with")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args()
    try:
        objs = render(args.directory)
    except RenderError as e:
        print(f"render_kustomize: {e}", file=sys.stderr)
        return 1
    text = dump(objs)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    if args.compare:
        problems = compare(objs, args.compare)
        for p in problems:
            print(f"render_kustomize: {args.directory}: {p}", file=sys.stderr)
        if problems:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
