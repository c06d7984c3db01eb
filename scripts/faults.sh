#!/usr/bin/env bash
# `make faults`: the fault suite at full counts (ROOK_FAULT_ITERATIONS=full). F1-F6 run on the
# envtest emulator (its fault injection); F7-F10 on a real etcd + kube-apiserver from
# $KUBEBUILDER_ASSETS, else ../shared/envtest-assets beside the project (found as
# scripts/test-real.sh finds it), and skip with a reason when there is none. Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
assets="${KUBEBUILDER_ASSETS:-}"
if [ -z "$assets" ] && [ -d ../shared/envtest-assets ]; then
  assets="$(cd ../shared/envtest-assets && pwd)"
fi
if [ -n "$assets" ] && [ -f "$assets/etcd" ] && [ -f "$assets/kube-apiserver" ]; then
  # A read-only copy may lack run bits: run copies from a temporary folder then.
  if [ ! -x "$assets/etcd" ] || [ ! -x "$assets/kube-apiserver" ]; then
    copy="$(mktemp -d "${TMPDIR:-/tmp}/rook-envtest-assets.XXXXXX")"
    trap 'rm -rf "$copy"' EXIT
    cp "$assets/etcd" "$assets/kube-apiserver" "$copy/"
    chmod 0755 "$copy/etcd" "$copy/kube-apiserver"
    assets="$copy"
  fi
  export KUBEBUILDER_ASSETS="$assets"
  echo "make faults: F7-F10 on etcd and kube-apiserver from $assets" >&2
else
  unset KUBEBUILDER_ASSETS
  echo "make faults: no real control plane found; F7-F10 will be skipped" >&2
fi
# The emulator for every test that asks the envtest fixture for a back end (F1-F6); F7-F10 ask
# for the real one themselves.
ROOK_FAULT_ITERATIONS=full .venv/bin/python -m pytest -q tests/faults --envtest-backend=emulator "$@"
