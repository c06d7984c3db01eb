"""resource.Quantity: parse, compare and print quantities exactly as kube-apiserver does.

After k8s.io/apimachinery/pkg/api/resource (quantity.go, suffix.go, amount.go), v1.28:

* ``Quantity.parse`` accepts what ``ParseQuantity`` accepts (surrounding whitespace is trimmed,
  as ``UnmarshalJSON`` trims it) and refuses the rest with upstream's three messages;
* the value is exact (a ``Fraction``), rounded up to the nanounit as upstream rounds, so
  comparison and arithmetic never lose precision;
* ``str(q)`` is what the server writes back: the canonical form (``1024Mi`` -> ``1Gi``,
  ``1000m`` -> ``1``, ``0.5`` -> ``500m``, ``1.5Gi`` -> ``1536Mi``), except that a string
  upstream already considers canonical is kept as written (``+1``, ``100k``, ``1Ki``);
* ``round_up`` is ``Quantity.RoundUp``, which core/v1 defaulting applies at milli scale to
  every ResourceList (so a pod's ``100n`` CPU reads back as ``1m``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "Quantity",
    "QuantityError",
    "canonical_quantity",
    "parse_quantity",
]

Format = Literal["DecimalExponent", "BinarySI", "DecimalSI"]
DECIMAL_EXPONENT: Final = "DecimalExponent"
BINARY_SI: Final = "BinarySI"
DECIMAL_SI: Final = "DecimalSI"

# upstream's errors, word for word
ERR_FORMAT: Final = ("quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
ERR_SUFFIX: Final = "unable to parse quantity's suffix"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"

_DECIMAL_SUFFIXES: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
                            "E": 18}
_DECIMAL_BY_EXPONENT: Final = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_EXPONENT: Final = {v // 10: k for k, v in _BINARY_SUFFIXES.items()}
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DIGITS: Final = frozenset("0123456789")
_NANO: Final = -9
_MAX_INT64: Final = 2**63 - 1
_MAX_INT64_FACTORS: Final = 18  # decimal digits an int64 always holds


class QuantityError(ValueError):
    """Not a quantity; the message is the API server's."""


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact quantity and the format its suffix chose. Compare with ``<``, ``==`` (by value:
    ``Quantity.parse("1Gi") == Quantity.parse("1024Mi")``), hash by value."""

    value: Fraction
    format: Format = DECIMAL_SI
    # the string as written, when upstream keeps it (already canonical)
    _written: str | None = None
    # the scale of upstream's int64Amount when it held the value that way (RoundUp keeps the
    # written string when that scale is already fine enough)
    _int_scale: int | None = None

    @classmethod
    def parse(cls, text: str | int | float) -> Quantity:
        """``ParseQuantity``; ints and floats (JSON numbers in a manifest) are read as text."""
        if isinstance(text, bool):
            raise QuantityError(ERR_FORMAT)
        return _parse(str(text).strip() if isinstance(text, str) else repr(text))

    # -- comparison (by value, as Quantity.Cmp) ----------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value

    def is_zero(self) -> bool:
        return self.value == 0

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    # -- printing ---------------------------------------------------------------------------------

    def __str__(self) -> str:
        """What the API server writes back for this quantity."""
        if self._written is not None:
            return self._written
        return self.canonical()

    def canonical(self) -> str:
        """``CanonicalizeBytes``: the shortest integer mantissa with a suffix of the format."""
        if self.value == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI:
            # small or fractional binary values print as decimal SI rather than lose precision
            if -1024 < self.value < 1024 or self.value.denominator != 1:
                fmt = DECIMAL_SI
            else:
                mantissa, power = int(self.value), 0
                while mantissa % 1024 == 0 and power < 6:
                    mantissa //= 1024
                    power += 1
                if power:
                    return f"{mantissa}{_BINARY_BY_EXPONENT[power]}"
                # No power of 1024 divides it: upstream prints a bare integer, which etcd's copy
                # (protobuf keeps the string) reads back as decimal SI, so kube-apiserver answers
                # in that form even on the create ("2156.25Ki" -> "2208000" -> "2208k").
                fmt = DECIMAL_SI
        mantissa, exponent = _decimal_parts(self.value)
        if fmt == DECIMAL_EXPONENT:
            return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
        # upstream prints no suffix at all for a decimal SI exponent it has no letter for
        return f"{mantissa}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"

    def round_up(self, scale: int) -> Quantity:
        """``RoundUp(scale)``: away from zero to a multiple of 10**scale (e.g. -3 for milli)."""
        if self._int_scale is not None and self._int_scale >= scale:
            return self
        step = Fraction(10) ** scale
        units = self.value / step
        rounded = math.ceil(units) if units >= 0 else math.floor(units)
        return Quantity(rounded * step, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"


def parse_quantity(text: str | int | float) -> Quantity:
    """``Quantity.parse``; raises ``QuantityError`` (a ValueError) with the server's message."""
    return Quantity.parse(text)


