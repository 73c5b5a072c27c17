"""UDP flood: what a stranger's (or a player's own) datagram flood costs the server.

    python bench/udp_flood.py [--seconds 10] [--target publisher|player|webrtc|all]

An RTSP session over UDP holds a port pair of the server's. Anyone can
send datagrams to those ports; what matters is what reading them costs the
process that owns them, since every other stream and player of that
process shares its loop. On one server (1 shard + 1 front):

- `publisher`: a publisher over UDP (a raw one here: ANNOUNCE of one G.711
  track, SETUP with `client_port`, RECORD, then 50 packets a second from
  its declared RTP port); a flooder process sends 172-byte datagrams from
  another port to the shard's RTP port as fast as it can.
- `player`: a player over UDP of that stream (DESCRIBE, SETUP with
  `client_port`, PLAY); the flooder sends from the player's own declared
  RTCP port (a player flooding its own session) to the front's RTCP port.
- `webrtc`: the front's WebRTC UDP port, which every WHEP session shares
  and anyone can find (`webrtc.udp_port`), flooded by a stranger.

Printed per target: the datagrams the flooder sent a second, and the CPU
(% of one core) of the process that owns the port (shard or front) over
`--seconds` without the flood and with it. The flooder takes a core of its
own, so on a 2-core machine the figures are each process's own CPU time,
not the machine's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, HubTree, Procs, machine_note, report_leftovers  # noqa: E402

SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=control:trackID=0\r\n"


def rtsp(sock: socket.socket, method: str, url: str, cseq: int, *headers: str, body: str = "") -> dict[str, str]:
    head = f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n" + "".join(h + "\r\n" for h in headers)
    if body:
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
    sock.sendall((head + "\r\n" + body).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"{method}: connection closed")
        data += chunk
    head_text, _, rest = data.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    if " 200 " not in lines[0] + " ":
        raise SystemExit(f"{method} {url}: {lines[0]}")
    out = {"status": lines[0]}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    length = int(out.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    out["body"] = rest[:length].decode(errors="replace")
    return out


def free_udp_port() -> int:
    """An even UDP port free now, whose next is free too (the front's; the shard's is the next)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind((HOST, 0))
            port = int(a.getsockname()[1]) & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind((HOST, port))
                b.bind((HOST, port + 1))
            return port
        except OSError:
            continue
    raise SystemExit("no free UDP port pair")


def server_ports(transport: str) -> tuple[int, int]:
    for part in transport.split(";"):
        if part.startswith("server_port="):
            a, b = part.split("=", 1)[1].split("-")
            return int(a), int(b)
    raise SystemExit(f"no server_port in {transport!r}")


def flood(source: tuple[str, int], dest: tuple[str, int], seconds: float, sent: Any) -> None:
    """Send from `source` to `dest` as fast as one process can; the count into `sent` (a shared Value)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(source)
    payload = bytes(172)
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(256):
            try:
                s.sendto(payload, dest)
                n += 1
            except OSError:
                pass  # ICMP port unreachable reported on the socket: go on
    sent.value = n


def cpu(proc: psutil.Process, seconds: float) -> float:
    """`proc`'s CPU over the next `seconds`, % of one core."""
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    return 100.0 * float((t1.user + t1.system) - (t0.user + t0.system)) / seconds


def measure(name: str, owner: psutil.Process, source: tuple[str, int], dest: tuple[str, int], seconds: float) -> None:
    quiet = cpu(owner, seconds)
    sent = multiprocessing.Value("q", 0)
    p = multiprocessing.Process(target=flood, args=(source, dest, seconds + 1.0, sent))
    p.start()
    time.sleep(0.5)
    loud = cpu(owner, seconds)
    p.join()
    rate = sent.value / (seconds + 1.0)
    print(f"{name:10s} flooder {rate / 1000:7.1f} k datagrams/s   owner's CPU: quiet {quiet:5.2f} %, "
          f"flooded {loud:5.2f} %", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--target", choices=("publisher", "player", "webrtc", "all"), default="all")
    args = ap.parse_args()
    print(machine_note(), flush=True)
    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="udp-flood-") as tmp:
        webrtc_port = free_udp_port()
        tree = procs.add(HubTree(Path(tmp), shards=1, fronts=1, extra=("--webrtc-udp-port", str(webrtc_port))))
        stop = threading.Event()
        try:
            tree.wait_ready()
            kids = tree.children()
            url = f"rtsp://{HOST}:{tree.port}/live/flood"
            # The publisher: its declared ports, then RTP at 50 packets a second.
            rtp_out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtp_out.bind((HOST, 0))
            rtcp_out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp_out.bind((HOST, 0))
            ctl = socket.create_connection((HOST, tree.port), timeout=5)
            rtsp(ctl, "ANNOUNCE", url, 1, body=SDP)
            ports = f"{rtp_out.getsockname()[1]}-{rtcp_out.getsockname()[1]}"
            r = rtsp(ctl, "SETUP", f"{url}/trackID=0", 2,
                     f"Transport: RTP/AVP;unicast;client_port={ports};mode=record")
            session = r["session"].split(";")[0]
            pub_rtp, _ = server_ports(r["transport"])
            rtsp(ctl, "RECORD", url, 3, f"Session: {session}")

            def send_media() -> None:
                seq = ts = 0
                while not stop.is_set():
                    packet = bytes((0x80, 8)) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + b"\x01\x02\x03\x04"
                    rtp_out.sendto(packet + bytes(160), (HOST, pub_rtp))
                    seq = (seq + 1) & 0xFFFF
                    ts = (ts + 160) & 0xFFFFFFFF
                    time.sleep(0.02)

            threading.Thread(target=send_media, daemon=True).start()
            time.sleep(1.0)
            if args.target in ("publisher", "all"):
                measure("publisher", kids["shard-0"], (HOST, 0), (HOST, pub_rtp), args.seconds)
            if args.target in ("player", "all"):
                p_rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                p_rtp.bind((HOST, 0))
                p_rtcp_port = p_rtp.getsockname()[1] + 1
                play = socket.create_connection((HOST, tree.port), timeout=5)
                rtsp(play, "DESCRIBE", url, 1, "Accept: application/sdp")
                r = rtsp(play, "SETUP", f"{url}/trackID=0", 2,
                         f"Transport: RTP/AVP;unicast;client_port={p_rtp.getsockname()[1]}-{p_rtcp_port}")
                _, srv_rtcp = server_ports(r["transport"])
                rtsp(play, "PLAY", url, 3, f"Session: {r['session'].split(';')[0]}")
                measure("player", kids["front-0"], (HOST, p_rtcp_port), (HOST, srv_rtcp), args.seconds)
                play.close()
                p_rtp.close()
            if args.target in ("webrtc", "all"):
                measure("webrtc", kids["front-0"], (HOST, 0), (HOST, webrtc_port), args.seconds)  # front i: port + i
            ctl.close()
        finally:
            stop.set()
            report_leftovers(procs.stop_all())


if __name__ == "__main__":
    main()
