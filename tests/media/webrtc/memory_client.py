"""An in-memory WebRTC client for sans-IO tests: STUN checks, a pyOpenSSL DTLS
client over memory BIOs and pylibsrtp, driving a WebRtcMux without sockets
or clocks. A test peer, written from the RFCs, independent of the engine's
DTLS and SRTP code paths (it only shares the STUN codec to build requests).
"""

from __future__ import annotations

import os
import secrets
import struct

from OpenSSL import SSL
from pylibsrtp import Policy, Session

from hub.media.webrtc.dtls import DtlsCertificate, fingerprint_of
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.offer import WebRtcOffer
from hub.media.webrtc.stun import (ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
                                   BINDING_REQUEST, StunMessage, binding_success)


class MemoryClient:
    def __init__(self, addr: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.addr = addr
        self.ufrag = secrets.token_hex(2)
        self.pwd = secrets.token_hex(12)
        self.cert = DtlsCertificate.generate()
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(self.cert.cert)
        ctx.use_privatekey(self.cert.key)
        ctx.set_verify(SSL.VERIFY_PEER, lambda *_: True)
        ctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
        self.ssl = SSL.Connection(ctx, None)
        self.ssl.set_connect_state()
        self.tx: Session | None = None
        self.rx: Session | None = None
        self.server_fingerprint = ""

    def offer(self) -> WebRtcOffer:
        return WebRtcOffer(self.ufrag, self.pwd, [("sha-256", fingerprint_of(self.cert.cert))],
                           "actpass", ["0"], [])

    def check(self, server_ufrag: str, server_pwd: str, nominate: bool = True) -> bytes:
        attrs = [(ATTR_USERNAME, f"{server_ufrag}:{self.ufrag}".encode()),
                 (ATTR_PRIORITY, struct.pack(">I", 1853759231)),
                 (ATTR_ICE_CONTROLLING, os.urandom(8))]
        if nominate:
            attrs.append((ATTR_USE_CANDIDATE, b""))
        return StunMessage(BINDING_REQUEST, os.urandom(12), attrs).encode(server_pwd.encode())

    def answers(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[bytes]:
        """Binding successes for the server's own requests among ``datagrams``
        (its consent checks), as a full ICE agent answers them."""
        out = []
        for d, addr in datagrams:
            if d and d[0] < 4:
                msg = StunMessage.parse(d)
                if (msg.msg_type == BINDING_REQUEST and (msg.username or "").startswith(f"{self.ufrag}:")
                        and msg.check_integrity(self.pwd.encode())):
                    out.append(binding_success(msg, addr[0], addr[1], self.pwd.encode()))
        return out

    def refresh(self, mux: WebRtcMux, server_ufrag: str, server_pwd: str, now: float,
                addr: tuple[str, int] | None = None, nominate: bool = False) -> list[tuple[bytes, tuple[str, int]]]:
        """A check from ``addr`` (ours by default), and the answers to the
        requests the server sends back: what keeps consent fresh."""
        addr = addr or self.addr
        replies = mux.receive(self.check(server_ufrag, server_pwd, nominate), addr, now)
        for answer in self.answers([r for r in replies if r[1] == addr]):
            mux.receive(answer, addr, now)
        return replies

    def dtls_out(self) -> list[bytes]:
        try:
            data = self.ssl.bio_read(16384)
        except SSL.WantReadError:
            return []
        return [data]

    def dtls_step(self, incoming: list[bytes]) -> list[bytes]:
        for d in incoming:
            self.ssl.bio_write(d)
        try:
            self.ssl.do_handshake()
        except SSL.WantReadError:
            return self.dtls_out()
        out = self.dtls_out()
        if self.tx is None:
            m = self.ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
            client = m[:16] + m[32:46]
            server = m[16:32] + m[46:60]
            self.tx = Session(Policy(key=client, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                     srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
            self.rx = Session(Policy(key=server, ssrc_type=Policy.SSRC_ANY_INBOUND,
                                     srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
        return out

    def connect(self, mux: WebRtcMux, server_ufrag: str, server_pwd: str, now: float) -> None:
        """ICE check, then DTLS until both sides have keys (bounded rounds)."""
        replies = mux.receive(self.check(server_ufrag, server_pwd), self.addr, now)
        assert replies and StunMessage.parse(replies[0][0]).check_integrity(server_pwd.encode())
        for answer in self.answers(replies):  # the server's own check: media may come here
            mux.receive(answer, self.addr, now)
        to_server = self.dtls_step([])
        for _ in range(10):
            to_client: list[bytes] = []
            for d in to_server:
                to_client += [data for data, addr in mux.receive(d, self.addr, now) if addr == self.addr]
            to_server = self.dtls_step(to_client)
            if self.tx is not None and not to_server:
                return
        raise AssertionError("DTLS did not complete")
