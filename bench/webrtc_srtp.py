"""What one WebRTC player costs on the send path, per packet and per player.

Measures, on one core, in this process:

- the shared work: packetising an access unit once per stream (H.264, FU-A
  at the WebRTC MTU of 1200 bytes);
- the per-player work: SRTP protect of each shared packet (AES-CM +
  HMAC-SHA1-80 and AEAD AES-128-GCM), through ``WebRtcPeer.send_rtp`` as the
  front will call it, with and without the payload-type rewrite;
- the kernel's share: one ``sendto`` of a 1,200-byte datagram on loopback,
  and one ``sendmsg`` with UDP GSO (``UDP_SEGMENT``) carrying a whole frame
  for one player;
- for comparison, what a full aiortc RTCPeerConnection per player does per
  frame on its send path: its own packetisation (``H264Encoder.pack``), an
  RtpPacket with header extensions serialised per packet, and SRTP.

Prints µs per packet, packets per second per core, and players per core at
a given bitrate. Usage: ``python bench/webrtc_srtp.py [--mbps 2] [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import time
from collections.abc import Callable

from _common import machine_note
from hub.media.access_unit import avcc_join
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.media.webrtc.dtls import DtlsCertificate, DtlsServer, SrtpKeys, srtp_profiles
from hub.media.webrtc.peer import PeerState, SendTrack, WebRtcPeer
from hub.media.webrtc.srtp import SrtpContext
from hub.media.webrtc.stream_out import MTU, WebRtcStreamOut

SPS = bytes.fromhex("6742c01e8c8d40")
PPS = bytes.fromhex("68ce3c80")
FPS = 25


def per_call(fn: Callable[[], object], seconds: float, rounds: int = 7) -> float:
    """Seconds per call of ``fn``: the best of ``rounds`` runs of about
    ``seconds`` / ``rounds`` each (the least disturbed by other load)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - t0
        if took >= seconds / rounds:
            break
        n = max(n * 2, int(n * seconds / rounds / max(took, 1e-6)))
    best = took / n
    for _ in range(rounds - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def keys(profile_index: int) -> SrtpKeys:
    p = srtp_profiles()[profile_index]
    size = p.key_length + p.salt_length
    return SrtpKeys(p, os.urandom(size), os.urandom(size))


def connected_peer(cert: DtlsCertificate, profile_index: int, pt: int, ssrc: int) -> WebRtcPeer:
    peer = WebRtcPeer("bench", local_ufrag="benc", local_pwd="p" * 24, remote_ufrag="cli1", remote_pwd="q" * 24,
                      dtls=DtlsServer(cert, [("sha-256", cert.fingerprint)]), now=0.0,
                      send_tracks=[SendTrack(0, "0", "video", "H264", pt, 90000, ssrc)])
    peer.srtp = SrtpContext(keys(profile_index))
    peer.selected = ("127.0.0.1", 9)
    peer.state = PeerState.CONNECTED
    return peer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mbps", type=float, default=2.0, help="stream bitrate for players-per-core")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = ap.parse_args()
    print(machine_note())
    frame = int(args.mbps * 1e6 / 8 / FPS)
    au = avcc_join([bytes([0x41, 0x9A]) + os.urandom(frame - 2)])
    desc = StreamDesc(1, "/bench", "ring", 1, "", [TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS)])
    out = WebRtcStreamOut(desc)
    pkts = out.packetize(0, au, 0)
    per_frame = len(pkts)
    pps_player = per_frame * FPS
    print(f"stream: {args.mbps} Mbit/s, {FPS} fps, {frame} B frames -> {per_frame} RTP packets "
          f"of <= {MTU} B, {pps_player} packets/s per player")

    t_pack = per_call(lambda: out.packetize(0, au, 0), args.seconds)
    print(f"shared   packetise one frame (once per stream): {t_pack * 1e6:8.1f} µs "
          f"({t_pack / per_frame * 1e6:.2f} µs/packet)")

    cert = DtlsCertificate.generate()
    pkt = pkts[0]
    for i, p in enumerate(srtp_profiles()):
        ctx = SrtpContext(keys(i))
        t = per_call(lambda: ctx.protect(pkt), args.seconds)  # noqa: B023 (called at once)
        print(f"player   SrtpContext.protect {p.openssl_name.decode():24s}: {t * 1e6:6.2f} µs/packet "
              f"= {1 / t:10,.0f} packets/s/core")
        for label, pt in (("same PT", 96), ("PT rewrite", 106)):
            peer = connected_peer(cert, i, pt, out.tracks[0].ssrc)
            t = per_call(lambda: peer.send_rtp(0, pkts), args.seconds) / per_frame  # noqa: B023
            print(f"player   WebRtcPeer.send_rtp {p.openssl_name.decode():24s} {label:10s}: {t * 1e6:6.2f} "
                  f"µs/packet = {1 / t:10,.0f} packets/s/core = {1 / (t * pps_player):6,.0f} players/core "
                  f"(encryption only)")

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    dest = sink.getsockname()
    protected = SrtpContext(keys(0)).protect(pkt)

    def send() -> None:
        try:
            tx.sendto(protected, dest)
        except BlockingIOError:
            pass

    t_send = per_call(send, args.seconds)
    print(f"kernel   sendto 1 datagram on loopback: {t_send * 1e6:6.2f} µs/packet")
    peer = connected_peer(cert, 0, 96, out.tracks[0].ssrc)
    t_enc = per_call(lambda: peer.send_rtp(0, pkts), args.seconds) / per_frame
    total = t_enc + t_send
    print(f"player   total (send_rtp + sendto): {total * 1e6:6.2f} µs/packet = "
          f"{1 / (total * pps_player):6,.0f} players/core at {args.mbps} Mbit/s (+ shared "
          f"{t_pack * FPS * 1e3:.2f} ms/s per stream)")

    # UDP GSO (Linux >= 4.18): one sendmsg per player per frame; the kernel
    # cuts the buffer into datagrams of the first packet's size.
    frame_wire = [d for d, _ in peer.send_rtp(0, pkts)]
    if len({len(d) for d in frame_wire[:-1]}) == 1 and len(frame_wire[-1]) <= len(frame_wire[0]):
        blob = b"".join(frame_wire)
        seg = [(socket.IPPROTO_UDP, 103, struct.pack("H", len(frame_wire[0])))]  # UDP_SEGMENT

        def send_gso() -> None:
            try:
                tx.sendmsg([blob], seg, 0, dest)
            except BlockingIOError:
                pass

        t_gso = per_call(send_gso, args.seconds)
        total = t_enc + t_gso / per_frame
        print(f"kernel   sendmsg with UDP_SEGMENT, {per_frame} datagrams at once: {t_gso * 1e6:6.2f} µs/frame "
              f"= {t_gso / per_frame * 1e6:.2f} µs/packet")
        print(f"player   total with GSO: {total * 1e6:6.2f} µs/packet = {1 / (total * pps_player):6,.0f} "
              f"players/core at {args.mbps} Mbit/s")

    try:
        aiortc_per_player(au, per_frame, pps_player, args.seconds)
    except ImportError:
        print("aiortc not installed: no comparison")


