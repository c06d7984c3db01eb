#!/usr/bin/env python3
"""Container entry script for the ``rook`` command, as Rook's ``cmd/rook/main.go``.

The command tree lives in the package (``rook_py.cli``), so ``pip install`` provides the same
``rook`` console script; this file only lets a source checkout run it without installing
(``python cmd/rook/main.py chubaofs operator``). ``cmd`` is deliberately not a package: an
importable ``cmd`` would shadow the standard library's ``cmd`` module.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if (_ROOT / "rook_py").is_dir() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from rook_py.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
