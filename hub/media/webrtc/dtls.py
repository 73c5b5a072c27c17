"""DTLS-SRTP server side (RFC 5763/5764) over memory BIOs, with pyOpenSSL.

We are always the DTLS server (``a=setup:passive`` in our answers): the peer
starts the handshake once ICE has a nominated pair. Records go in and out as
bytes; no socket is involved. One :class:`DtlsCertificate` (ECDSA P-256,
self-signed) is made per process and its SSL context is shared by every
session; the SDP answer carries its SHA-256 fingerprint. The peer's
certificate must match the fingerprint of its offer, or the session fails.

After the handshake the exported keying material gives the SRTP keys
(RFC 5764 4.2): client key, server key, client salt, server salt. We are the
server, so we send with the server half and receive with the client half.

OpenSSL keeps its own handshake retransmission clock (``DTLSv1_get_timeout``
reads the system time); :meth:`DtlsServer.handle_timer` only asks it to act.
That is the one clock this package does not own, and it matters only while a
handshake is in progress.
"""

from __future__ import annotations

import datetime
import enum
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.errors import ProtocolError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography, pyOpenSSL and pylibsrtp are imported where they are used,
# not with this module: they hold ~10 MB in every process that loads them,
# and a process that never serves WebRTC (most of them) need not.

__all__ = ["DtlsCertificate", "DtlsServer", "DtlsState", "SrtpProfile", "SrtpKeys",
           "srtp_profiles", "fingerprint_of", "MAX_FLIGHT"]

#: Digests accepted in an offer's a=fingerprint (RFC 8122); sha-1 is refused.
_DIGESTS = {"sha-256": "SHA256", "sha-384": "SHA384", "sha-512": "SHA512"}


def _digest(name: str) -> hashes.HashAlgorithm:
    from cryptography.hazmat.primitives import hashes

    algorithm: hashes.HashAlgorithm = getattr(hashes, _DIGESTS[name])()
    return algorithm
#: Bytes of DTLS output read at once; a whole server flight fits.
MAX_FLIGHT = 16384
#: Bytes of DTLS records fed before the handshake completes (bounded work
#: per session: a handshake needs ~2 KiB from the client).
MAX_HANDSHAKE_INPUT = 64 * 1024
_RECORD_HEADER = struct.Struct(">BHHIHH")  # type, version, epoch, seq (48 bits as 32+16), length


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """A DTLS-SRTP protection profile and the sizes of its keys."""

    openssl_name: bytes
    libsrtp_id: int
    key_length: int
    salt_length: int


def _profiles() -> tuple[SrtpProfile, ...]:
    from pylibsrtp import Policy

    # Server preference order: AES-GCM is the cheapest with AES-NI (see
    # docs/webrtc.md for the measurement); AES-CM + HMAC-SHA1-80 is the
    # mandatory-to-implement one every browser offers.
    return (
        SrtpProfile(b"SRTP_AEAD_AES_128_GCM", Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
        SrtpProfile(b"SRTP_AES128_CM_SHA1_80", Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    )


_srtp_profiles: tuple[SrtpProfile, ...] | None = None


def srtp_profiles() -> tuple[SrtpProfile, ...]:
    """The profiles we negotiate, best first (pylibsrtp loaded on first use)."""
    global _srtp_profiles
    if _srtp_profiles is None:
        _srtp_profiles = _profiles()
    return _srtp_profiles


def __getattr__(name: str) -> object:
    if name == "SRTP_PROFILES":  # the constant it was, made on first use
        return srtp_profiles()
    raise AttributeError(name)


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """Master key + salt for each direction, from our (the server's) side."""

    profile: SrtpProfile
    tx: bytes
    rx: bytes


def fingerprint_of(cert: x509.Certificate, algorithm: str = "sha-256") -> str:
    """``AB:CD:...`` as written in ``a=fingerprint``."""
    digest = cert.fingerprint(_digest(algorithm)).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class DtlsCertificate:
    """The process's DTLS identity: key, self-signed certificate, SSL context."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        from OpenSSL import SSL

        self.key = key
        self.cert = cert
        self.fingerprint = fingerprint_of(cert)
        ctx = SSL.Context(SSL.DTLS_METHOD)
        # No renegotiation: WebRTC never renegotiates, and each one would be a
        # new key exchange and signature for one datagram of a peer's
        # (OpenSSL 3 refuses a client's by default; this says so on 1.1.1 too).
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU | SSL.OP_NO_RENEGOTIATION)
        # Any certificate is accepted by OpenSSL; the fingerprint check
        # after the handshake is what authenticates the peer.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
        ctx.use_certificate(cert)
        ctx.use_privatekey(key)
        ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                            b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA")
        ctx.set_tlsext_use_srtp(b":".join(p.openssl_name for p in srtp_profiles()))
        self.context = ctx

    @classmethod
    def generate(cls, days: int = 30, now: datetime.datetime | None = None) -> DtlsCertificate:
        """A fresh ECDSA P-256 key and a self-signed certificate (once per process)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, secrets.token_hex(8))])
        start = (now or datetime.datetime.now(datetime.timezone.utc)) - datetime.timedelta(days=1)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days + 1))
                .sign(key, hashes.SHA256()))
        return cls(key, cert)


