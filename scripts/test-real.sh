#!/usr/bin/env bash
# `make test-real`: the whole suite against a real etcd + kube-apiserver (envtest's "real" back end).
# Binaries: $KUBEBUILDER_ASSETS (controller-runtime's convention: a folder holding `etcd` and
# `kube-apiserver`, e.g. from `setup-envtest use 1.28.x -p path`), else ../shared/envtest-assets
# beside the project. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
assets="${KUBEBUILDER_ASSETS:-}"
if [ -z "$assets" ] && [ -d ../shared/envtest-assets ]; then
  assets="$(cd ../shared/envtest-assets && pwd)"
fi
if [ -z "$assets" ] || [ ! -f "$assets/etcd" ] || [ ! -f "$assets/kube-apiserver" ]; then
  cat >&2 <<MSG
make test-real: no real control plane found${assets:+ in $assets}.
Set KUBEBUILDER_ASSETS to a folder holding the etcd and kube-apiserver binaries, for example
  KUBEBUILDER_ASSETS=\$(setup-envtest use -p path 1.28.x) make test-real
(setup-envtest: go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest),
or lay them out in ../shared/envtest-assets beside the project.
MSG
  exit 2
fi
# A read-only copy may lack run bits: run copies from a temporary folder then.
if [ ! -x "$assets/etcd" ] || [ ! -x "$assets/kube-apiserver" ]; then
  copy="$(mktemp -d "${TMPDIR:-/tmp}/rook-envtest-assets.XXXXXX")"
  trap 'rm -rf "$copy"' EXIT
  cp "$assets/etcd" "$assets/kube-apiserver" "$copy/"
  chmod 0755 "$copy/etcd" "$copy/kube-apiserver"
  assets="$copy"
fi
echo "make test-real: etcd and kube-apiserver from $assets" >&2
KUBEBUILDER_ASSETS="$assets" .venv/bin/python -m pytest -q --envtest-backend=real "$@"
