"""Counts in words, singular or plural by the count: "1 retransmission", "3 retransmissions".

For Python's own text, `counted()` and `word()`. For rule templates (findings/templates.py),
the values of a count carry their number, so that a format spec "singular|plural" picks the
word: `{retx.count:retransmission|retransmissions}` gives "1 retransmission" or "3
retransmissions", and `{retx.frames:frame|frames}` gives "frame 7" or "frames 7, 9".
"""

from __future__ import annotations


def word(n: int, singular: str, plural: str | None = None) -> str:
    """`singular` for one, else `plural` (by default `singular` + "s")."""
    return singular if n == 1 else (plural if plural is not None else singular + "s")


def counted(n: int, singular: str, plural: str | None = None, *, sep: str = "") -> str:
    """The count and its word: "1 frame", "12 frames"; `sep` "," groups thousands."""
    return f"{n:{sep}} {word(n, singular, plural)}"


def _forms(spec: str) -> tuple[str, str] | None:
    singular, bar, plural = spec.partition("|")
    return (singular, plural) if bar else None


class Count(int):
    """A count for a template: `{c.count}` is the number, `{c.count:time|times}` the number
    and its word."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        forms = _forms(spec)
        if forms is None:
            return int.__format__(self, spec)
        return counted(int(self), *forms)


class Listed(str):
    """A list of things a count names (its frames, "7, 9"): `{c.frames:frame|frames}` puts
    the word before it, singular for one thing."""

    n: int

    def __new__(cls, text: str, n: int) -> Listed:
        self = super().__new__(cls, text)
        self.n = n
        return self

    def __format__(self, spec: str) -> str:
        forms = _forms(spec)
        if forms is None:
            return str.__format__(self, spec)
        return f"{word(self.n, *forms)} {self}"
