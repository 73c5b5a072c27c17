"""hub.rate.TokenBucket: a burst, then a rate; a refusal takes nothing."""

from hub.rate import TokenBucket


def test_a_burst_then_the_rate_and_a_refusal_takes_nothing() -> None:
    b = TokenBucket(3, 2.0, now=10.0)
    assert [b.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert b.tokens == 0.0  # the refused one took nothing
    assert not b.take(10.4) and b.take(10.5)  # 2 a second: one more at +0.5 s
    assert b.available(100.0) == 3.0 and b.full(100.0)  # never past the burst
    b.spend(2.5)
    assert b.available(99.0) == 0.5  # time that goes back refills nothing
    assert not b.take(99.0)
