"""A lightweight WHEP player for the benchmarks: many per process.

aiortc decodes on a thread of its own per player and gathers on every
interface; a load generator needs only what the server sees: a recvonly
offer POSTed to the WHEP URL, an ICE check with USE-CANDIDATE, a DTLS
client handshake (pyOpenSSL over a memory BIO), consent refreshes every
5 s, then SRTP datagrams counted — and, for a measuring player, decrypted
(pylibsrtp), depacketised and read for the send time the publisher stamped
into each frame (bench/_rtsp_client.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import struct
import time
import urllib.request
from typing import Callable

from OpenSSL import SSL
from pylibsrtp import Policy, Session

from hub.media.rtp import RtpPacket
from hub.media.rtp_h264 import H264Depacketizer
from hub.media.webrtc.dtls import DtlsCertificate, fingerprint_of
from hub.media.webrtc.stun import (ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
                                   BINDING_REQUEST, StunMessage)

CONSENT_EVERY = 5.0
_CERT: DtlsCertificate | None = None
_PROFILES = {b"SRTP_AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
             b"SRTP_AES128_CM_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14)}


def _context() -> tuple[SSL.Context, str]:
    global _CERT
    if _CERT is None:
        _CERT = DtlsCertificate.generate()
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.use_certificate(_CERT.cert)
    ctx.use_privatekey(_CERT.key)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    ctx.set_tlsext_use_srtp(b":".join(_PROFILES))
    return ctx, fingerprint_of(_CERT.cert)


_CTX: tuple[SSL.Context, str] | None = None


def offer_sdp(ufrag: str, pwd: str, fingerprint: str, profile: str = "640c1f") -> str:
    """A recvonly H.264 offer as a browser writes its essentials."""
    return "\r\n".join([
        "v=0", f"o=- {secrets.randbits(62)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 102", "c=IN IP4 0.0.0.0", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}",
        f"a=fingerprint:sha-256 {fingerprint}", "a=setup:actpass", "a=mid:0", "a=recvonly", "a=rtcp-mux",
        "a=rtpmap:102 H264/90000", "a=rtcp-fb:102 nack", "a=rtcp-fb:102 nack pli",
        f"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}", ""])


class WhepPlayer:
    """One player on its own UDP socket. `on_unit(au_data, receive_ns)` (if
    given) gets every access unit, decrypted and depacketised."""

    def __init__(self, url: str, on_unit: Callable[[bytes, int], None] | None = None) -> None:
        global _CTX
        if _CTX is None:
            _CTX = _context()
        self.url = url
        self.on_unit = on_unit
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(16)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.ssl = SSL.Connection(_CTX[0], None)
        self.ssl.set_connect_state()
        self.fingerprint = _CTX[1]
        self.server: tuple[str, int] = ("", 0)
        self.server_ufrag = self.server_pwd = ""
        self.location = ""
        self.bytes = 0
        self.packets = 0
        self.rx: Session | None = None
        self.depack = H264Depacketizer()
        self.checked = asyncio.get_running_loop().create_future()
        self.connected = asyncio.get_running_loop().create_future()
        self._buf = bytearray(2048)
        self._consent: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)

    async def start(self, timeout: float = 20.0) -> None:
        body = offer_sdp(self.ufrag, self.pwd, self.fingerprint).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/sdp"})

        def post() -> tuple[str, str]:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.read().decode(), r.headers["Location"]

        answer, self.location = await asyncio.to_thread(post)
        self.server_ufrag = re.search(r"a=ice-ufrag:(\S+)", answer).group(1)  # type: ignore[union-attr]
        self.server_pwd = re.search(r"a=ice-pwd:(\S+)", answer).group(1)  # type: ignore[union-attr]
        host, port = re.search(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", answer).groups()  # type: ignore[union-attr]
        self.server = (host, int(port))
        for _ in range(int(timeout / 0.2)):
            self._check(nominate=True)
            try:
                await asyncio.wait_for(asyncio.shield(self.checked), 0.2)
                break
            except asyncio.TimeoutError:
                pass
        await asyncio.wait_for(asyncio.shield(self.checked), 1)
        self._dtls_step()
        await asyncio.wait_for(self.connected, timeout)
        self._consent = asyncio.ensure_future(self._refresh())

    def _check(self, nominate: bool) -> None:
        attrs = [(ATTR_USERNAME, f"{self.server_ufrag}:{self.ufrag}".encode()),
                 (ATTR_PRIORITY, struct.pack(">I", 2130706431)), (ATTR_ICE_CONTROLLING, os.urandom(8))]
        if nominate:
            attrs.append((ATTR_USE_CANDIDATE, b""))
        msg = StunMessage(BINDING_REQUEST, os.urandom(12), attrs).encode(self.server_pwd.encode())
        try:
            self.sock.sendto(msg, self.server)
        except OSError:
            pass

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(CONSENT_EVERY)
            self._check(nominate=False)

    def _dtls_step(self, data: bytes = b"") -> None:
        if data:
            self.ssl.bio_write(data)
        try:
            self.ssl.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        try:
            out = self.ssl.bio_read(16384)
            self.sock.sendto(out, self.server)
        except (SSL.WantReadError, OSError):
            pass
        if done and self.rx is None:
            profile, k, s = _PROFILES[self.ssl.get_selected_srtp_profile()]
            m = self.ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (k + s))
            server_key = m[k:2 * k] + m[2 * k + s:]
            self.rx = Session(Policy(key=server_key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
            if not self.connected.done():
                self.connected.set_result(None)

    def _readable(self) -> None:
        recv = self.sock.recvfrom_into
        buf = self._buf
        for _ in range(64):
            try:
                n, _addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            b0 = buf[0]
            if b0 >= 128:
                self.bytes += n
                self.packets += 1
                if self.on_unit is not None and self.rx is not None and not 192 <= buf[1] <= 223:
                    self._media(bytes(buf[:n]))
            elif b0 < 4:
                if not self.checked.done():
                    self.checked.set_result(None)
            elif 20 <= b0 <= 63:
                self._dtls_step(bytes(buf[:n]))

    def _media(self, data: bytes) -> None:
        assert self.rx is not None and self.on_unit is not None
        now = time.monotonic_ns()
        try:
            plain = self.rx.unprotect(data)
        except Exception:
            return
        for au in self.depack.push(RtpPacket.parse(plain)):
            self.on_unit(au.data, now)

    def delete(self) -> None:
        """End the session on the server (blocking: call from a thread)."""
        if not self.location:
            return
        base = self.url.split("/streams/", 1)[0]
        try:
            urllib.request.urlopen(urllib.request.Request(base + self.location, method="DELETE"), timeout=5).close()
        except OSError:
            pass

    def close(self) -> None:
        if self._consent is not None:
            self._consent.cancel()
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, RuntimeError):
            pass
        self.sock.close()
