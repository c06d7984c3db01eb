#!/usr/bin/env bash
# `make faults`: the fault suite at full counts (ROOK_FAULT_ITERATIONS=full). F1-F6 run on the
# envtest emulator (its fault injection); F7-F10 on a real etcd + kube-apiserver found by
# scripts/envtest-assets.sh, and skip with a reason when there is none. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/envtest-assets.sh
. scripts/envtest-assets.sh
if [ -n "$assets" ]; then
  export KUBEBUILDER_ASSETS="$assets"
  echo "make faults: F7-F10 on etcd and kube-apiserver from $assets" >&2
else
  unset KUBEBUILDER_ASSETS
  echo "make faults: no real control plane found; F7-F10 will be skipped" >&2
fi
# The emulator for every test that asks the envtest fixture for a back end (F1-F6); F7-F10 ask
# for the real one themselves.
ROOK_FAULT_ITERATIONS=full .venv/bin/python -m pytest -q tests/faults --envtest-backend=emulator "$@"
