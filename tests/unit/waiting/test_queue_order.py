from domain.waiting.queue_order import QueueTier, is_prequeue


def test_lanes_are_admitted_presale_then_prequeue_then_general():
    assert sorted(QueueTier) == [QueueTier.PRESALE, QueueTier.PREQUEUE, QueueTier.GENERAL]


def test_prequeue_means_strictly_before_onsale():
    assert is_prequeue(999, 1000)
    assert not is_prequeue(1000, 1000)
    assert not is_prequeue(1001, 1000)
