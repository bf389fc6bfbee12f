"""What two views of one connection saw of each packet: a joined finding's packets, each as it
left its sender's host and as it arrived, or not, at the other's (made by join/crossings.py,
drawn side by side by the HTML and Markdown reports)."""

from __future__ import annotations

from dataclasses import dataclass

# A packet's fate between the two capture points.
BOTH = "both"  # seen leaving and arriving
LOST = "lost"  # left while the receiver's capture ran, never arrived
UNSENT = "unsent"  # arrived, never left the sender's host while its capture ran
RESEGMENTED = "resegmented"  # its bytes arrived, cut or joined differently (offload)
UNSEEN = "unseen"  # the other capture was not running then: nothing to say


@dataclass(frozen=True, slots=True)
class Crossing:
    sender: str  # "client" | "server"
    label: str  # flags and sizes, as the ladder writes them ("PSH ACK seq=1 len=100")
    sent: tuple[int, int] | None  # frame in the sender's host view, time (reference clock)
    got: tuple[int, int] | None  # frame in the receiver's host view, time (reference clock)
    status: str

    @property
    def first_ns(self) -> int:
        return self.sent[1] if self.sent is not None else self.got[1] if self.got else 0


@dataclass(frozen=True, slots=True)
class TwoViews:
    """The views on the client's and the server's host, and every packet of the connection
    either holds, in time order."""

    client_view: str
    server_view: str
    crossings: tuple[Crossing, ...]
    # Each end as the view on its own host names it (address translation between the two
    # may have named it otherwise in the other view).
    client: str = ""
    server: str = ""
    reference: str = ""  # the view whose clock the times are on

    def at(self, c: Crossing, view: str) -> tuple[int, int] | None:
        """Where crossing `c` shows in `view` (the client's or the server's host's): its
        frame there and time, None when that view does not hold it."""
        on_sender = (view == self.client_view) == (c.sender == "client")
        return c.sent if on_sender else c.got
