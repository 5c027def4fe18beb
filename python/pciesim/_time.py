"""Simulated time with explicit units.

A SimTime is an int of femtoseconds (the simulator's resolution) that prints
and parses with units. Every pciesim call that takes a time accepts a
SimTime or a string such as "10us"; bare numbers are refused because their
unit would be a guess.
"""
from __future__ import annotations

import datetime
import numbers

from . import _native

_FS = {"fs": 1, "ps": 10**3, "ns": 10**6, "us": 10**9, "ms": 10**12, "s": 10**15}


class SimTime(int):
    """Simulated time in femtoseconds."""

    def __new__(cls, femtoseconds: int = 0):
        if femtoseconds < 0:
            raise ValueError(f"simulated time cannot be negative: {femtoseconds} fs")
        return super().__new__(cls, femtoseconds)

    @property
    def ps(self) -> float:
        return int(self) / _FS["ps"]

    @property
    def ns(self) -> float:
        return int(self) / _FS["ns"]

    @property
    def us(self) -> float:
        return int(self) / _FS["us"]

    @property
    def ms(self) -> float:
        return int(self) / _FS["ms"]

    @property
    def seconds(self) -> float:
        return int(self) / _FS["s"]

    def __str__(self) -> str:
        return _native.format_time(int(self))

    def __repr__(self) -> str:
        return f"SimTime('{self}')"

    def __add__(self, other):
        return SimTime(int(self) + int(as_time(other)))

    __radd__ = __add__

    def __sub__(self, other):
        return SimTime(int(self) - int(as_time(other)))

    def __rsub__(self, other):
        return SimTime(int(as_time(other)) - int(self))

    def __mul__(self, k):
        if not isinstance(k, numbers.Integral):
            return NotImplemented
        return SimTime(int(self) * int(k))

    __rmul__ = __mul__


def _unit(name):
    def make(value) -> SimTime:
        return SimTime(round(value * _FS[name]))

    make.__name__ = name
    make.__doc__ = f"SimTime of `value` {name}."
    return make


fs, ps, ns, us, ms = (_unit(u) for u in ("fs", "ps", "ns", "us", "ms"))
seconds = _unit("s")


def parse(text: str) -> SimTime:
    """'10us', '1.5 ms', '250ns' -> SimTime."""
    return SimTime(_native.parse_time(text))


def as_time(value) -> SimTime:
    """Coerces a SimTime, a unit string or a datetime.timedelta."""
    if isinstance(value, SimTime):
        return value
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, datetime.timedelta):
        return SimTime(round(value.total_seconds() * _FS["s"]))
    if isinstance(value, numbers.Number):
        raise TypeError(
            f"a bare number ({value!r}) has no unit: use a string such as '10us' or "
            "pciesim.us(10)")
    raise TypeError(f"expected a time such as '10us' or pciesim.us(10), got {type(value).__name__}")
