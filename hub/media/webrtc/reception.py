"""What a receiver tells a sender about its RTP (RFC 3550 6.4.2, appendix A).

A WHIP publisher (a browser) adapts its sending rate to the loss and delay
it learns from our receiver reports; with none it stays at its start rate.
:class:`ReceptionStats` follows one received SSRC — extended highest
sequence number (A.1), cumulative and interval loss (A.3), interarrival
jitter (A.8), the last sender report (LSR/DLSR) — and makes its report
block. Sans-IO: arrival times are arguments.
"""

from __future__ import annotations

from hub.media.rtcp import ReportBlock, ntp_middle32

__all__ = ["ReceptionStats", "MAX_DROPOUT", "MAX_MISORDER"]

#: A.1: jumps ahead up to this many are losses; further, the source restarted.
MAX_DROPOUT = 3000
#: A.1: packets this far behind the highest are late, not a restart.
MAX_MISORDER = 100


class ReceptionStats:
    """Reception of one SSRC, fed every packet's sequence number and timestamp."""

    __slots__ = ("ssrc", "clock_rate", "base_seq", "max_seq", "cycles", "bad_seq", "received",
                 "expected_prior", "received_prior", "transit", "jitter", "last_sr", "last_sr_at")

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.base_seq = -1
        self.max_seq = 0
        self.cycles = 0
        self.bad_seq = -1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0
        self.last_sr = 0
        self.last_sr_at = 0.0

    def _restart(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.bad_seq = -1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0

    def packet(self, seq: int, timestamp: int, arrival: float) -> None:
        """One RTP packet (``arrival`` in seconds on any steady clock)."""
        if self.base_seq < 0:
            self._restart(seq)
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta < MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
            elif delta <= (1 << 16) - MAX_MISORDER:
                # A big jump: the sender restarted, if the next packet follows it.
                if seq != self.bad_seq:
                    self.bad_seq = (seq + 1) & 0xFFFF
                    return
                self._restart(seq)
            # else: a duplicate or a late packet, counted as received
        self.received += 1
        transit = arrival * self.clock_rate - timestamp
        if self.transit is not None:
            d = abs(transit - self.transit)
            if d < 1 << 31:  # a timestamp jump is not jitter
                self.jitter += (d - self.jitter) / 16
        self.transit = transit

    def sender_report(self, ntp: int, arrival: float) -> None:
        self.last_sr = ntp
        self.last_sr_at = arrival

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def block(self, now: float) -> ReportBlock | None:
        """The report block for a receiver report sent at ``now`` (None
        before any packet); starts a new loss interval."""
        if self.base_seq < 0:
            return None
        expected = self.extended_max - self.base_seq + 1
        lost = max(-(1 << 23), min((1 << 23) - 1, expected - self.received))
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lsr = dlsr = 0
        if self.last_sr:
            lsr = ntp_middle32(self.last_sr)
            dlsr = max(0, min(0xFFFFFFFF, int((now - self.last_sr_at) * 65536)))
        return ReportBlock(self.ssrc, fraction, lost, self.extended_max & 0xFFFFFFFF,
                           min(0xFFFFFFFF, int(self.jitter)), lsr, dlsr)
