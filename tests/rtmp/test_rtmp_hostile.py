"""Bad RTMP input costs only the connection that sends it.

A stream pushed over RTMP is watched by an HTTP-FLV player and an RTMP
player (each on its own front, if the kernel spreads them) attached before
the attacks; every attack connection, on RTMP's port and on the shared port,
must be closed by the server while both watchers keep receiving video with
no gap over 1 s. Then: a publisher sending broken media is closed and only
its stream ends; a second publisher of a live path replaces the first (as
on RTSP); a player that stops reading is skipped and closed while another
plays on.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from hub.media.rtmp.handshake import check_server_answer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import play
from tests.hostile.harness import FlvWatcher
from tests.media.rtmp.rtmp_testkit import Client
from tests.rtmp.conftest import RtmpHub
from tests.rtmp.peers import (FlvPusher, LegacyHevcPusher, RtmpWatcher, read_until, recv_exactly,
                              rtmp_setup)

pytestmark = pytest.mark.e2e


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes `sock` within `timeout` (what it sends is read and dropped)."""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def _connected(port: int) -> tuple[socket.socket, Client]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    client = Client()
    sock.sendall(client.c0c1)
    answer = recv_exactly(sock, 3073)
    check_server_answer(answer, client.c1)
    sock.sendall(client.c2(answer))
    return sock, client


def attack_garbage(port: int) -> socket.socket:
    """C0, then random bytes as C1, C2 and chunks."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"\x03" + os.urandom(1536 * 2 + 4096))
    return sock


def attack_version(port: int) -> socket.socket:
    """RTMPE's version byte (6), which we do not speak."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"\x06" + os.urandom(1536))
    return sock


def attack_bad_amf(port: int) -> socket.socket:
    """A `connect` whose AMF0 body has an unknown type marker."""
    sock, _ = _connected(port)
    body = b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x42\x42"
    sock.sendall(bytes((3,)) + b"\x00\x00\x00" + len(body).to_bytes(3, "big") + b"\x14\x00\x00\x00\x00" + body)
    return sock


def attack_huge_command(port: int) -> socket.socket:
    """A command message declaring 16 MiB."""
    sock, _ = _connected(port)
    sock.sendall(bytes.fromhex("03 000000 ffffff 14 00000000") + b"\x02" * 100)
    return sock


def attack_bad_chunk_header(port: int) -> socket.socket:
    """A chunk stream's first chunk with a fmt that needs an earlier header."""
    sock, client = _connected(port)
    sock.sendall(client.connect("live") + bytes((0x80 | 9,)) + b"\x00\x00\x10")
    return sock


