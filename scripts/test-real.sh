#!/usr/bin/env bash
# `make test-real`: the whole suite against a real etcd + kube-apiserver (envtest's "real" back end),
# found by scripts/envtest-assets.sh. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/envtest-assets.sh
. scripts/envtest-assets.sh
if [ -z "$assets" ]; then
  cat >&2 <<MSG
make test-real: no real control plane found${assets_looked_in:+ in $assets_looked_in}.
Set KUBEBUILDER_ASSETS to a folder holding the etcd and kube-apiserver binaries, for example
  KUBEBUILDER_ASSETS=\$(setup-envtest use -p path 1.28.x) make test-real
(setup-envtest: go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest),
or lay them out in ../shared/envtest-assets beside the project.
MSG
  exit 2
fi
echo "make test-real: etcd and kube-apiserver from $assets" >&2
KUBEBUILDER_ASSETS="$assets" .venv/bin/python -m pytest -q --envtest-backend=real "$@"
