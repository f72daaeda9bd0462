#!/usr/bin/env bash
# Regenerates requirements.lock, the exact versions and hashes the image installs (Dockerfile),
# from pyproject.toml's runtime dependencies and build system. Run it after changing a
# dependency, with the Python of the image (3.11) on Linux x86_64; it needs the package index.
# tests/test_dockerfile.py checks that the lock covers every runtime dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install -q pip-tools
# No index URL, find-links or trusted host is written: the lock names packages, never a registry.
"$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras \
  --build-deps-for=editable \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --output-file=requirements.lock pyproject.toml