def canonical_quantity(text: str | int | float) -> str:
    """The string kube-apiserver stores for ``text`` (e.g. ``"1024Mi"`` -> ``"1Gi"``)."""
    return str(Quantity.parse(text))


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    """``value`` as mantissa * 10**exponent: every factor of ten moved into the exponent, then
    the exponent lowered to a multiple of three (AsCanonicalBytes)."""
    exponent = 0
    while value.denominator != 1:  # at most nine steps: values are whole nanounits
        value *= 10
        exponent -= 1
    mantissa = int(value)
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    return mantissa * 10**shift, exponent - shift


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """parseQuantityString: (positive, value, numerator, denominator, suffix)."""
    pos, end = 0, len(text)
    positive = True
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos >= end:
        return positive, text, text[start:], "", ""
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT)
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """suffixer.interpret: (base, exponent, format)."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        digits = rest[1:] if rest[:1] in ("+", "-") else rest
        if digits and all(c in _DIGITS for c in digits) and -_MAX_INT64 - 1 <= int(rest) <= _MAX_INT64:
            return 10, (int(rest) + 2**31) % 2**32 - 2**31, DECIMAL_EXPONENT  # Go's int32(parsed)
    raise QuantityError(ERR_SUFFIX)


def _parse(text: str) -> Quantity:
    if not text:
        raise QuantityError(ERR_FORMAT)
    if text == "0":
        return Quantity(Fraction(0), DECIMAL_SI, "0", 0)
    positive, value, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)

    # upstream's fast path: an int64 mantissa at nano scale or coarser; the string as written
    # is kept when it is already canonical
    precision = -1
    scale = 0
    multiplier = 1
    if fmt in (DECIMAL_EXPONENT, DECIMAL_SI):
        scale = exponent
        precision = _MAX_INT64_FACTORS - len(num) - len(denom)
    elif exponent >= 0 and not denom:
        multiplier = 1 << exponent
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
    if precision >= 0:
        scale -= len(denom)
        if scale >= _NANO:
            shifted = num + denom
            if not shifted:
                raise QuantityError(ERR_NUMERIC)
            amount = int(shifted) * multiplier
            if amount <= _MAX_INT64:
                signed = amount if positive else -amount
                exact = Fraction(signed) * Fraction(10) ** scale
                if fmt == BINARY_SI:
                    keep = exponent % 10 == 0 and int(shifted) & 0x07 != 0
                else:
                    keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
                return Quantity(exact, fmt, text if keep else None, scale)

    digits = value.lstrip("+-").rstrip(".")
    if not digits or digits == ".":
        raise QuantityError(ERR_NUMERIC)
    magnitude = Fraction(digits)
    magnitude *= Fraction(10) ** exponent if base == 10 else 2**exponent
    # non-zero values round up to the nanounit: asking for some resource gets some
    if magnitude.denominator != 1:
        nanos = magnitude * 10**9
        magnitude = Fraction(math.ceil(nanos), 10**9)
    if fmt == BINARY_SI:
        magnitude = min(magnitude, Fraction(_MAX_INT64))
        if 0 < magnitude < 1:
            fmt = DECIMAL_SI
    return Quantity(magnitude if positive else -magnitude, fmt)
