"""ixypy.ndr.bisect, RFC 2544's binary search, driven by a trial that is a
pure function of the rate: the bounds it keeps and when it stops."""
from __future__ import annotations

import pytest

from ixypy.ndr import bisect


def rates(tried):
    return [rate for rate, _ in tried]


@pytest.mark.parametrize("threshold", [0.3, 3.7, 7.3, 9.95])
def test_converges_to_the_highest_passing_rate_within_the_resolution(threshold):
    """Mutations tried: `low = rate` and `high = rate` swapped (ends at the
    first rate); the midpoint taken as (low + high) / 3 (never converges up to 9.95)."""
    tried = bisect(lambda rate: rate <= threshold, 0.0, 10.0, 0.1, 50)
    best = max(rate for rate, passed in tried if passed)
    lowest_failed = min(rate for rate, passed in tried if not passed)
    assert threshold - 0.1 < best <= threshold < lowest_failed < best + 0.1


def test_a_passing_max_rate_is_the_only_trial():
    """Mutation tried: the first rate tried halfway between min and max (0.5, then up)."""
    assert bisect(lambda rate: True, 0.0, 1.0, 0.01, 20) == [(1.0, True)]


def test_stops_when_the_interval_is_below_the_resolution():
    """Max 8, resolution 1: after 1 fails the interval is exactly 1, not
    below it, so 0.5 is tried too. Mutation tried: `high - low <= resolution`
    (stops after 1)."""
    assert rates(bisect(lambda rate: False, 0.0, 8.0, 1.0, 50)) == [8.0, 4.0, 2.0, 1.0, 0.5]


def test_never_goes_below_the_min_rate():
    """Mutation tried: `low, high = 0.0, max_mpps` (halves towards 0: 8, 4, ...)."""
    assert rates(bisect(lambda rate: False, 4.0, 8.0, 1.0, 50)) == [8.0, 6.0, 5.0, 4.5]


def test_stops_after_max_trials():
    """Mutation tried: `while len(tried) <= max_trials` (one trial more)."""
    assert len(bisect(lambda rate: rate < 1e-9, 0.0, 1.0, 0.0, 7)) == 7


def test_a_trial_that_says_none_ends_the_search():
    """A stopped trial (None) is not recorded. Mutation tried: recording it
    as a fail before the check for None."""
    outcomes = iter([False, True, None, True])
    assert bisect(lambda rate: next(outcomes), 0.0, 4.0, 0.01, 20) == [(4.0, False), (2.0, True)]
