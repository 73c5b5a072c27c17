from __future__ import annotations

from hypothesis import given, strategies as st

from hub.media.dts import DtsEstimator

D = 3600


def _decode_order(gops: int, bframes: int) -> list[int]:
    """Display-order PTS of an I P..P GOP with `bframes` B-frames, in decode order."""
    out: list[int] = []
    n = 0
    for _ in range(gops):
        out.append(n * D)  # I
        i = n + 1
        while i < n + 25:
            ref = min(i + bframes, n + 24)
            out.append(ref * D)
            out += [j * D for j in range(i, ref)]
            i = ref + 1
        n += 25
    return out


def test_in_order_streams_keep_dts_equal_to_pts() -> None:
    est = DtsEstimator(D)
    pts = [i * D for i in range(100)]
    assert [est.dts(p) for p in pts] == pts
    assert not est.reordering


def test_b_frames_give_rising_dts_never_above_pts_after_the_first_gop() -> None:
    for bframes in (1, 2):
        est = DtsEstimator(D)
        pts = _decode_order(4, bframes)
        dts = [est.dts(p) for p in pts]
        assert est.reordering
        assert all(b > a for a, b in zip(dts, dts[1:])), "DTS must rise strictly"
        assert all(d <= p for d, p in zip(dts[25:], pts[25:])), "DTS above PTS after warm-up"
        # Steady state: one frame duration per frame.
        assert {b - a for a, b in zip(dts[30:], dts[31:])} == {D}


def test_frame_duration_is_learned_when_unknown() -> None:
    est = DtsEstimator()
    pts = _decode_order(3, 2)
    dts = [est.dts(p) for p in pts]
    assert est.frame_ticks == D
    assert all(d <= p for d, p in zip(dts[25:], pts[25:]))


def test_lost_frames_make_dts_catch_up() -> None:
    est = DtsEstimator(D)
    pts = _decode_order(6, 2)
    kept = pts[:40] + pts[60:]  # 20 frames lost
    dts = [est.dts(p) for p in kept]
    assert all(b > a for a, b in zip(dts, dts[1:]))
    lag = max(p for p in kept[-10:]) - dts[-1]
    assert lag <= 10 * D


@given(st.lists(st.integers(min_value=0, max_value=1 << 40), max_size=300))
def test_any_pts_sequence_gives_strictly_rising_dts(pts: list[int]) -> None:
    est = DtsEstimator()
    dts = [est.dts(p) for p in pts]
    assert all(b > a for a, b in zip(dts, dts[1:]))
