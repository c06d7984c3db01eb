"""The string formats a structural schema may name, checked as kube-openapi's strfmt does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Final

_DATE_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DURATION_RE: Final = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$")
_HOSTNAME_RE: Final = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$"
)
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC_RE: Final = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_URI_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")


def _is_date_time(s: str) -> bool:
    if not _DATE_TIME_RE.match(s):
        return False
    try:
        datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) is not None


def _is_ip(s: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(s).version == version
    except ValueError:
        return False


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _is_byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_uuid(s: str, version: int | None = None) -> bool:
    try:
        u = uuid.UUID(s)
    except ValueError:
        return False
    return version is None or u.version == version


# String formats kube-openapi checks (apiextensions' supported set); unknown formats are
# accepted without a check, as upstream does.
STRING_FORMATS: Final[Mapping[str, Callable[[str], bool]]] = {
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "date": _is_date,
    "duration": lambda s: _DURATION_RE.match(s) is not None,
    "byte": _is_byte,
    "ipv4": lambda s: _is_ip(s, 4),
    "ipv6": lambda s: _is_ip(s, 6),
    "cidr": _is_cidr,
    "mac": lambda s: _MAC_RE.match(s) is not None,
    "hostname": lambda s: _HOSTNAME_RE.match(s) is not None and len(s) <= 255,
    "email": lambda s: _EMAIL_RE.match(s) is not None,
    "uri": lambda s: _URI_RE.match(s) is not None,
    "uuid": _is_uuid,
    "uuid3": lambda s: _is_uuid(s, 3),
    "uuid4": lambda s: _is_uuid(s, 4),
    "uuid5": lambda s: _is_uuid(s, 5),
}
