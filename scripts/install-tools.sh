#!/usr/bin/env bash
# Installs the real binaries some tests drive: promtool and amtool (Debian's prometheus packages).
# Quiet when they are present; never fails the build: tests that need them skip with a reason.
set -u
if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: apt-get not available; promtool/amtool tests will skip" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install-tools: not root and no sudo; promtool/amtool tests will skip" >&2
    exit 0
  fi
fi
echo "install-tools: installing prometheus and prometheus-alertmanager (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null 2>&1 \
  || echo "install-tools: apt-get install failed; promtool/amtool tests will skip" >&2
exit 0