class CertificateOnDemand:
    """A process's DTLS certificate, made at its first use: making it at
    start woke OpenSSL in every process (~5 MB each) for a feature most
    servers never use. Call it for the certificate."""

    __slots__ = ("_cert",)

    def __init__(self) -> None:
        self._cert: DtlsCertificate | None = None

    def __call__(self) -> DtlsCertificate:
        if self._cert is None:
            self._cert = DtlsCertificate.generate()
        return self._cert


class DtlsState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


def split_records(data: bytes, mtu: int) -> list[bytes]:
    """Cut OpenSSL's output into datagrams of whole records, each <= ``mtu``
    when a record allows (a memory BIO does not keep datagram boundaries)."""
    out: list[bytes] = []
    start = pos = 0
    size = len(data)
    while pos < size:
        if size - pos < 13:
            pos = size
            break
        rec_len = _RECORD_HEADER.unpack_from(data, pos)[5]
        end = min(pos + 13 + rec_len, size)
        if end - start > mtu and pos > start:
            out.append(data[start:pos])
            start = pos
        pos = end
    if pos > start:
        out.append(data[start:pos])
    return out


class DtlsServer:
    """One peer's DTLS server session, fed datagrams, returning datagrams."""

    def __init__(self, cert: DtlsCertificate, remote_fingerprints: list[tuple[str, str]],
                 mtu: int = 1200) -> None:
        if not any(alg in _DIGESTS for alg, _ in remote_fingerprints):
            raise ProtocolError("DTLS: no usable a=fingerprint (sha-256/384/512)")
        self.remote_fingerprints = [(a, v.upper()) for a, v in remote_fingerprints if a in _DIGESTS]
        self.mtu = mtu
        self.state = DtlsState.CONNECTING
        self.keys: SrtpKeys | None = None
        self.failure = ""
        self.records_dropped = 0
        self._fed = 0
        from OpenSSL import SSL

        self._ssl = SSL.Connection(cert.context, None)
        self._ssl.set_ciphertext_mtu(mtu)
        self._ssl.set_accept_state()

    def receive(self, data: bytes) -> list[bytes]:
        """Feed one datagram of DTLS records; return datagrams to send back.

        Never raises for bad input: a broken handshake sets ``state`` to
        FAILED (and ``failure``); records after the handshake (no data
        channels are negotiated) are read and discarded.
        """
        from OpenSSL import SSL

        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return []
        was_connected = self.state is DtlsState.CONNECTED
        if self.state is DtlsState.CONNECTING:
            self._fed += len(data)
            if self._fed > MAX_HANDSHAKE_INPUT:
                return self._fail("handshake input over limit")
        try:
            self._ssl.bio_write(data)
            if self.state is DtlsState.CONNECTING:
                try:
                    self._ssl.do_handshake()
                except SSL.WantReadError:
                    return self._pending()
                out = self._pending()
                # A peer that fails the fingerprint check does not get our Finished.
                return out if self._established() else []
            while True:
                self._ssl.recv(MAX_FLIGHT)
        except SSL.WantReadError:
            return self._pending()
        except SSL.ZeroReturnError:
            self.state = DtlsState.CLOSED
            return self._pending()
        except SSL.Error as exc:
            if was_connected:
                # Anyone can send a datagram with the peer's source address: a
                # bad record after the handshake is dropped, never fatal.
                self.records_dropped += 1
                return []
            return self._fail(f"OpenSSL: {exc}")

    def handle_timer(self) -> list[bytes]:
        """Let OpenSSL retransmit its last flight when its timer ran out."""
        from OpenSSL import SSL

        if self.state is not DtlsState.CONNECTING:
            return []
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            return self._fail(f"OpenSSL timeout: {exc}")
        return self._pending()

    def timeout(self) -> float | None:
        """Seconds until OpenSSL wants :meth:`handle_timer`, None if never."""
        if self.state is not DtlsState.CONNECTING:
            return None
        return self._ssl.DTLSv1_get_timeout()

    def close(self) -> list[bytes]:
        """close_notify to send, if the session was up."""
        if self.state is not DtlsState.CONNECTED:
            self.state = DtlsState.CLOSED
            return []
        from OpenSSL import SSL

        self.state = DtlsState.CLOSED
        try:
            self._ssl.shutdown()
        except SSL.Error:
            return []
        return self._pending()

    # -- internals --------------------------------------------------------

    def _pending(self) -> list[bytes]:
        from OpenSSL import SSL

        try:
            data = self._ssl.bio_read(MAX_FLIGHT)
        except SSL.WantReadError:
            return []
        return split_records(data, self.mtu)

    def _fail(self, why: str) -> list[bytes]:
        self.state = DtlsState.FAILED
        self.failure = why
        return []

    def _established(self) -> bool:
        """Check the peer's certificate, derive the SRTP keys; False if failed."""
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            self._fail("peer sent no certificate")
            return False
        if not any(fingerprint_of(cert, alg) == value for alg, value in self.remote_fingerprints):
            self._fail("peer certificate does not match the offer's fingerprint")
            return False
        name = self._ssl.get_selected_srtp_profile()
        profile = next((p for p in srtp_profiles() if p.openssl_name == name), None)
        if profile is None:
            self._fail("no SRTP profile negotiated")
            return False
        k, s = profile.key_length, profile.salt_length
        m = self._ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (k + s))
        client = m[:k] + m[2 * k:2 * k + s]
        server = m[k:2 * k] + m[2 * k + s:2 * k + 2 * s]
        self.keys = SrtpKeys(profile, tx=server, rx=client)
        self.state = DtlsState.CONNECTED
        return True
