"""Receiver statistics and report blocks (RFC 3550 A.1, A.3, A.8, 6.4.1)."""

from __future__ import annotations

from hub.media.rtcp import ReceiverReport, ReportBlock, parse_compound, unix_to_ntp
from hub.media.webrtc.reception import ReceptionStats


def test_no_packet_no_block() -> None:
    assert ReceptionStats(1, 90000).block(0.0) is None


def test_in_order_stream_reports_no_loss_and_no_jitter() -> None:
    s = ReceptionStats(0xCAFE, 90000)
    for i in range(100):  # 25 fps, arriving exactly on time
        s.packet(1000 + i, 3600 * i, i * 0.04)
    assert s.block(4.0) == ReportBlock(0xCAFE, 0, 0, 1099, 0, 0, 0)


def test_losses_fraction_and_cumulative_per_interval() -> None:
    s = ReceptionStats(7, 8000)
    for seq in range(0, 100):
        if seq % 10 != 5:  # 10 of 100 lost
            s.packet(seq, seq * 160, seq * 0.02)
    b = s.block(2.0)
    assert b is not None and (b.packets_lost, b.highest_seq, b.fraction_lost) == (10, 99, 25)  # 10/100*256
    for seq in range(100, 200):  # the next interval loses nothing
        s.packet(seq, seq * 160, seq * 0.02)
    b = s.block(4.0)
    assert b is not None and (b.packets_lost, b.highest_seq, b.fraction_lost) == (10, 199, 0)


def test_sequence_wrap_extends_the_highest_number() -> None:
    s = ReceptionStats(7, 90000)
    for i in range(20):
        s.packet((65530 + i) & 0xFFFF, i * 3000, i * 0.033)
    b = s.block(1.0)
    assert b is not None and b.highest_seq == (1 << 16) + 13 and b.packets_lost == 0


def test_late_and_duplicate_packets_are_not_a_restart() -> None:
    s = ReceptionStats(7, 90000)
    for seq in (10, 11, 13, 12, 13, 14):
        s.packet(seq, 0, 0.0)
    b = s.block(1.0)
    assert b is not None and b.highest_seq == 14 and b.packets_lost == -1  # a duplicate counts as received


def test_a_jump_restarts_after_two_sequential_packets() -> None:
    s = ReceptionStats(7, 90000)
    s.packet(100, 0, 0.0)
    s.packet(101, 0, 0.0)
    s.packet(30000, 0, 0.0)  # one stray packet far away: ignored
    b = s.block(1.0)
    assert b is not None and b.highest_seq == 101
    s.packet(40000, 0, 0.0)
    s.packet(40001, 0, 0.0)  # follows it: the sender restarted there
    b = s.block(1.0)
    assert b is not None and (b.highest_seq, b.packets_lost) == (40001, 0)


def test_jitter_follows_rfc3550_a8() -> None:
    s = ReceptionStats(7, 90000)
    s.packet(1, 0, 0.0)
    s.packet(2, 3600, 0.05)  # 10 ms late: D = 900 clock units
    assert s.block(1.0) is not None
    assert int(s.jitter) == int(900 / 16)


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    s = ReceptionStats(7, 90000)
    s.packet(1, 0, 10.0)
    ntp = unix_to_ntp(1_700_000_000.25)
    s.sender_report(ntp, 10.0)
    b = s.block(10.5)
    assert b is not None
    assert b.lsr == (ntp >> 16) & 0xFFFFFFFF
    assert b.dlsr == 32768  # half a second in 1/65536 s
    # The block goes out in an RR that parses back to the same fields.
    rr = bytes(ReceiverReport(0x1234, [b]))
    (parsed,) = parse_compound(rr)
    assert isinstance(parsed, ReceiverReport) and parsed.reports == [b]