def attack_truncated(port: int) -> socket.socket:
    """connect, then half of a large video message, then silence: the
    publish/play deadline closes it."""
    sock, client = _connected(port)
    message = client.media(9, 0, bytes((0x17, 1, 0, 0, 0)) + bytes(200_000))
    sock.sendall(client.connect("live") + message[:len(message) // 2])
    return sock


def attack_amf_flood(port: int) -> socket.socket:
    """connect, then commands of the largest size (64 KiB of one-byte AMF0
    nulls, ~30 ms each to decode) back to back: one such connection held a
    front's core. Closed once past its AMF budget."""
    sock, client = _connected(port)
    head = b"\x02\x00\x08_checkbw\x00" + bytes(8)
    body = head + b"\x05" * ((64 << 10) - len(head))
    # Three: past the budget (128 KiB at once) at the second, and under the
    # 256 KiB a connection may send before publish or play (MAX_TRANSCRIPT),
    # which would otherwise close it first when a read takes them all at once.
    flood = client.writer.write(3, 20, 0, 0, body) * 3
    sock.sendall(client.connect("live"))
    try:
        sock.sendall(flood)
    except OSError:
        pass  # closed while we were sending: what the test looks for
    return sock


ATTACKS = [attack_garbage, attack_version, attack_bad_amf, attack_huge_command, attack_bad_chunk_header,
           attack_truncated, attack_amf_flood]


def test_bad_input_closes_only_its_connection(rtmp_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv = rtmp_hub.srv
    pusher = FlvPusher(rtmp_hub.url("/live/w"), media("h264")).start()
    flv = FlvWatcher(srv.port, "/live/w")
    rtmp = RtmpWatcher(rtmp_hub.rtmp_port, "/live/w")
    try:
        wait_live(srv, "/live/w")
        flv.start()
        rtmp.start()
        since = time.monotonic()
        for attack in ATTACKS:
            for port in (rtmp_hub.rtmp_port, srv.port):
                if attack is attack_version and port == srv.port:
                    continue  # not RTMP to the sniffer: test_sniff's garbage
                sock = attack(port)
                try:
                    bound = 13.0 if attack is attack_truncated else 3.0
                    assert closed_by_server(sock, bound), f"{attack.__name__} on port {port} not closed"
                finally:
                    sock.close()
        context = srv.log()[-3000:]
        flv.assert_flowing(since, context=context)
        rtmp.assert_flowing(since, context=context)
        assert pusher.alive()
        log = srv.log()
        assert "Traceback" not in log
        for what in ("handshake", "AMF0: unsupported marker", "message of type 20", "first chunk of chunk stream",
                     "no progress in state connected", "bytes of commands and data a second"):
            assert what in log, f"no closing reason with {what!r} logged"
    finally:
        flv.stop()
        rtmp.stop()
        pusher.stop()


def test_broken_media_closes_its_publisher_only(rtmp_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv = rtmp_hub.srv
    pusher = FlvPusher(rtmp_hub.url("/live/good"), media("h264")).start()
    rtmp = RtmpWatcher(srv.port, "/live/good")
    try:
        wait_live(srv, "/live/good")
        rtmp.start()
        since = time.monotonic()
        sock, client = rtmp_setup(rtmp_hub.rtmp_port, "bad")
        with sock:
            assert b"NetStream.Publish.Start" in read_until(sock, b"NetStream.Publish.Start")
            from tests.rtmp.test_rtmp_handoff import RECORD, idr, video
            sock.sendall(client.media(9, 0, bytes((0x17, 0, 0, 0, 0)) + RECORD)
                         + client.media(9, 0, video(True, idr(0))))
            wait_live(srv, "/live/bad")
            sock.sendall(client.media(9, 40, video(False, b"\x00\x00\x10\x00\x41\x00")))
            assert closed_by_server(sock, 3.0)
        deadline = time.monotonic() + 5
        while srv.get_json("/api/v1/streams")["total"] != 1:
            assert time.monotonic() < deadline, "the broken publisher's stream did not end"
            time.sleep(0.1)
        time.sleep(1.0)
        rtmp.assert_flowing(since, context=srv.log()[-3000:])
        assert pusher.alive() and "bad NAL length" in srv.log()
    finally:
        rtmp.stop()
        pusher.stop()


def test_a_second_publisher_replaces_the_first(rtmp_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv = rtmp_hub.srv
    first = FlvPusher(rtmp_hub.url("/live/r"), media("h264")).start()
    second: LegacyHevcPusher | None = None
    try:
        wait_live(srv, "/live/r")
        old = RtmpWatcher(rtmp_hub.rtmp_port, "/live/r").start()
        second = LegacyHevcPusher(srv.port, "r", media("h265")).start()
        deadline = time.monotonic() + 10
        while old.error is None:
            assert time.monotonic() < deadline, "the old stream's RTMP player was not closed"
            time.sleep(0.1)
        assert old.error == "connection closed by the server"
        old.stop()
        r = play(rtmp_hub.url("/live/r"), frames=20, timeout=15)
        assert r.video_codec == "hevc" and r.decode_errors == 0, "new players get the new publisher"
        deadline = time.monotonic() + 5
        while first.alive():
            assert time.monotonic() < deadline, "the replaced publisher's connection should be closed"
            time.sleep(0.1)
        assert second.error is None
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_a_player_that_stops_reading_is_skipped_and_closed(rtmp_hub: RtmpHub,
                                                           media: Callable[[str], Path]) -> None:
    srv = rtmp_hub.srv
    pusher = FlvPusher(rtmp_hub.url("/live/slow"), media("h264")).start()
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    try:
        wait_live(srv, "/live/slow")
        stuck.settimeout(5)
        stuck.connect(("127.0.0.1", rtmp_hub.rtmp_port))
        client = Client()
        stuck.sendall(client.c0c1)
        answer = recv_exactly(stuck, 3073)
        stuck.sendall(client.c2(answer) + client.connect("live") + client.play_setup("slow"))
        watcher = RtmpWatcher(rtmp_hub.rtmp_port, "/live/slow").start()
        since = time.monotonic()
        time.sleep(4.0)
        watcher.assert_flowing(since, context=srv.log()[-3000:])
        watcher.stop()
        # Not drained for STUCK_SECONDS (10 s) after it fell behind: dropped.
        # Watched without reading, which would unstick it: only the
        # publisher's connection stays active.
        deadline = time.monotonic() + 40
        while srv.get_json("/api/v1/runtime")["rtmp"]["active"] > 1:
            assert time.monotonic() < deadline, srv.log()[-3000:]
            time.sleep(0.5)
        assert "has not drained" in srv.log()
        assert closed_by_server(stuck, 10.0), "the stuck RTMP player's connection is still open"
    finally:
        stuck.close()
        pusher.stop()
