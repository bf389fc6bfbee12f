"""Scenarios where a host's own limits shape the failure (issue 14): path MTU black holes,
listen backlogs, zero windows, SYN cookies, slow connects, neighbour resolution."""

from __future__ import annotations

from .scenarios import Scenario


def scenarios() -> list[Scenario]:
    return []
