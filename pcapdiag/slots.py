"""Pickling for the dataclasses with __slots__ that workers send back in bulk (a report's
findings, flows, services: --jobs pipes, --cluster tasks).

The state dataclasses gives such a class (Python 3.11) is a list built with
dataclasses.fields() for every object, set back by a Python loop of object.__setattr__:
about 10 us an object, which for the 24,000 objects of a 1M-frame report was half a second
of a cluster run. Here the state is a tuple taken by one operator.attrgetter call and set back
by object.__setattr__ mapped in C: the same fields, the same values."""

from __future__ import annotations

import dataclasses
import operator
from collections import deque
from itertools import repeat
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def compact_pickle(cls: T) -> T:
    """Give the dataclass `cls` (slots, frozen or not) a tuple of its fields as its pickled
    state. Apply above @dataclass, which would otherwise set its own."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    count = len(names)
    if count == 1:
        one = operator.attrgetter(names[0])

        def get(obj: Any) -> tuple[Any, ...]:
            return (one(obj),)
    else:
        get = operator.attrgetter(*names)
    setter = object.__setattr__  # frozen classes too, as their __init__ does

    def __getstate__(self: Any) -> tuple[Any, ...]:
        return get(self)  # type: ignore[no-any-return]

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        deque(map(setter, repeat(self, count), names, state), maxlen=0)

    cls.__getstate__ = __getstate__  # type: ignore[attr-defined]
    cls.__setstate__ = __setstate__  # type: ignore[attr-defined]
    return cls
