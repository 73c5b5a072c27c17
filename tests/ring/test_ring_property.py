"""Property: interleaved writes and reads of any sizes never yield a wrong entry.

A model of the ring (which entries are still intact: within the last `slots`
seqs and not overwritten in the data area) predicts exactly when the reader
must report a lap; otherwise it must return the next entries in order.
"""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ring import RingReader, RingWriter, cleanup_stale

SLOTS = 4
DATA = 256


def payload(seq: int, n: int) -> bytes:
    """Bytes that differ per seq at every offset, so a mixed copy shows."""
    return (seq.to_bytes(8, "little") * (n // 8 + 1))[:n]


sizes = st.one_of(
    st.integers(0, 16),
    st.integers(DATA - 16, DATA),  # near the whole area
    st.integers(0, DATA),
)
write_op = st.tuples(st.just("w"), sizes, st.booleans(), st.integers(1, 3))
read_op = st.tuples(st.just("r"), st.integers(1, 12), st.booleans(), st.integers(0, 1))
seek_op = st.tuples(st.just("s"), st.just(0), st.booleans(), st.integers(0, 1))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(write_op, write_op, write_op, read_op, seek_op), max_size=60))
def test_reads_match_writes_or_report_lap(ops: list[tuple[str, int, bool, int]]) -> None:
    name = f"hubprop-{uuid.uuid4().hex[:12]}"
    wr = RingWriter.create(name, slots=SLOTS, data_size=DATA)
    rd = RingReader.attach(name)
    try:
        pos: dict[int, int] = {}  # seq -> absolute position
        size: dict[int, int] = {}
        keys: dict[int, bool] = {}
        write_pos = 0
        last = 0  # last seq returned
        pending = False  # a lap was reported, no entry returned since

        def intact(seq: int) -> bool:
            return wr.write_seq - seq < SLOTS and write_pos - pos[seq] <= DATA

        for op, arg, flag, extra in ops:
            if op == "w":
                n = arg
                data = payload(wr.write_seq + 1, n)
                parts = [data[: n // extra], data[n // extra :]] if extra > 1 else data
                seq = wr.write(parts, track=extra, keyframe=flag, pts=-seq_guess(wr), dts=n)
                pos[seq], size[seq], keys[seq] = write_pos, n, flag
                write_pos += n
            elif op == "s":
                if flag:
                    rd.seek_last_keyframe()
                else:
                    rd.seek_latest()
                pending = False  # a seek starts afresh: it is the caller's own jump
                last = rd.next_seq - 1
            else:
                nxt, laps_before = rd.next_seq, rd.lapped
                must_lap = not pending and nxt <= wr.write_seq and not intact(nxt)
                got = rd.read(max_entries=arg)
                for e in got:  # every entry is exactly what was written
                    assert e.data == payload(e.seq, size[e.seq])
                    assert (e.keyframe, e.dts, e.pts) == (keys[e.seq], size[e.seq], -e.seq)
                    assert e.seq > last
                    if e.seq != last + 1 or e.after_lap:
                        assert e.after_lap and e.keyframe
                    last = e.seq
                if must_lap:
                    assert rd.lapped == laps_before + 1
                    pending = not any(e.after_lap for e in got)
                elif pending:
                    assert rd.lapped == laps_before
                    pending = not any(e.after_lap for e in got)
                else:  # nothing was lost: the next entries, in order, no lap
                    assert rd.lapped == laps_before
                    expect = list(range(nxt, min(wr.write_seq, nxt + arg - 1) + 1))
                    assert [e.seq for e in got] == expect
                    assert not any(e.after_lap for e in got)
    finally:
        rd.close()
        wr.close()
        cleanup_stale(name)


def seq_guess(wr: RingWriter) -> int:
    """The seq the next write gets (pts carries it, negated)."""
    return wr.write_seq + 1
