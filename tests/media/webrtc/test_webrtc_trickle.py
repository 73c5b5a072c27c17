"""Trickle ICE fragments (RFC 8840) and the DELETE/PATCH verdicts of RFC 9725."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.webrtc.trickle import MAX_FRAGMENT_LINES, TrickleFragment, parse_sdpfrag, session_request

# RFC 8840 section 4.4's example fragment (CRLF lines), as a browser PATCHes it.
RFC8840 = (b"a=ice-ufrag:EsAw\r\n"
           b"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
           b"m=audio 9 RTP/AVP 0\r\n"
           b"a=mid:1\r\n"
           b"a=candidate:1 1 UDP 2130706431 10.0.1.17 8998 typ host\r\n"
           b"a=candidate:2 1 UDP 1694498815 192.0.2.33 45664 typ srflx raddr 10.0.1.17 rport 8998\r\n"
           b"a=end-of-candidates\r\n")


def test_rfc8840_fragment_every_field() -> None:
    frag = parse_sdpfrag(RFC8840)
    assert frag == TrickleFragment("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1", 2, True, ("1",))
    assert frag.restarts_ice("EsAw") is False
    assert frag.restarts_ice("Other") is True


def test_candidates_only_with_lf_lines_and_str() -> None:
    text = "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\na=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\n"
    frag = parse_sdpfrag(text)
    assert frag == TrickleFragment(None, None, 1, False, ("0",))
    assert not frag.restarts_ice("EsAw")  # no credentials: never a restart


def test_empty_fragment_is_nothing() -> None:
    assert parse_sdpfrag(b"") == TrickleFragment(None, None, 0, False, ())


@pytest.mark.parametrize("body", [
    b"a=ice-ufrag:EsAw\r\n",                              # ufrag without pwd
    b"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",            # pwd without ufrag
    b"a=ice-ufrag:Es Aw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",   # bad ICE characters
    b"not sdp\r\n",
    b"A=candidate:1\r\n",
    b"a=mid:\xff\r\n",                                    # not UTF-8
    b"a=candidate:1\tx\r\n",                              # control character
])
def test_bad_fragments_raise_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_sdpfrag(body)


def test_too_many_lines() -> None:
    ok = b"a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n" * MAX_FRAGMENT_LINES
    assert parse_sdpfrag(ok).candidates == MAX_FRAGMENT_LINES
    with pytest.raises(ProtocolError):
        parse_sdpfrag(ok + b"a=end-of-candidates\r\n")


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_input_parses_or_raises_protocol_error(data: bytes) -> None:
    try:
        parse_sdpfrag(data)
    except ProtocolError:
        pass


@pytest.mark.parametrize("op, if_match, ufrag, verdict", [
    ("delete", None, None, "delete"),
    ("delete", '"e1"', None, "delete"),
    ("delete", '"other"', None, "precondition"),
    ("delete", "*", None, "delete"),
    ("patch", None, None, "trickle"),              # candidates only, no If-Match (lenient)
    ("patch", '"e1"', None, "trickle"),
    ("patch", '"e1"', "Rmt1", "trickle"),         # the session's own credentials again
    ("patch", '"other"', None, "precondition"),
    ("patch", "*", "NewU", "restart"),            # RFC 9725: a restart is If-Match: *
    ("patch", '"e1"', "NewU", "restart"),         # new credentials are a restart anyhow
])
def test_session_request_verdicts(op: str, if_match: str | None, ufrag: str | None, verdict: str) -> None:
    assert session_request('"e1"', "Rmt1", op, if_match, ufrag) == verdict
