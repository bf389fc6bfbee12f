"""Findings held with bounded memory: a SYN flood or a port scan yields a finding per
connection, a million of them, and a report that keeps each one costs gigabytes and reads as a
million blocks. Findings alike (same rule, side, errno and server address: see `alike_key`)
are counted in a `FindingGroup`; of each group only the first `max_alike` (by time) are kept
in full.

Which findings are kept depends only on the findings, not on the order they arrive in: the
`max_alike` smallest by the report's sort key. So a report made by several workers (--jobs),
each keeping its own smallest, merges into exactly the report one process makes.
"""

from __future__ import annotations

from collections.abc import Mapping

from pcapdiag.findings.model import Finding, FindingGroup, alike_key, finding_order

# Findings alike kept in full per group by default; the rest are only counted.
DEFAULT_MAX_ALIKE = 100


class FindingCollector:
    def __init__(self, max_alike: int | None = DEFAULT_MAX_ALIKE) -> None:
        """`max_alike` None keeps every finding."""
        self.max_alike = max_alike
        self._groups: dict[tuple[object, ...], FindingGroup] = {}
        self._kept: dict[tuple[object, ...], list[Finding]] = {}
        # By group: the order (finding_order without the id) of its max_alike-th finding
        # kept, once it has max_alike: a finding that sorts after it will never be listed.
        self._bar: dict[tuple[object, ...], tuple[object, ...]] = {}

    def count_only(
        self,
        key: tuple[object, ...],
        order: tuple[object, ...],
        first_ts_ns: int,
        last_ts_ns: int,
        client: str,
        server: str,
    ) -> bool:
        """Count a finding not yet built in its group (`key`: its alike_key) when it can never
        be listed (`order`: its finding_order without the id), and say so; False: it may be
        listed, so build it and add() it. A flood's findings past the first max_alike of
        their group then cost no building at all."""
        bar = self._bar.get(key)
        if bar is None or order <= bar:
            return False
        self._groups[key].count_parts(first_ts_ns, last_ts_ns, client, server)
        return True

    def lists_before(self, key: tuple[object, ...], order: tuple[object, ...]) -> bool:
        """Whether group `key` lists max_alike findings, all sorting before `order` (a
        finding_order without the id, or a least bound of one): what count_many needs of
        the findings it counts."""
        bar = self._bar.get(key)
        return bar is not None and bar < order

    def count_many(
        self,
        key: tuple[object, ...],
        n: int,
        first_ts_ns: int,
        last_ts_ns: int,
        clients: set[str] | None,
        by_port: Mapping[int, int],
    ) -> None:
        """Count `n` findings never built into their group (`key`), which their exemplars
        made (findings/samples.py): they sort after every finding it lists; `by_port`: how
        many went to each server port."""
        self._groups[key].count_many(n, first_ts_ns, last_ts_ns, clients, by_port)

    def add(self, finding: Finding) -> None:
        key = alike_key(finding)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = FindingGroup.first(finding)
            self._kept[key] = []
        else:
            group.count_in(finding)
        kept = self._kept[key]
        kept.append(finding)
        if self.max_alike is None:
            return
        # Trim when twice over the limit: sorting costs O(n log n) once per max_alike
        # findings, so a million findings alike cost a few hundred short sorts.
        if len(kept) >= 2 * max(self.max_alike, 1):
            kept.sort(key=finding_order)
            del kept[self.max_alike :]
            if kept:
                last = kept[-1]
                self._bar[key] = (last.first_ts_ns, last.frames, last.rule)
        elif len(kept) == self.max_alike and key not in self._bar:
            # Full for the first time: what sorts after the last of these is never listed
            # (count_only), without waiting for the first trim.
            last = max(kept, key=finding_order)
            self._bar[key] = (last.first_ts_ns, last.frames, last.rule)

    def trim(self) -> None:
        """Keep only what can still be listed: each group's first max_alike findings (the
        smallest of a union are among the smallest of its parts, so a part trimmed before
        it is merged gives the same result). Makes a worker's part small to send."""
        if self.max_alike is None:
            return
        for kept in self._kept.values():
            if len(kept) > self.max_alike:
                kept.sort(key=finding_order)
                del kept[self.max_alike :]

    def merge(self, other: FindingCollector) -> None:
        """Take in another worker's findings (the same limit)."""
        for key, group in other._groups.items():
            mine = self._groups.get(key)
            if mine is None:
                self._groups[key] = group
                self._kept[key] = list(other._kept[key])
                continue
            mine.merge(group)
            self._kept[key] += other._kept[key]

    def result(self) -> tuple[list[Finding], list[FindingGroup]]:
        """The findings kept (unsorted) and every group with more than one finding."""
        findings: list[Finding] = []
        for key, kept in self._kept.items():
            kept.sort(key=finding_order)
            if self.max_alike is not None:
                del kept[self.max_alike :]
            self._groups[key].listed = len(kept)
            findings += kept
        groups = [g for g in self._groups.values() if g.count > 1]
        return findings, groups
