import random
from collections import Counter
from itertools import permutations

import pytest

from domain.waiting.errors import InvalidParameter
from domain.waiting.lottery import (
    SEED_BYTES,
    commitment,
    lottery_order,
    lottery_ranks,
    new_seed,
    verify,
)

IDS = [f"ticket-{i}" for i in range(20)]


def seed_from(n: int) -> bytes:
    return new_seed(random.Random(n).randbytes)


def test_seed_comes_from_the_injected_random_source():
    assert seed_from(1) == seed_from(1)
    assert len(seed_from(1)) == SEED_BYTES
    assert seed_from(1) != seed_from(2)


def test_short_random_read_is_refused():
    with pytest.raises(InvalidParameter):
        new_seed(lambda n: b"\x00" * (n - 1))


def test_revealed_seed_verifies_against_its_commitment_only():
    seed = seed_from(1)
    c = commitment(seed)
    assert len(c) == 64 and int(c, 16) >= 0
    assert verify(seed, c)
    assert verify(seed, c.upper())
    assert not verify(seed_from(2), c)
    assert not verify(seed[:-1], c)


def test_same_seed_and_ids_give_the_same_order():
    seed = seed_from(7)
    assert lottery_order(seed, IDS) == lottery_order(seed, list(IDS))
    assert sorted(lottery_order(seed, IDS)) == sorted(IDS)


def test_order_does_not_depend_on_join_order():
    seed = seed_from(7)
    shuffled = IDS[:]
    random.Random(3).shuffle(shuffled)
    assert lottery_order(seed, shuffled) == lottery_order(seed, IDS)
    assert lottery_order(seed, reversed(IDS)) == lottery_order(seed, IDS)


def test_order_is_not_simply_join_order():
    assert lottery_order(seed_from(7), IDS) != IDS


def test_ranks_match_the_order():
    seed = seed_from(7)
    order = lottery_order(seed, IDS)
    ranks = lottery_ranks(seed, IDS)
    assert [t for t, _ in sorted(ranks.items(), key=lambda kv: kv[1])] == order


def test_duplicate_ticket_ids_are_refused():
    with pytest.raises(InvalidParameter):
        lottery_order(seed_from(1), ["a", "b", "a"])


def test_every_permutation_is_about_equally_likely_over_many_seeds():
    ids = ["a", "b", "c", "d"]  # 24 permutations
    runs = 12_000
    counts = Counter(tuple(lottery_order(seed_from(n), ids)) for n in range(runs))
    assert set(counts) == set(permutations(ids))
    expected = runs / 24
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    # 23 degrees of freedom: P(chi2 > 60) is about 4e-5 for a uniform shuffle.
    assert chi2 < 60


def test_each_ticket_is_first_about_equally_often():
    ids = [f"t{i}" for i in range(10)]
    runs = 5_000
    firsts = Counter(lottery_order(seed_from(n), ids)[0] for n in range(runs))
    assert all(abs(firsts[t] - runs / 10) < 100 for t in ids)  # ~4.7 sigma