def aiortc_per_player(au: bytes, per_frame: int, pps_player: int, seconds: float) -> None:
    """The send path of one aiortc RTCRtpSender for a pre-encoded frame, per player."""
    import fractions

    import av
    from aiortc.codecs.h264 import H264Encoder
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    from hub.media.access_unit import avcc_to_annexb

    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]))
    encoder = H264Encoder()
    packet = av.Packet(avcc_to_annexb(au))
    packet.pts = 0
    packet.time_base = fractions.Fraction(1, 90000)
    ctx = SrtpContext(keys(1))

    def one_frame() -> None:
        payloads, ts = encoder.pack(packet)
        for i, payload in enumerate(payloads):
            p = RtpPacket(payload_type=96, sequence_number=i, timestamp=ts)
            p.ssrc = 1234
            p.payload = payload
            p.marker = i == len(payloads) - 1
            p.extensions.abs_send_time = int(time.time() * 65536) & 0xFFFFFF
            p.extensions.mid = "0"
            ctx.protect(p.serialize(ext_map))

    t = per_call(one_frame, seconds) / per_frame
    print(f"aiortc   per-player packetise + RtpPacket.serialize + protect: {t * 1e6:6.2f} µs/packet = "
          f"{1 / (t * pps_player):6,.0f} players/core (encryption side only, no asyncio per sender)")


if __name__ == "__main__":
    main()
