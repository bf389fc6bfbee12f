"""How an analysis runs, never what it finds: every combination gives the same report (the
tests compare them). The defaults are the fastest the installation allows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    # The accelerator's C first pass and batch reader (pcapdiag.accel), when it was built:
    # frames of connections it proves plain are set aside unread.
    accelerate: bool = True
    # Common Ethernet/IP/TCP frames decoded with one unpack (in C under the first pass),
    # the rest by the general decoder.
    fast_decode: bool = True
    # The tracker's inline path for steady segments (track.connection._steady_segment).
    tracker_fast_path: bool = True
    # A finding that can no longer be listed (its group already holds --max-alike earlier
    # ones) is only counted, never built (findings/collect.py count_only).
    count_unlisted: bool = True
    # The first pass's exemplars of failing connections shared by classes alike but for
    # their times (accel/triage.py): fewer read, and when a group's list turns out to need
    # one that was counted, the analysis runs again with these off (session.analyze_shard).
    shared_exemplars: bool = True


# What `pcapdiag analyze --no-accel` asks for: none of the accelerator's parts (the tracker's
# own inline path is not the accelerator's).
NO_ACCEL = Settings(accelerate=False, fast_decode=False)
