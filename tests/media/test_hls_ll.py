"""fMP4 and Low-Latency HLS playlists, blocking-reload decisions, VOD playlists."""

from __future__ import annotations

import pytest

from hub.errors import BadRequest
from hub.media.hls import (Fmp4Uris, LlState, MediaPlaylist, Reload, VodSegment,
                           format_program_date_time, reload_decision, render_ll_playlist,
                           render_vod_playlist)
from hub.media.mp4 import Fmp4Segmenter
from tests.media.mp4.test_init import h264
from tests.media.mp4.test_segmenter import feed, video

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def live(frames: int = 86, **kwargs: float) -> Fmp4Segmenter:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0, **kwargs)  # type: ignore[arg-type]
    feed(seg, video(frames), now=T0)
    return seg


def parts(first: int, count: int, q: str = "") -> str:
    """EXT-X-PART lines of 0.2 s parts; the first starts with a keyframe."""
    return "".join(f'#EXT-X-PART:DURATION=0.200,URI="part{n}.m4s{q}"'
                   + (",INDEPENDENT=YES" if n == first else "") + "\n"
                   for n in range(first, first + count))


def test_fmp4_media_playlist_has_a_map() -> None:
    pl = MediaPlaylist(window=2, uri_template="{seq}.m4s", map_uri="init.mp4")
    pl.add(2.0)
    assert pl.render("token=x") == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        '#EXT-X-MAP:URI="init.mp4?token=x"\n'
        "#EXTINF:2.000,\n0.m4s?token=x\n")


def test_low_latency_playlist_exact() -> None:
    # Three 1 s segments of five 0.2 s parts, two parts of the fourth out.
    q = "?token=t"
    assert render_ll_playlist(live(), query="token=t") == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:1\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n"
        "#EXT-X-PART-INF:PART-TARGET=0.200\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        f'#EXT-X-MAP:URI="init0.mp4{q}"\n'
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n"
        # segment 0 starts more than three target durations from the end: no parts
        f"#EXTINF:1.000,\n0.m4s{q}\n"
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z\n"
        + parts(5, 5, q) +
        f"#EXTINF:1.000,\n1.m4s{q}\n"
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n"
        + parts(10, 5, q) +
        f"#EXTINF:1.000,\n2.m4s{q}\n"
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z\n"
        + parts(15, 2, q) +
        f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part17.m4s{q}"\n')


def test_plain_fmp4_variant_from_the_same_state() -> None:
    assert render_ll_playlist(live(), Fmp4Uris("/live/cam/{seq}.mp4", "p{n}", "/live/cam/i{v}.mp4"),
                              low_latency=False) == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        '#EXT-X-MAP:URI="/live/cam/i0.mp4"\n'
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:1.000,\n/live/cam/0.mp4\n"
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z\n#EXTINF:1.000,\n/live/cam/1.mp4\n"
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n#EXTINF:1.000,\n/live/cam/2.mp4\n")


def test_before_the_first_part_and_at_the_start_of_a_segment() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0)
    assert render_ll_playlist(seg) == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n"
        "#EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n")
    feed(seg, video(26))  # segment 0 just closed, segment 1 has no part yet
    assert render_ll_playlist(seg).endswith(
        parts(0, 5) + '#EXTINF:1.000,\n0.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part5.m4s"\n')


def test_discontinuity_new_map_and_end() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0, window=4)
    feed(seg, video(26))
    seg.reset([h264()])  # a new publisher: its own init, its own time line
    feed(seg, video(51, start=9_000_000))
    seg.finish()
    assert render_ll_playlist(seg) == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n"
        "#EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:1\n"
        '#EXT-X-MAP:URI="init0.mp4"\n'
        '#EXT-X-PART:DURATION=0.040,URI="part5.m4s",INDEPENDENT=YES\n'
        "#EXTINF:0.040,\n1.m4s\n"  # the frame that was open at the reset
        "#EXT-X-DISCONTINUITY\n"
        '#EXT-X-MAP:URI="init1.mp4"\n'
        + parts(6, 5) +
        "#EXTINF:1.000,\n2.m4s\n"
        + parts(11, 5) +
        "#EXTINF:1.000,\n3.m4s\n"
        '#EXT-X-PART:DURATION=0.040,URI="part16.m4s",INDEPENDENT=YES\n'
        "#EXTINF:0.040,\n4.m4s\n"
        "#EXT-X-ENDLIST\n")


def test_part_target_is_never_understated() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2)
    feed(seg, video(20, step=3003))  # 29.97 fps: parts of six frames, 0.2002 s
    text = render_ll_playlist(seg)
    assert "#EXT-X-PART-INF:PART-TARGET=0.201\n" in text
    assert "PART-HOLD-BACK=0.603" in text
    assert '#EXT-X-PART:DURATION=0.200,URI="part0.m4s",INDEPENDENT=YES\n' in text


