"""ChubaoFS / CubeFS releases the monitoring stack knows about.

ChubaoFS 2.x (chubaofs/chubaofs) became CubeFS 3.x (cubefs/cubefs); the daemons' metric names,
labels and units changed along the way (see rook_py/chubaofs/monitor/config/normalise.py for the
differences and the recording rules that hide them). A ``ChubaoMonitor`` names the release its
cluster runs in ``spec.chubaofs.version`` and, while a rolling upgrade is under way, the release it
comes from in ``spec.chubaofs.upgradingFrom``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_RELEASE_RE = re.compile(r"^v?(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
#: The schema's pattern for a release string (``3.5.2`` or ``v3.5.2``).
RELEASE_PATTERN: Final = r"^v?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"


@dataclass(frozen=True, order=True)
class Release:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def product(self) -> str:
        """The project's name at that release: ChubaoFS up to 2.x, CubeFS from 3.0."""
        return "ChubaoFS" if self.major < 3 else "CubeFS"

    @property
    def display(self) -> str:
        return f"{self.product} {self}"


def parse_release(text: str) -> Release:
    """``"3.5.2"`` or ``"v3.5.2"`` -> Release; ``ValueError`` for anything else."""
    match = _RELEASE_RE.match(str(text).strip())
    if match is None:
        raise ValueError(f"not a release number: {text!r} (use e.g. 3.5.2)")
    return Release(*(int(part) for part in match.groups()))


#: Oldest release whose exporter the rules understand, and the first release they do not.
OLDEST_SUPPORTED: Final = Release(2, 0, 0)
FIRST_UNSUPPORTED: Final = Release(4, 0, 0)
#: What a ChubaoMonitor assumes when spec.chubaofs.version is not set: the newest CubeFS release
#: whose metrics were checked against upstream source.
DEFAULT_VERSION: Final = "3.5.2"
#: Releases with a test fixture exporting exactly their metrics (tests/support/chubaofs_fixture.py).
TESTED_VERSIONS: Final = ("2.2.0", "2.4.0", "3.3.0", "3.5.2")


def check_supported(text: str) -> Release:
    """Parse ``text`` and insist it is in the supported range (``ValueError`` otherwise)."""
    release = parse_release(text)
    if not OLDEST_SUPPORTED <= release < FIRST_UNSUPPORTED:
        raise ValueError(f"{release.display} is not supported; supported are ChubaoFS "
                         f"{OLDEST_SUPPORTED} up to CubeFS 3.x (below {FIRST_UNSUPPORTED})")
    return release
