"""`make bench`: run every benchmark module and write bench/REPORT.md.

Each module ``bench/bench_*.py`` exposes ``run() -> str`` returning a Markdown section with its
figures. Modules run one after another in this process tree so ratios inside a section compare
like with like on this (noisy, 2-core) machine. ``python -m bench NAME...`` runs a subset.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["apiserver", "workqueue", "informer", "latency", "frameworks", "chubaomonitor", "admission"]


def discover() -> list[str]:
    found = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def main(argv: list[str]) -> int:
    names = argv or discover()
    sections = []
    failed = 0
    for name in names:
        print(f"== bench {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            body = module.run()
        except Exception:
            failed += 1
            body = "```\n" + traceback.format_exc() + "```\n"
        sections.append(f"## {name}\n\n{body.strip()}\n\n_ran in {time.monotonic() - started:.1f} s_\n")
    header = (
        "# rook-py benchmark report\n\n"
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} on "
        f"{platform.machine()} Python {platform.python_version()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores.\n\n"
    )
    report = header + "\n".join(sections)
    (HERE / "REPORT.md").write_text(report)
    print(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
