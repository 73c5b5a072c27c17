"""Ring writer/reader in one process: layout bytes, seqs, wrap, laps, close."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from hub.ring import (
    RingEntry,
    RingFormatError,
    RingReader,
    RingWriter,
    cleanup_stale,
    ring_name,
    ring_prefix,
)

SHM = "/dev/shm"


def shm_exists(name: str) -> bool:
    return os.path.exists(os.path.join(SHM, name))


def raw(name: str) -> bytes:
    with open(os.path.join(SHM, name), "rb") as f:
        return f.read()


@pytest.fixture
def name() -> Iterator[str]:
    n = f"hubtest-{uuid.uuid4().hex[:12]}"
    yield n
    cleanup_stale(n)


def w(writer: RingWriter, data: bytes | list[bytes], key: bool = False, **kw: int) -> int:
    return writer.write(data, track=kw.get("track", 0), keyframe=key,
                        pts=kw.get("pts", 0), dts=kw.get("dts", 0), flags=kw.get("flags", 0))


def test_roundtrip_fields_and_seqs(name: str) -> None:
    with RingWriter.create(name, slots=16, data_size=4096) as wr, RingReader.attach(name) as rd:
        assert wr.name == name and rd.name == name
        assert (wr.write_seq, wr.last_key_seq, rd.write_seq) == (0, 0, 0)
        assert rd.read() == []
        assert w(wr, b"abc", key=True, track=2, pts=-5, dts=-7, flags=9) == 1
        assert wr.write([b"de", bytearray(b"f"), memoryview(b"gh")], track=1,
                        keyframe=False, pts=2**63 - 1, dts=-(2**63)) == 2
        assert (wr.write_seq, wr.last_key_seq, rd.write_seq, rd.last_key_seq) == (2, 1, 2, 1)
        assert rd.read() == [
            RingEntry(1, 2, 9, True, -5, -7, b"abc", False),
            RingEntry(2, 1, 0, False, 2**63 - 1, -(2**63), b"defgh", False),
        ]
        assert rd.read() == []
        assert rd.lapped == 0


def test_header_and_slot_bytes(name: str) -> None:
    with RingWriter.create(name, slots=16, data_size=4096) as wr:
        w(wr, b"\x01" * 10, pts=-1, dts=2, track=3, flags=4)
        w(wr, b"\x02" * 20, key=True)
        w(wr, b"\x03" * 5)
        wr.set_description_version(7)
        seg = raw(name)
    assert len(seg) == 128 + 16 * 64 + 4096
    assert seg[:128] == bytes.fromhex(
        "48554252494e4731"  # magic b"HUBRING1"
        "0100000000000000"  # layout version 1
        "1000000000000000"  # 16 slots
        "0010000000000000"  # 4096 data bytes
        "0300000000000000"  # write seq 3
        "0200000000000000"  # last keyframe seq 2
        "0700000000000000"  # description version 7
        "0000000000000000"  # not closed
        "2300000000000000"  # write position 35
    ) + bytes(56)
    # Slot of seq 1 is slot index 1: header (128) + 64.
    assert seg[192:256] == bytes.fromhex(
        "0100000000000000"  # seq 1
        "0000000000000000"  # absolute position 0
        "0a00000000000000"  # length 10
        "0300000000000000"  # track 3
        "0400000000000000"  # flags 4
        "ffffffffffffffff"  # pts -1
        "0200000000000000"  # dts 2
        "0000000000000000"  # not a keyframe
    )
    assert seg[256:264] == bytes.fromhex("0200000000000000")
    assert seg[256 + 8 : 256 + 16] == bytes.fromhex("0a00000000000000")  # at byte 10
    assert seg[256 + 56 : 256 + 64] == bytes.fromhex("0100000000000000")  # keyframe
    data = 128 + 16 * 64
    assert seg[data : data + 36] == b"\x01" * 10 + b"\x02" * 20 + b"\x03" * 5 + b"\x00"


def test_closed_flag_is_in_header_before_unmap(name: str) -> None:
    wr = RingWriter.create(name, slots=4, data_size=64)
    rd = RingReader.attach(name)
    assert rd.closed is False
    w(wr, b"x", key=True)
    wr.close(unlink=False)
    assert raw(name)[56:64] == bytes.fromhex("0100000000000000")
    assert rd.closed is True
    assert [e.data for e in rd.read()] == [b"x"]
    assert rd.read() == []
    rd.close()
    assert cleanup_stale(name) == [name]


def test_a_closed_reader_reads_nothing(name: str) -> None:
    """A wake-up that reaches a reader after its owner closed it (a stream's
    end racing its last writes) reads nothing instead of a released mapping."""
    with RingWriter.create(name, slots=4, data_size=64) as wr:
        rd = RingReader.attach(name)
        w(wr, b"x", key=True)
        rd.close()
        rd.close()
        w(wr, b"y")
        assert rd.read() == [] and rd.closed is True
        assert wr.write_seq == 2  # the writer never noticed


def test_wrap_splits_entry_over_the_end(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=64) as wr, RingReader.attach(name) as rd:
        w(wr, bytes(range(40)), key=True)
        assert [e.data for e in rd.read()] == [bytes(range(40))]
        w(wr, bytes(range(100, 140)))  # positions 40..80: 24 bytes at the tail, 16 at the head
        data = raw(name)[128 + 4 * 64 :]
        assert data == bytes(range(124, 140)) + bytes(range(16, 40)) + bytes(range(100, 124))
        assert [e.data for e in rd.read()] == [bytes(range(100, 140))]
        assert rd.lapped == 0
        # a list of buffers that straddles the end inside its second buffer
        w(wr, [bytes(range(200, 210)), bytes(range(10, 40))])  # positions 80..120
        w(wr, [b"\xaa" * 4, bytes(range(50, 54))])  # 120..128: ends exactly at the end
        w(wr, b"\xbb" * 3)  # 128: starts at offset 0 again
        assert [e.data for e in rd.read()] == [
            bytes(range(200, 210)) + bytes(range(10, 40)),
            b"\xaa" * 4 + bytes(range(50, 54)),
            b"\xbb" * 3,
        ]
        assert rd.lapped == 0


def test_entry_of_exactly_data_size_and_oversized_refused(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=64) as wr, RingReader.attach(name) as rd:
        w(wr, b"\x05" * 7, key=True)
        assert [e.data for e in rd.read()] == [b"\x05" * 7]
        w(wr, bytes(range(64)))  # the whole area, starting at offset 7
        assert raw(name)[128 + 4 * 64 :] == bytes(range(57, 64)) + bytes(range(57))
        assert [e.data for e in rd.read()] == [bytes(range(64))]
        assert rd.lapped == 0
        rd.seek_last_keyframe()  # entry 1 was overwritten by entry 2
        assert rd.read() == []
        assert rd.lapped == 1
        with pytest.raises(ValueError):
            w(wr, bytes(65))
        with pytest.raises(ValueError):
            wr.write([bytes(60), memoryview(bytes(5))], track=0, keyframe=True, pts=0, dts=0)
        assert wr.write_seq == 2
        assert rd.read() == []


def test_memoryview_of_wider_items_is_written_as_bytes(name: str) -> None:
    import array

    a = array.array("H", [0x0102, 0x0304])
    with RingWriter.create(name, slots=4, data_size=64) as wr, RingReader.attach(name) as rd:
        wr.write(memoryview(a), track=0, keyframe=True, pts=0, dts=0)
        assert rd.read()[0].data == bytes(memoryview(a).cast("B"))


def test_bad_field_value_leaves_ring_consistent(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=64) as wr, RingReader.attach(name) as rd:
        w(wr, b"a" * 8, key=True)
        with pytest.raises((ValueError, OverflowError, TypeError)):
            w(wr, b"b" * 8, track=-1)  # bytes copied, slot not published
        assert wr.write_seq == 1
        w(wr, b"c" * 4)
        # the failed write's 8 bytes stay claimed: write position 8 + 8 + 4
        assert raw(name)[64:72] == bytes.fromhex("1400000000000000")
        assert [(e.seq, e.data) for e in rd.read()] == [(1, b"a" * 8), (2, b"c" * 4)]


def test_geometry_checked(name: str) -> None:
    for slots, size in ((3, 4096), (0, 4096), (1, 4096), (16, 1000), (16, 32)):
        with pytest.raises(ValueError):
            RingWriter.create(name, slots=slots, data_size=size)
    assert not shm_exists(name)


def test_create_existing_and_replace(name: str) -> None:
    wr = RingWriter.create(name, slots=4, data_size=64)
    with pytest.raises(FileExistsError):
        RingWriter.create(name, slots=4, data_size=64)
    wr.close(unlink=False)
    wr2 = RingWriter.create(name, slots=8, data_size=128, replace=True)
    with RingReader.attach(name) as rd:
        assert rd.closed is False
    wr2.close()
    assert not shm_exists(name)


def test_reader_starts_at_last_keyframe(name: str) -> None:
    with RingWriter.create(name, slots=16, data_size=4096) as wr:
        for i in range(1, 8):
            w(wr, bytes([i]), key=i in (2, 5))
        rd = RingReader.attach(name)
        assert rd.next_seq == 5
        assert [e.seq for e in rd.read()] == [5, 6, 7]
        rd.seek_last_keyframe()
        assert [e.seq for e in rd.read(max_entries=2)] == [5, 6]
        assert [e.seq for e in rd.read(max_entries=2)] == [7]
        rd.seek_latest()
        assert rd.read() == []
        w(wr, b"n")
        assert [e.seq for e in rd.read()] == [8]
        rd.close()


def test_reader_without_keyframe_starts_at_next_entry(name: str) -> None:
    with RingWriter.create(name, slots=16, data_size=4096) as wr:
        w(wr, b"a")
        w(wr, b"b")
        with RingReader.attach(name) as rd:
            assert rd.read() == []
            w(wr, b"c")
            assert [(e.seq, e.data) for e in rd.read()] == [(3, b"c")]


def test_lapped_by_slots_jumps_to_keyframe(name: str) -> None:
    with RingWriter.create(name, slots=8, data_size=4096) as wr:
        w(wr, b"k1", key=True)
        rd = RingReader.attach(name)
        for i in range(2, 14):  # 13 entries in 8 slots: seq 1..5 are gone
            w(wr, b"e%d" % i, key=i == 10)
        got = rd.read()
        assert [e.seq for e in got] == [10, 11, 12, 13]
        assert [e.after_lap for e in got] == [True, False, False, False]
        assert got[0].keyframe and got[0].data == b"e10"
        assert rd.lapped == 1
        w(wr, b"e14")
        assert [(e.seq, e.after_lap) for e in rd.read()] == [(14, False)]
        assert rd.lapped == 1
        rd.close()


def test_lapped_by_data_bytes_jumps_to_keyframe(name: str) -> None:
    with RingWriter.create(name, slots=64, data_size=256) as wr:
        w(wr, bytes(100), key=True)
        rd = RingReader.attach(name)
        w(wr, b"\x01" * 100)
        w(wr, b"\x02" * 50, key=True)
        w(wr, b"\x03" * 10)  # write position 260 > 256: entry 1's first bytes are hit
        got = rd.read()
        assert [(e.seq, e.after_lap, e.data) for e in got] == [
            (3, True, b"\x02" * 50), (4, False, b"\x03" * 10)]
        assert rd.lapped == 1
        rd.close()


def test_lapped_with_keyframe_gone_waits_for_next_keyframe(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=4096) as wr:
        w(wr, b"k", key=True)
        rd = RingReader.attach(name)
        for _ in range(9):  # key 1 long gone, no newer one
            w(wr, b"p")
        assert rd.read() == []
        assert rd.lapped == 1
        w(wr, b"p")  # non-key entries after the lap are skipped
        w(wr, b"a", track=1)
        assert rd.read() == []
        w(wr, b"K", key=True)
        w(wr, b"q")
        got = rd.read()
        assert [(e.seq, e.data, e.after_lap) for e in got] == [(13, b"K", True), (14, b"q", False)]
        assert rd.lapped == 1
        rd.close()


def test_lapped_again_counts_again(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=4096) as wr:
        w(wr, b"k", key=True)
        rd = RingReader.attach(name)
        for _ in range(2):
            for i in range(5):
                w(wr, b"x", key=i == 3)
            got = rd.read()
            assert got[0].after_lap and got[0].keyframe
        assert rd.lapped == 2
        rd.close()


def test_description_version(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=64) as wr, RingReader.attach(name) as rd:
        assert rd.description_version == 0
        wr.set_description_version(3)
        assert rd.description_version == 3


def test_write_after_close_refused(name: str) -> None:
    wr = RingWriter.create(name, slots=4, data_size=64)
    wr.close()
    wr.close()
    with pytest.raises(ValueError):
        w(wr, b"x")


def test_creator_close_leaves_nothing_in_dev_shm(name: str) -> None:
    wr = RingWriter.create(name, slots=4, data_size=64)
    rd = RingReader.attach(name)
    assert shm_exists(name)
    wr.close()
    assert not shm_exists(name)
    assert rd.closed  # the mapping outlives the name
    rd.close()
    assert not [e for e in os.listdir(SHM) if e.startswith(name)]


def test_attach_missing_or_foreign_segment(name: str) -> None:
    with pytest.raises(FileNotFoundError):
        RingReader.attach(name)
    with open(os.path.join(SHM, name), "wb") as f:
        f.write(b"not a ring" * 100)
    with pytest.raises(RingFormatError):
        RingReader.attach(name)
    with open(os.path.join(SHM, name), "wb") as f:
        f.write(b"tiny")
    with pytest.raises(RingFormatError):
        RingReader.attach(name)


def test_attach_truncated_ring_refused(name: str) -> None:
    with RingWriter.create(name, slots=4, data_size=64):
        seg = raw(name)
    with open(os.path.join(SHM, name), "wb") as f:
        f.write(seg[:-1])
    with pytest.raises(RingFormatError):
        RingReader.attach(name)


def test_names_and_cleanup(name: str) -> None:
    assert ring_name("i7", 42) == "hub-i7-42"
    assert ring_prefix("i7") == "hub-i7-"
    for bad in ("", "a-b", "a/b"):
        with pytest.raises(ValueError):
            ring_prefix(bad)
    with pytest.raises(ValueError):
        ring_name("i7", -1)
    for bad in ("", "a/b"):
        with pytest.raises(ValueError):
            cleanup_stale(bad)
    keep = RingWriter.create(name + "x", slots=4, data_size=64)
    a = RingWriter.create(f"{name}-1", slots=4, data_size=64)
    b = RingWriter.create(f"{name}-2", slots=4, data_size=64)
    assert cleanup_stale(f"{name}-") == [f"{name}-1", f"{name}-2"]
    assert shm_exists(name + "x")
    a.close()  # already unlinked: closes quietly
    b.close()
    keep.close()
    assert cleanup_stale(name) == []
