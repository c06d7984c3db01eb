"""The operator's start-up path never loads envtest (it ships in the image but only tests, bench,
the demo and ``rook envtest serve`` use it). The static contracts are import-linter's (setup.cfg,
``make lint``); this checks what a real start-up imports, lazy imports included."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = r"""
import importlib, json, pkgutil, sys
def envtest_modules():
    return sorted(m for m in sys.modules if m == "rook_py.envtest" or m.startswith("rook_py.envtest."))
import rook_py.cli as cli
parser = cli.build_parser()                      # loads every provider, as `rook` does
args = parser.parse_args(["chubaofs", "operator"])
import rook_py.framework.operator, rook_py.chubaofs.operator, rook_py.framework.manager
import rook_py.framework, rook_py.chubaofs
for package in (rook_py.framework, rook_py.chubaofs):   # and every module they hold
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
operator_path = envtest_modules()
import rook_py.envtest.apiserver                 # the same report sees envtest once it is loaded
print(json.dumps([operator_path, envtest_modules()]))
"""


def test_operator_start_up_loads_no_envtest_module() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    operator_path, after_loading_envtest = json.loads(done.stdout.strip().splitlines()[-1])
    assert operator_path == []
    assert "rook_py.envtest.apiserver" in after_loading_envtest
