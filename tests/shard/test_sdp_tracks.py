"""SDP → TrackDesc list and the player SDP (exact text), on FFmpeg's
ANNOUNCE bodies captured from `ffmpeg -f rtsp` (testsrc 640x360 x264 + AAC
48 kHz stereo; testsrc 320x240 x265)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import BadRequest, ProtocolError
from hub.media.sdp import Sdp, for_ipv6_player
from hub.media.stream_desc import TrackDesc
from hub.shard.sdp_tracks import (announced_tracks, player_sdp, track_for_uri, with_h264_params,
                                  with_h265_params)

FFMPEG_H264_AAC = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE; "
    "profile-level-id=F4001E\r\na=control:streamid=0\r\n"
    "m=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
    "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=119056E500\r\n"
    "a=control:streamid=1\r\n"
)
FFMPEG_H265 = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n"
    "a=fmtp:96 sprop-vps=QAEMAf//BAgAAAMAnggAAAMAADyVmAk=; "
    "sprop-sps=QgEBBAgAAAMAnggAAAMAADyQAUEB4ssrNJJleAtwICAAQAAAAwBAAAAHgg==; sprop-pps=RAHBcoYMRiQ=\r\n"
    "a=control:streamid=0\r\n"
)
H264_SPS = base64.b64decode("Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw")
H264_PPS = base64.b64decode("aOvjxEhE")
H265_VPS = base64.b64decode("QAEMAf//BAgAAAMAnggAAAMAADyVmAk=")
H265_SPS = base64.b64decode("QgEBBAgAAAMAnggAAAMAADyQAUEB4ssrNJJleAtwICAAQAAAAwBAAAAHgg==")
H265_PPS = base64.b64decode("RAHBcoYMRiQ=")


def test_h264_aac_tracks() -> None:
    video, audio = announced_tracks(Sdp.parse(FFMPEG_H264_AAC))
    assert video.control == "streamid=0" and audio.control == "streamid=1"
    assert video.desc == TrackDesc(
        index=0, kind="video", codec="H264", payload_type=96, clock_rate=90000, channels=0,
        fmtp="packetization-mode=1; sprop-parameter-sets=Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE; "
             "profile-level-id=F4001E",
        sps=H264_SPS, pps=H264_PPS, width=640, height=360, framerate=25.0)
    assert audio.desc == TrackDesc(
        index=1, kind="audio", codec="MPEG4-GENERIC", payload_type=97, clock_rate=48000, channels=2,
        fmtp="profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=119056E500",
        asc=bytes.fromhex("119056E500"), sample_rate=48000)


def test_h265_track() -> None:
    (video,) = announced_tracks(Sdp.parse(FFMPEG_H265))
    d = video.desc
    assert (d.codec, d.payload_type, d.clock_rate) == ("H265", 96, 90000)
    assert (d.vps, d.sps, d.pps) == (H265_VPS, H265_SPS, H265_PPS)
    assert (d.width, d.height, d.framerate) == (320, 240, 30.0)


def test_player_sdp_exact() -> None:
    sdp = Sdp.parse(FFMPEG_H264_AAC)
    tracks = announced_tracks(sdp)
    assert player_sdp(sdp, [(t, t.desc) for t in tracks]) == (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE; "
        "profile-level-id=F4001E\r\na=control:trackID=0\r\n"
        "m=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
        "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=119056E500\r\n"
        "a=control:trackID=1\r\n")
    # Only the audio set up: it becomes track 0; session control and other
    # formats' lines go.
    camera = Sdp.parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=cam\r\nt=0 0\r\na=control:rtsp://10.0.0.9/ch1\r\na=range:npt=0-\r\n"
        "m=audio 0 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendonly\r\n"
        "a=control:rtsp://10.0.0.9/ch1/track2\r\n")
    (pcmu,) = announced_tracks(camera)
    assert (pcmu.desc.codec, pcmu.desc.payload_type, pcmu.desc.clock_rate) == ("PCMU", 0, 8000)
    assert player_sdp(camera, [(pcmu, pcmu.desc)]) == (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=control:trackID=0\r\n")


def test_an_ipv6_player_gets_ip6_session_lines() -> None:
    """Only the origin and connection lines change (GStreamer sizes its RTP
    sockets by the connection's address type); a second `IN IP4 0.0.0.0`
    elsewhere (an unknown line kept) is left as it is."""
    sdp = Sdp.parse(FFMPEG_H264_AAC)
    ours = player_sdp(sdp, [(t, t.desc) for t in announced_tracks(sdp)])
    v6 = for_ipv6_player(ours + "x=c=IN IP4 0.0.0.0\r\n")
    assert v6 == ours.replace("o=- 0 0 IN IP4 127.0.0.1\r\n", "o=- 0 0 IN IP6 ::1\r\n").replace(
        "c=IN IP4 0.0.0.0\r\n", "c=IN IP6 ::\r\n") + "x=c=IN IP4 0.0.0.0\r\n"
    parsed = Sdp.parse(v6)
    assert (parsed.origin, parsed.connection) == ("- 0 0 IN IP6 ::1", "IN IP6 ::")
    assert [m.control for m in parsed.media] == ["trackID=0", "trackID=1"]


def test_track_for_uri() -> None:
    tracks = announced_tracks(Sdp.parse(FFMPEG_H264_AAC))
    assert track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x/streamid=1") is tracks[1]
    assert track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x/streamid=0?token=abc") is tracks[0]
    with pytest.raises(BadRequest):
        track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x/streamid=2")
    with pytest.raises(BadRequest):
        track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x")
    absolute = announced_tracks(Sdp.parse(
        "v=0\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=control:rtsp://10.0.0.9/ch1/v\r\nm=audio 0 RTP/AVP 8\r\na=control:rtsp://10.0.0.9/ch1/a\r\n"))
    assert track_for_uri(absolute, "rtsp://10.0.0.9/ch1/a") is absolute[1]
    # FFmpeg publishing to a URL with a query appends the control after it.
    assert track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x?channel=1&subtype=0/streamid=1") is tracks[1]
    assert track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x?channel=1/streamid=0") is tracks[0]
    with pytest.raises(BadRequest):
        track_for_uri(tracks, "rtsp://127.0.0.1:1554/live/x?next=/a/b")
    # One track: the bare stream URL (or any) names it.
    (single,) = announced_tracks(Sdp.parse(FFMPEG_H265))
    assert track_for_uri([single], "rtsp://127.0.0.1/live/x") is single


def test_sections_we_cannot_carry_are_skipped_or_refused() -> None:
    sdp = Sdp.parse("v=0\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=control:a\r\n"  # no rtpmap
                    "m=application 0 udp wb\r\n"  # not RTP
                    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\na=control:b\r\n")
    (opus,) = announced_tracks(sdp)
    assert (opus.desc.index, opus.desc.codec, opus.desc.channels, opus.control) == (0, "OPUS", 2, "b")
    with pytest.raises(BadRequest):
        announced_tracks(Sdp.parse("v=0\r\ns=-\r\nt=0 0\r\n"))


def test_bad_parameter_sets_leave_the_track_unconfigured() -> None:
    sdp = Sdp.parse("v=0\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QA,aOvj\r\n"
                    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/1\r\na=fmtp:97 config=zz\r\n")
    video, audio = announced_tracks(sdp)
    assert (video.desc.sps, video.desc.width, video.desc.height) == (b"", 0, 0)
    assert (audio.desc.asc, audio.desc.sample_rate, audio.desc.channels) == (b"", 0, 1)


def test_in_band_parameter_sets_rewrite_the_fmtp() -> None:
    base = TrackDesc(0, "video", "H264", 96, 90000, fmtp="packetization-mode=1")
    new = with_h264_params(base, H264_SPS, H264_PPS)
    assert new.fmtp == ("packetization-mode=1;profile-level-id=F4001E;"
                        "sprop-parameter-sets=Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE")
    assert (new.width, new.height, new.framerate) == (640, 360, 25.0)
    assert base.sps == b"" and base.fmtp == "packetization-mode=1"  # not mutated
    # An SPS that does not parse keeps the old picture size.
    broken = with_h264_params(new, b"\x67\x64", H264_PPS)
    assert (broken.sps, broken.width, broken.height) == (b"\x67\x64", 640, 360)
    h265 = with_h265_params(TrackDesc(0, "video", "H265", 96, 90000), H265_VPS, H265_SPS, H265_PPS)
    assert h265.fmtp == ("sprop-vps=QAEMAf//BAgAAAMAnggAAAMAADyVmAk=;"
                         "sprop-sps=QgEBBAgAAAMAnggAAAMAADyQAUEB4ssrNJJleAtwICAAQAAAAwBAAAAHgg==;"
                         "sprop-pps=RAHBcoYMRiQ=")
    assert (h265.width, h265.height) == (320, 240)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400) | st.sampled_from([FFMPEG_H264_AAC, FFMPEG_H265]).flatmap(
    lambda s: st.integers(0, len(s)).map(lambda n: s[:n] + "x" + s[n + 1:])))
def test_any_sdp_gives_tracks_or_protocol_error(text: str) -> None:
    try:
        sdp = Sdp.parse(text)
        tracks = announced_tracks(sdp)
        player_sdp(sdp, [(t, t.desc) for t in tracks])
    except ProtocolError:
        pass


def test_control_after_query() -> None:
    from hub.media.rtsp import control_after_query

    assert control_after_query("/live/x", "channel=1&subtype=0/streamid=1") == "/live/x/streamid=1"
    assert control_after_query("/live/x/", "k=v/trackID=0") == "/live/x/trackID=0"
    assert control_after_query("/live/x", "channel=1") is None
    assert control_after_query("/live/x", "") is None
    assert control_after_query("/live/x", "k=v/") is None