def test_program_date_time_format() -> None:
    assert format_program_date_time(T0 + 0.0456) == "2023-11-14T22:13:20.046Z"
    assert format_program_date_time(T0 + 59.9999) == "2023-11-14T22:14:20.000Z"


STATE = LlState(last_sequence=10, last_parts=5, open_parts=2, part_target=0.2, target_duration=1,
                ended=False)
READY, WAIT, BAD = Reload.READY, Reload.WAIT, "400"


@pytest.mark.parametrize("msn, part, want", [
    (None, None, READY),  # a plain request
    (None, "1", BAD),  # a part without a segment (MUST 400)
    ("9", None, READY),
    ("10", None, READY),  # the last complete segment
    ("11", None, WAIT),  # the open segment is not in the playlist until complete
    ("12", None, WAIT),
    ("13", None, BAD),  # more than two past the last segment
    ("3", "99", READY),  # long gone: the whole playlist is delivered
    ("10", "4", READY),
    ("10", "5", READY),  # past the final part of 10: part 0 of 11, which is out
    ("11", "1", READY),
    ("11", "2", WAIT),  # the next part
    ("11", "16", WAIT),  # 15 parts ahead: the Advance Part Limit (3 / 0.2 s)
    ("11", "17", BAD),
    ("12", "0", WAIT),
    ("12", "14", WAIT),
    ("12", "15", BAD),
    ("0011", "02", WAIT),  # leading zeros are still decimal integers
    ("abc", None, BAD),
    ("-1", None, BAD),
    ("1e3", None, BAD),
    ("", None, BAD),
    ("11", "", BAD),
    ("\u0661", None, BAD),  # a non-ASCII digit
    ("9" * 20, None, BAD),
])
def test_blocking_reload_decisions(msn: str | None, part: str | None, want: object) -> None:
    if want == BAD:
        with pytest.raises(BadRequest):
            reload_decision(STATE, msn, part)
    else:
        assert reload_decision(STATE, msn, part) is want


def test_blocking_reload_limits_and_end() -> None:
    slow = LlState(10, 2, 0, part_target=1.5, target_duration=6, ended=False)
    assert reload_decision(slow, "11", "2") is WAIT  # three parts ahead
    with pytest.raises(BadRequest):
        reload_decision(slow, "11", "3")
    assert slow.timeout == 18.0
    ended = LlState(10, 5, 0, 0.2, 1, ended=True)
    assert reload_decision(ended, "99", "99") is READY  # ignored once the playlist ended
    with pytest.raises(BadRequest):
        reload_decision(ended, None, "0")


def test_state_of_a_segmenter() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0)
    assert LlState.of(seg) == LlState(-1, 0, 0, 0.2, 1, False)
    feed(seg, video(10))
    assert LlState.of(seg) == LlState(-1, 0, 1, 0.2, 1, False)
    assert reload_decision(LlState.of(seg), "0", "0") is READY
    assert reload_decision(LlState.of(seg), "0", "1") is WAIT
    feed(seg, video(86)[10:])
    state = LlState.of(seg)
    assert state == LlState(2, 5, 2, 0.2, 1, False)
    assert reload_decision(state, "3", "1") is READY
    assert reload_decision(state, "3", "2") is WAIT


def test_vod_playlist_over_recordings() -> None:
    segs = [
        VodSegment("/rec/cam/a.mp4", 10.0, byterange=(90000, 1200), map_uri="/rec/cam/a.mp4",
                   map_range=(1200, 0)),
        VodSegment("/rec/cam/b.mp4", 9.96, byterange=(80000, 1200), map_uri="/rec/cam/b.mp4",
                   map_range=(1200, 0)),
        VodSegment("/rec/cam/c.mp4", 4.5, map_uri="/rec/init.mp4", discontinuity=True),
        VodSegment("/rec/cam/d.mp4", 4.5, map_uri="/rec/init.mp4"),
    ]
    assert render_vod_playlist(segs, query="token=t") == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        '#EXT-X-MAP:URI="/rec/cam/a.mp4?token=t",BYTERANGE="1200@0"\n'
        "#EXTINF:10.000,\n#EXT-X-BYTERANGE:90000@1200\n/rec/cam/a.mp4?token=t\n"
        '#EXT-X-MAP:URI="/rec/cam/b.mp4?token=t",BYTERANGE="1200@0"\n'
        "#EXTINF:9.960,\n#EXT-X-BYTERANGE:80000@1200\n/rec/cam/b.mp4?token=t\n"
        "#EXT-X-DISCONTINUITY\n"
        '#EXT-X-MAP:URI="/rec/init.mp4?token=t"\n'
        "#EXTINF:4.500,\n/rec/cam/c.mp4?token=t\n"
        "#EXTINF:4.500,\n/rec/cam/d.mp4?token=t\n"  # same init: no new map
        "#EXT-X-ENDLIST\n")
    assert render_vod_playlist([]) == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n")
