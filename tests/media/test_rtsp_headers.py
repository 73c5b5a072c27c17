"""One parser/formatter per RTSP header: every field, exact strings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.rtsp.general import ContentBase, CSeq, Public
from hub.media.rtsp.range import RangeHeader
from hub.media.rtsp.rtpinfo import RtpInfo, RtpInfoEntry
from hub.media.rtsp.session import SessionHeader
from hub.media.rtsp.transport import Transport, TransportSpec


def test_transport_ffmpeg_record_tcp() -> None:
    text = "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"
    [spec] = Transport.parse(text).specs
    assert spec == TransportSpec(protocol="RTP/AVP/TCP", delivery="unicast", interleaved=(0, 1), mode="RECORD")
    assert spec.is_tcp and spec.is_record and not spec.is_multicast
    assert str(spec) == text


def test_transport_vlc_offer_list_and_server_answer() -> None:
    offer = Transport.parse("RTP/AVP;unicast;client_port=58060-58061, RTP/AVP/TCP;unicast;interleaved=0-1")
    assert [s.protocol for s in offer.specs] == ["RTP/AVP", "RTP/AVP/TCP"]
    assert offer.specs[0].client_port == (58060, 58061) and not offer.specs[0].is_tcp
    assert str(offer) == "RTP/AVP;unicast;client_port=58060-58061,RTP/AVP/TCP;unicast;interleaved=0-1"
    answer = "RTP/AVP;unicast;client_port=58060-58061;server_port=30000-30001;ssrc=0A1B2C3D"
    spec = TransportSpec.parse(answer)
    assert spec.server_port == (30000, 30001) and spec.ssrc == 0x0A1B2C3D
    assert str(spec) == answer


def test_transport_multicast_quoted_mode_and_extras() -> None:
    spec = TransportSpec.parse(
        'RTP/AVP/UDP;multicast;destination=224.2.0.1;source=10.0.0.5;ttl=16;port=3456;'
        'mode="PLAY";ssrc=ab;append;x-foo=bar')
    assert spec.delivery == "multicast" and spec.is_multicast
    assert (spec.destination, spec.source, spec.ttl) == ("224.2.0.1", "10.0.0.5", 16)
    assert spec.port == (3456, 3457)  # a single port means the RTP/RTCP pair
    assert spec.mode == "PLAY" and spec.ssrc == 0xAB
    assert spec.extra == [("append", None), ("x-foo", "bar")]
    assert str(spec) == ("RTP/AVP/UDP;multicast;destination=224.2.0.1;source=10.0.0.5;ttl=16;"
                         "port=3456-3457;ssrc=000000AB;mode=play;append;x-foo=bar")


def test_transport_mode_case_and_single_channel() -> None:
    spec = TransportSpec.parse("rtp/avp/tcp;interleaved=4;Mode=Record")
    assert spec.is_tcp and spec.interleaved == (4, 5) and spec.mode == "RECORD" and spec.delivery is None
    assert str(spec) == "rtp/avp/tcp;interleaved=4-5;mode=record"


@pytest.mark.parametrize("text", [
    "", "RAW/RAW/UDP;unicast", "RTP/AVP;client_port=70000-70001", "RTP/AVP;interleaved=0-256",
    "RTP/AVP;ttl=x", "RTP/AVP;mode=teardown", 'RTP/AVP;mode="PLAY', "RTP/AVP;ssrc=123456789",
    "RTP/AVP;client_port=-", "RTP/AVP/TCP;interleaved=255", "RTP/AVP;client_port=65535",
])
def test_transport_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        Transport.parse(text)


def test_session_header() -> None:
    s = SessionHeader.parse("12345678;timeout=60")
    assert (s.id, s.timeout) == ("12345678", 60)
    assert str(s) == "12345678;timeout=60"
    assert SessionHeader.parse(" 7F2a-b_c ").id == "7F2a-b_c"
    assert str(SessionHeader("abc")) == "abc"
    for bad in ("", "a b", "abc;timeout=x", "é", "abc;timeout=-1"):
        with pytest.raises(ProtocolError):
            SessionHeader.parse(bad)


def test_rtp_info() -> None:
    text = ("url=rtsp://h/live/a/trackID=0;seq=17432;rtptime=1463513466,"
            "url=rtsp://h/live/a/trackID=1;seq=9810;rtptime=2305841")
    info = RtpInfo.parse(text)
    assert info.entries == [RtpInfoEntry("rtsp://h/live/a/trackID=0", 17432, 1463513466),
                            RtpInfoEntry("rtsp://h/live/a/trackID=1", 9810, 2305841)]
    assert str(info) == text
    # A comma and a bare ";" inside the URL stay part of it.
    odd = RtpInfo.parse("url=rtsp://h/a,b;x;seq=1")
    assert odd.entries == [RtpInfoEntry("rtsp://h/a,b;x", 1, None)]
    assert str(RtpInfo([RtpInfoEntry("rtsp://h/s", rtptime=0)])) == "url=rtsp://h/s;rtptime=0"
    for bad in ("", "seq=1", "url=rtsp://h/s;seq=70000", "url=rtsp://h/s;rtptime=x"):
        with pytest.raises(ProtocolError):
            RtpInfo.parse(bad)


@pytest.mark.parametrize("text, start, end, seconds", [
    ("npt=0.000-", "0.000", None, (0.0, None)),
    ("npt=now-", "now", None, (None, None)),
    ("npt=10-20.5", "10", "20.5", (10.0, 20.5)),
    ("npt=1:02:03.5-", "1:02:03.5", None, (3723.5, None)),
    ("npt=-30", "", "30", (None, 30.0)),
])
def test_range_npt(text: str, start: str, end: str | None, seconds: tuple[float | None, float | None]) -> None:
    r = RangeHeader.parse(text)
    assert (r.unit, r.start, r.end, r.time) == ("npt", start, end, None)
    assert (r.start_seconds, r.end_seconds) == seconds
    assert str(r) == text


def test_range_clock_and_time_and_builder() -> None:
    r = RangeHeader.parse("clock=19961108T142300Z-19961108T143520Z;time=19970123T143720Z")
    assert (r.unit, r.start, r.end, r.time) == ("clock", "19961108T142300Z", "19961108T143520Z",
                                                "19970123T143720Z")
    assert r.start_seconds is None
    assert str(r) == "clock=19961108T142300Z-19961108T143520Z;time=19970123T143720Z"
    assert str(RangeHeader.npt(1.5)) == "npt=1.500-"
    assert str(RangeHeader.npt(0, 12.25)) == "npt=0.000-12.250"
    for bad in ("", "npt=", "npt=5", "foo=1-", "npt=a-", "npt=1:99:00-", "npt=-"):
        with pytest.raises(ProtocolError):
            RangeHeader.parse(bad)


def test_cseq_content_base_public() -> None:
    assert CSeq.parse(" 42 ").value == 42 and str(CSeq(42)) == "42"
    for bad in ("", "-1", "1.0", "4294967296"):
        with pytest.raises(ProtocolError):
            CSeq.parse(bad)
    base = ContentBase.parse("rtsp://192.168.1.64:554/Streaming/Channels/101/")
    assert str(base) == "rtsp://192.168.1.64:554/Streaming/Channels/101/"
    with pytest.raises(ProtocolError):
        ContentBase.parse("rtsp://a b")
    text = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN"
    pub = Public.parse(text)
    assert pub.methods[:2] == ["OPTIONS", "DESCRIBE"] and len(pub.methods) == 8
    assert "record" in pub and "GET_PARAMETER" not in pub
    assert str(pub) == text


@given(st.text(max_size=80))
def test_header_parsers_raise_only_protocol_error(text: str) -> None:
    for parse in (Transport.parse, SessionHeader.parse, RtpInfo.parse, RangeHeader.parse,
                  CSeq.parse, ContentBase.parse, Public.parse):
        try:
            parse(text)
        except ProtocolError:
            pass
