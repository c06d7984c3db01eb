"""`make bench`: run every benchmark module and write bench/REPORT.md.

Each module ``bench/bench_*.py`` exposes ``run() -> str`` returning a Markdown section with its
figures. Modules run one after another in this process tree so ratios inside a section compare
like with like on this (noisy, 2-core) machine. ``python -m bench NAME...`` runs a subset.

The report's ``## faults`` section is not a benchmark: it holds the fault suite's figures
(``make faults``), written by hand from its ``ROOK_FAULT_REPORT`` lines, and is carried over
from the previous REPORT.md unchanged.
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


def kept_faults_section(path: Path) -> str:
    """The ``## faults`` section of an existing report (up to the next ``## ``), or ""."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    start = text.find("\n## faults\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return "\n" + text[start + 1:end if end >= 0 else len(text)].rstrip() + "\n"


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
    report = header + "\n".join(sections) + kept_faults_section(HERE / "REPORT.md")
    (HERE / "REPORT.md").write_text(report)
    print(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
