"""SRTP/SRTCP for one peer (RFC 3711), keyed from DTLS-SRTP, with pylibsrtp.

One :class:`SrtpContext` per peer: an outbound libsrtp session (any SSRC we
send) and an inbound one (any SSRC the peer sends). Protecting is the only
per-peer work on the send path: the RTP packets themselves are made once per
stream and shared.

Retransmissions (NACK answers) protect a packet index again; libsrtp refuses
that as a replay unless ``allow_repeat_tx`` is set, which is safe here: the
same index is encrypted with the same keystream over the same plaintext.
libsrtp also refuses an index older than its window on the sending side, so
the outbound window covers the whole retransmission buffer; an older one is
refused with ProtocolError like any packet that cannot be protected.

Inbound, libsrtp makes a stream (~400 bytes, and a link in the list it
searches for every packet) for each new SSRC that authenticates: the peer
holds the keys and could name a new SSRC in every packet (30,000 of them
made each later packet ~50x dearer for the whole process: 188 µs, not 3.6).
A peer's SSRCs are few (a track each, its RTCP sender's), so at most
:data:`MAX_REMOTE_SSRCS` are taken; a packet of another is refused before
libsrtp sees it.
"""

from __future__ import annotations

from hub.errors import ProtocolError

from .dtls import SrtpKeys

__all__ = ["SrtpContext", "MAX_SRTP_SIZE", "MAX_REMOTE_SSRCS"]

#: pylibsrtp works in a 1500-byte buffer; anything bigger is not ours to decrypt.
MAX_SRTP_SIZE = 1500 - 16
#: Replay window (packets) of both sessions: at least the retransmission
#: buffer of :mod:`hub.media.webrtc.stream_out`.
REPLAY_WINDOW = 1024
#: SSRCs a peer may send us with (RTP and RTCP together): a publisher's
#: tracks (and their RTX), a player's RTCP sender SSRCs, with room to spare.
MAX_REMOTE_SSRCS = 16


class SrtpContext:
    """Outbound and inbound SRTP sessions of one peer."""

    __slots__ = ("profile", "_tx", "_rx", "_error", "_ssrcs")

    def __init__(self, keys: SrtpKeys) -> None:
        # pylibsrtp on first use, as cryptography in .dtls
        import pylibsrtp
        from pylibsrtp import Policy, Session

        self._error = pylibsrtp.Error
        self.profile = keys.profile
        tx = Policy(key=keys.tx, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=keys.profile.libsrtp_id)
        tx.allow_repeat_tx = True
        tx.window_size = REPLAY_WINDOW
        rx = Policy(key=keys.rx, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=keys.profile.libsrtp_id)
        rx.window_size = REPLAY_WINDOW
        self._tx = Session(tx)
        self._rx = Session(rx)
        self._ssrcs: set[bytes] = set()  # the peer's SSRCs libsrtp has a stream for

    def protect(self, packet: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet (ours: well-formed, <= MTU);
        ProtocolError when libsrtp refuses it (an index too old to resend)."""
        try:
            return self._tx.protect(packet)
        except (self._error, ValueError) as exc:
            raise ProtocolError(f"SRTP protect: {exc}") from exc

    def protect_rtcp(self, packet: bytes) -> bytes:
        try:
            return self._tx.protect_rtcp(packet)
        except (self._error, ValueError) as exc:
            raise ProtocolError(f"SRTCP protect: {exc}") from exc

    def unprotect(self, packet: bytes) -> bytes:
        """Check and decrypt one SRTP packet from the peer; ProtocolError if it fails."""
        if len(packet) > MAX_SRTP_SIZE:
            raise ProtocolError("SRTP: packet too large")
        ssrc = self._admit(packet[8:12])
        try:
            plain = self._rx.unprotect(packet)
        except self._error as exc:
            raise ProtocolError(f"SRTP: {exc}") from exc
        self._ssrcs.add(ssrc)
        return plain

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        if len(packet) > MAX_SRTP_SIZE:
            raise ProtocolError("SRTCP: packet too large")
        ssrc = self._admit(packet[4:8])
        try:
            plain = self._rx.unprotect_rtcp(packet)
        except self._error as exc:
            raise ProtocolError(f"SRTCP: {exc}") from exc
        self._ssrcs.add(ssrc)
        return plain

    def _admit(self, ssrc: bytes) -> bytes:
        """The packet's SSRC, if libsrtp may make (or has) a stream for it;
        counted only once a packet of it authenticates."""
        if ssrc not in self._ssrcs and len(self._ssrcs) >= MAX_REMOTE_SSRCS:
            raise ProtocolError(f"SRTP: more than {MAX_REMOTE_SSRCS} SSRCs from one peer")
        return ssrc
