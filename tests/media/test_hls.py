from __future__ import annotations

import pytest

from hub.media.hls import HlsSegment, MediaPlaylist


def test_empty_playlist() -> None:
    assert MediaPlaylist().render() == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:0\n")


def test_sliding_window_exact_text() -> None:
    pl = MediaPlaylist(window=3, uri_template="live/cam1/{seq}.ts")
    assert pl.add(2.0) == []
    assert pl.add(2.5) == []
    assert pl.add(1.96) == []
    dropped = pl.add(2.04)
    assert dropped == [HlsSegment(0, 2.0, "live/cam1/0.ts")]
    assert pl.render() == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:3\n"
        "#EXT-X-MEDIA-SEQUENCE:1\n"
        "#EXTINF:2.500,\n"
        "live/cam1/1.ts\n"
        "#EXTINF:1.960,\n"
        "live/cam1/2.ts\n"
        "#EXTINF:2.040,\n"
        "live/cam1/3.ts\n")
    assert pl.media_sequence == 1
    assert [s.sequence for s in pl.segments] == [1, 2, 3]


def test_query_token_on_every_uri() -> None:
    pl = MediaPlaylist(window=2, first_sequence=41)
    pl.add(4.0)
    pl.add(3.2)
    assert pl.render("token=abc.def") == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:41\n"
        "#EXTINF:4.000,\n41.ts?token=abc.def\n"
        "#EXTINF:3.200,\n42.ts?token=abc.def\n")
    assert "?" not in pl.render()


def test_target_duration_is_ceiling_and_never_shrinks() -> None:
    pl = MediaPlaylist(window=1)
    pl.add(2.0000001)  # prints as 2.000, so the target is 2, not 3
    assert pl.target_duration == 2
    pl.add(5.2)
    assert pl.target_duration == 6
    pl.add(1.0)  # the 5.2 s segment left the window; the target stays
    assert pl.target_duration == 6
    assert "#EXT-X-TARGETDURATION:6\n" in pl.render()


def test_discontinuity_and_endlist() -> None:
    pl = MediaPlaylist(window=2)
    pl.add(2.0)
    pl.add(2.0, discontinuity=True)
    pl.add(2.0)
    assert pl.render().endswith("#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n1.ts\n"
                                "#EXTINF:2.000,\n2.ts\n")
    pl.add(2.0)  # the discontinuity leaves the window: counted in the header
    pl.ended = True
    assert pl.render() == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n"
        "#EXT-X-DISCONTINUITY-SEQUENCE:1\n"
        "#EXTINF:2.000,\n2.ts\n#EXTINF:2.000,\n3.ts\n#EXT-X-ENDLIST\n")


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_rejects_bad_durations(bad: float) -> None:
    with pytest.raises(ValueError):
        MediaPlaylist().add(bad)


def test_rejects_empty_window() -> None:
    with pytest.raises(ValueError):
        MediaPlaylist(window=0)
