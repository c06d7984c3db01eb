# Sourced by scripts/test-real.sh and scripts/faults.sh: finds a real etcd + kube-apiserver and
# sets `assets` to their folder, or to "" when there is none. $KUBEBUILDER_ASSETS first
# (controller-runtime's convention: a folder holding `etcd` and `kube-apiserver`, e.g. from
# `setup-envtest use 1.28.x -p path`), else ../shared/envtest-assets beside the project.
# A read-only copy may lack run bits: the binaries are then copied to a temporary folder that is
# removed on exit.
assets="${KUBEBUILDER_ASSETS:-}"
if [ -z "$assets" ] && [ -d ../shared/envtest-assets ]; then
  assets="$(cd ../shared/envtest-assets && pwd)"
fi
if [ -z "$assets" ] || [ ! -f "$assets/etcd" ] || [ ! -f "$assets/kube-apiserver" ]; then
  assets_looked_in="$assets"
  assets=""
elif [ ! -x "$assets/etcd" ] || [ ! -x "$assets/kube-apiserver" ]; then
  assets_copy="$(mktemp -d "${TMPDIR:-/tmp}/rook-envtest-assets.XXXXXX")"
  trap 'rm -rf "$assets_copy"' EXIT
  cp "$assets/etcd" "$assets/kube-apiserver" "$assets_copy/"
  chmod 0755 "$assets_copy/etcd" "$assets_copy/kube-apiserver"
  assets="$assets_copy"
fi
