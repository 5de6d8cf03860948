#!/usr/bin/env bash
# The API contract, checked as app developers use it: export the OpenAPI document
# from the built `attune-api`, validate it with openapi-spec-validator and
# `redocly lint` (0 errors, 0 warnings), generate TypeScript types with
# openapi-typescript, and compile client.ts against them with `tsc --noEmit`.
# Every tool is pinned: npm ones in package-lock.json, the Python one here. Caches
# live under ~/.cache/attune-contract and ~/.cache/attune-npm (as for
# tests/watermelon); node_modules and the generated files are gitignored.
set -euo pipefail
cd "$(dirname "$0")"

SPEC_VALIDATOR=openapi-spec-validator==0.9.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/attune-contract"
VENV="$CACHE/venv-openapi-spec-validator-0.9.0"

for tool in python3 node npm; do
    command -v "$tool" >/dev/null || { echo "FAILED: $tool is needed for the contract checks" >&2; exit 1; }
done

if [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
    echo "installing $SPEC_VALIDATOR into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SPEC_VALIDATOR"
fi
if ! npm ls --silent >/dev/null 2>&1; then
    echo "installing the pinned npm tools (package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error --cache "${HOME}/.cache/attune-npm"
fi

echo "exporting the document: attune-api openapi"
cargo run --quiet -p attune-api -- openapi > openapi.json

echo "openapi-spec-validator"
"$VENV/bin/openapi-spec-validator" openapi.json

echo "redocly lint (recommended-strict; exceptions explained in redocly.yaml)"
NO_COLOR=1 npx --no-install redocly lint openapi.json --config redocly.yaml --format=stylish 2>&1 \
    | grep -v '[║╔╚]' # drop Redocly's boxed banner about Node.js 20

echo "openapi-typescript → generated/api.d.ts"
npx --no-install openapi-typescript openapi.json --redocly typegen.redocly.yaml --output generated/api.d.ts

echo "tsc --noEmit: the typed client compiles against the generated types"
npx --no-install tsc --noEmit -p tsconfig.json

echo "contract checks passed"
