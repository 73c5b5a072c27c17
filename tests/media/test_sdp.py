"""SDP: real FFmpeg descriptions and a camera's, every field, round trips,
generation and the codec fmtp helpers. Expected base64/hex strings were
produced with coreutils base64/xxd, not with the code under test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.sdp import (
    AacParams, RtpMap, Sdp, SdpMedia, aac_fmtp, aac_params, h264_fmtp, h264_parameter_sets,
    h265_fmtp, h265_parameter_sets, parse_fmtp, resolve_control,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def text_of(name: str) -> str:
    return (DATA / name).read_bytes().decode()


def test_ffmpeg_h264_aac_announce() -> None:
    """FFmpeg 5 (Lavf59) ANNOUNCE body, captured from `-f rtsp`."""
    text = text_of("sdp_ffmpeg_h264_aac.txt")
    sdp = Sdp.parse(text)
    assert sdp.version == 0
    assert sdp.origin == "- 0 0 IN IP4 127.0.0.1"
    assert sdp.session_name == "No Name"
    assert sdp.connection == "IN IP4 127.0.0.1"
    assert sdp.timing == "0 0"
    assert sdp.attributes == [("tool", "libavformat LIBAVFORMAT_VERSION")]
    assert sdp.control is None and sdp.range is None
    video, audio = sdp.media
    assert (video.media, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["96"])
    assert video.payload_type == 96
    assert video.rtpmap == RtpMap(96, "H264", 90000, None)
    assert (video.encoding_name, video.clock_rate, video.channels) == ("H264", 90000, None)
    assert video.fmtp == {"packetization-mode": "1",
                          "sprop-parameter-sets": "Z2QADayyAoP2AiAAAAMAIAAABkHihUk=,aOvDyyLA",
                          "profile-level-id": "64000D"}
    assert video.control == "streamid=0"
    assert video.connection is None and video.bandwidth == []
    sets = h264_parameter_sets(video.fmtp)
    assert sets == (bytes.fromhex("6764000dacb20283f60220000003002000000641e28549"),
                    bytes.fromhex("68ebc3cb22c0"))
    assert (audio.media, audio.payload_type, audio.bandwidth) == ("audio", 97, ["AS:64"])
    assert audio.rtpmap == RtpMap(97, "MPEG4-GENERIC", 44100, 2)
    assert list(audio.fmtp) == ["profile-level-id", "mode", "sizelength", "indexlength",
                                "indexdeltalength", "config"]
    assert aac_params(audio.fmtp) == AacParams(bytes.fromhex("121056e500"), "AAC-hbr", 13, 3, 3)
    assert audio.control == "streamid=1"
    assert str(sdp) == text
    assert bytes(sdp) == (DATA / "sdp_ffmpeg_h264_aac.txt").read_bytes()


def test_ffmpeg_h265_announce() -> None:
    text = text_of("sdp_ffmpeg_h265.txt")
    sdp = Sdp.parse(text)
    [video] = sdp.media
    assert video.rtpmap == RtpMap(96, "H265", 90000, None)
    vps, sps, pps = h265_parameter_sets(video.fmtp) or (b"", b"", b"")
    assert (vps[:2], sps[:2], pps) == (b"\x40\x01", b"\x42\x01", bytes.fromhex("4401c172860c4624"))
    assert str(sdp) == text


def test_camera_h265_describe() -> None:
    """A Hikvision-style DESCRIBE answer: absolute controls, e=, b=, c= per
    media, PCMA on static PT 8, vendor attributes."""
    text = text_of("sdp_camera_h265.txt")
    sdp = Sdp.parse(text)
    assert sdp.origin == "- 1700000000000000 1700000000000000 IN IP4 192.168.1.64"
    assert sdp.session_name == "Media Presentation"
    assert sdp.extra == [("e", "NONE")]
    assert sdp.bandwidth == ["AS:5100"]
    assert sdp.connection is None and sdp.timing == "0 0"
    assert sdp.control == "rtsp://192.168.1.64:554/Streaming/Channels/101/"
    video, audio = sdp.media
    assert video.connection == "IN IP4 0.0.0.0" and video.bandwidth == ["AS:5000"]
    assert video.attribute("recvonly") == "" and video.attribute("sendonly") is None
    assert video.attribute("x-dimensions") == "2560,1440"
    assert video.control == "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1"
    assert (video.encoding_name, video.clock_rate) == ("H265", 90000)
    assert list(video.fmtp) == ["sprop-sps", "sprop-pps", "sprop-vps"]
    assert h265_parameter_sets(video.fmtp) == tuple(
        (DATA / f"flv_x265_{k}.bin").read_bytes() for k in ("vps", "sps", "pps"))
    assert video.attribute("Media_header") == ("MEDIAINFO=494D4B4801030000040005000000000000000000"
                                               "0000000000000000000000000000000000000000;")
    assert (audio.payload_type, audio.rtpmap) == (8, RtpMap(8, "PCMA", 8000, None))
    assert audio.fmtp == {}
    base = "rtsp://192.168.1.64:554/Streaming/Channels/101/"
    assert resolve_control(base, audio.control) == base + "trackID=2"
    assert str(sdp) == text


def test_generate_from_scratch() -> None:
    sps = (DATA / "flv_x264_high_sps.bin").read_bytes()
    pps = (DATA / "flv_x264_high_pps.bin").read_bytes()
    video = SdpMedia("video", 0, "RTP/AVP", ["96"])
    video.set_attribute("rtpmap", "96 H264/90000")
    video.set_attribute("fmtp", "96 " + h264_fmtp(sps, pps))
    video.set_attribute("control", "trackID=0")
    audio = SdpMedia("audio", 0, "RTP/AVP", ["97"], bandwidth=["AS:128"])
    audio.set_attribute("rtpmap", "97 MPEG4-GENERIC/48000/2")
    audio.set_attribute("fmtp", "97 " + aac_fmtp(bytes.fromhex("1190")))
    audio.set_attribute("control", "trackID=1")
    sdp = Sdp(origin="- 1 1 IN IP4 0.0.0.0", session_name="live/a", connection="IN IP4 0.0.0.0",
              media=[video, audio])
    sdp.set_attribute("control", "*")
    sdp.set_attribute("range", "npt=now-")
    sdp.set_attribute("control", "*")  # replaced, not duplicated
    expected = ("v=0\r\n"
                "o=- 1 1 IN IP4 0.0.0.0\r\n"
                "s=live/a\r\n"
                "c=IN IP4 0.0.0.0\r\n"
                "t=0 0\r\n"
                "a=control:*\r\n"
                "a=range:npt=now-\r\n"
                "m=video 0 RTP/AVP 96\r\n"
                "a=rtpmap:96 H264/90000\r\n"
                "a=fmtp:96 packetization-mode=1;profile-level-id=64000A;"
                "sprop-parameter-sets=Z2QACqzZRCaEAAADAAQAAAMAyDxIllg=,aO+Pyw==\r\n"
                "a=control:trackID=0\r\n"
                "m=audio 0 RTP/AVP 97\r\n"
                "b=AS:128\r\n"
                "a=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
                "a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;"
                "indexdeltalength=3;config=1190\r\n"
                "a=control:trackID=1\r\n")
    assert str(sdp) == expected
    back = Sdp.parse(expected)
    assert back == sdp
    assert h264_parameter_sets(back.media[0].fmtp) == (sps, pps)
    assert aac_params(back.media[1].fmtp).config == b"\x11\x90"
    assert back.range == "npt=now-" and back.control == "*"


def test_h265_fmtp_helper() -> None:
    vps, sps, pps = ((DATA / f"flv_x265_{k}.bin").read_bytes() for k in ("vps", "sps", "pps"))
    text = h265_fmtp(vps, sps, pps)
    assert text == ("sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwAelZQJ;"
                    "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwAeoCCBBZZWVKTC5oCAAAADAIAAAAyE;sprop-pps=RAHAc8CJ")
    assert h265_parameter_sets(parse_fmtp(text)) == (vps, sps, pps)


def test_fmtp_edge_cases() -> None:
    assert parse_fmtp("Packetization-Mode=1; ; flag;x=a=b") == {"packetization-mode": "1", "flag": "",
                                                                 "x": "a=b"}
    assert h264_parameter_sets({}) is None
    assert h264_parameter_sets({"sprop-parameter-sets": "aOvDyyLA"}) is None  # PPS only
    # Missing base64 padding, as some cameras send it.
    assert h264_parameter_sets({"sprop-parameter-sets": "Z2QACqzZRCaEAAADAAQAAAMAyDxIllg,aO+Pyw"}) == (
        (DATA / "flv_x264_high_sps.bin").read_bytes(), (DATA / "flv_x264_high_pps.bin").read_bytes())
    assert h265_parameter_sets({"sprop-vps": "QAE=", "sprop-sps": "QgE="}) is None
    with pytest.raises(ProtocolError):
        h264_parameter_sets({"sprop-parameter-sets": "Z2Q*,aO"})
    with pytest.raises(ProtocolError):
        aac_params({"config": "12G0"})
    with pytest.raises(ProtocolError):
        aac_params({"mode": "AAC-hbr"})
    with pytest.raises(ProtocolError):
        aac_params({"config": "1210", "sizelength": "99"})
    assert aac_params({"config": "1210", "mode": "CELP-cbr"}) == AacParams(b"\x12\x10", "CELP-cbr", 0, 0, 0)
    with pytest.raises(ValueError):
        h264_fmtp(b"\x67", b"\x68")


@pytest.mark.parametrize("base, control, expected", [
    ("rtsp://h/live/a", "trackID=0", "rtsp://h/live/a/trackID=0"),
    ("rtsp://h/live/a/", "trackID=0", "rtsp://h/live/a/trackID=0"),
    ("rtsp://h/live/a", "/streamid=1", "rtsp://h/live/a/streamid=1"),
    ("rtsp://h/live/a", "rtsp://other:554/x/track1", "rtsp://other:554/x/track1"),
    ("rtsp://h/live/a", "*", "rtsp://h/live/a"),
    ("rtsp://h/live/a", None, "rtsp://h/live/a"),
    ("rtsp://h/live/a", "", "rtsp://h/live/a"),
])
def test_resolve_control(base: str, control: str | None, expected: str) -> None:
    assert resolve_control(base, control) == expected


def test_static_payload_and_lf_and_unknown_lines() -> None:
    text = "v=0\no=- 0 0 IN IP4 0.0.0.0\ns=x\nt=0 0\nz=keep\nm=audio 5004/2 RTP/AVP 0\ni=mic\ny=odd\n\n"
    sdp = Sdp.parse(text)
    [audio] = sdp.media
    assert audio.rtpmap == RtpMap(0, "PCMU", 8000, 1) and (audio.port, audio.port_count) == (5004, 2)
    assert sdp.extra == [("z", "keep")] and audio.extra == [("i", "mic"), ("y", "odd")]
    assert str(sdp) == ("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nz=keep\r\n"
                        "m=audio 5004/2 RTP/AVP 0\r\ni=mic\r\ny=odd\r\n")
    assert SdpMedia("video", 0, "RTP/AVP", ["98"]).rtpmap is None


@pytest.mark.parametrize("text", [
    "", "hello", "v=x\r\n", "v=0\r\nm=video\r\n", "v=0\r\nm=video x RTP/AVP 96\r\n",
    "v=0\r\nV=0\r\n", "v=0\r\n=x\r\n", "v=0\r\n" + "m=video 0 RTP/AVP 96\r\n" * 33,
])
def test_sdp_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        Sdp.parse(text)


def test_accessor_errors() -> None:
    bad_rtpmap = Sdp.parse("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\r\n").media[0]
    with pytest.raises(ProtocolError):
        bad_rtpmap.rtpmap
    with pytest.raises(ProtocolError):
        Sdp.parse("v=0\r\nm=video 0 RTP/AVP x\r\n").media[0].payload_type
    with pytest.raises(ProtocolError):
        Sdp.parse(b"v=0\r\ns=\xff\r\n")


@given(st.text(max_size=300))
def test_fuzz_sdp_parse_or_protocol_error(text: str) -> None:
    try:
        sdp = Sdp.parse(text)
    except ProtocolError:
        return
    again = Sdp.parse(str(sdp))  # what we write we can read back
    assert str(again) == str(sdp)
    for m in sdp.media:
        try:
            (m.rtpmap, m.fmtp, m.control)
        except ProtocolError:
            pass
