#!/usr/bin/env bash
# Sets up nasp on a fresh machine: graphviz's `dot` (when apt-get is there) and a virtualenv in .venv
# with the package and its test tools. Safe to run again; quiet unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing graphviz (for cell drawings)"
    $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq graphviz >/dev/null
  else
    echo "setup: graphviz's 'dot' is missing; install it (e.g. 'brew install graphviz') for cell drawings"
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup: installing nasp and its dependencies into .venv (torch is large: this takes a few minutes)"
# the distribution was called `nasp` before it became nasp-search (`nasp` on PyPI is another project): drop the old one
if .venv/bin/python -m pip show -q nasp >/dev/null 2>&1; then .venv/bin/python -m pip uninstall -y -q nasp; fi
.venv/bin/python -m pip install -q -e ".[dev,tensorboard,mlflow,wandb,ray]"
echo "setup: done. Activate with: source .venv/bin/activate"
