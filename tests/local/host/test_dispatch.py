"""The queue listener's empty-queue backoff, as the host polls: 100 ms, doubling up to the maximum."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from local.host.dispatch import first_poll_delay, next_poll_delay


def test_the_first_wait_is_100_ms() -> None:
    assert first_poll_delay(2.0) == 0.1


def test_the_first_wait_never_exceeds_a_smaller_maximum() -> None:
    assert first_poll_delay(0.05) == 0.05


def test_each_empty_receive_doubles_the_wait_up_to_the_maximum() -> None:
    delays = [first_poll_delay(1.0)]
    for _ in range(5):
        delays.append(next_poll_delay(delays[-1], 1.0))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@given(
    maximum=st.floats(min_value=0.1, max_value=3600),
    empty_receives=st.integers(min_value=0, max_value=64),
)
def test_the_wait_grows_but_never_exceeds_max_polling_interval(maximum: float, empty_receives: int) -> None:
    delay = first_poll_delay(maximum)
    for _ in range(empty_receives):
        longer = next_poll_delay(delay, maximum)
        assert delay <= longer <= maximum
        delay = longer
