"""benchmarks/_profile.py: py-spy's collapsed stacks read as shares of a replica's time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks._common import cpu_seconds
from benchmarks._profile import REST, per_request_us, read_raw, shares

PARTS = {"token check": ("Identity.user ",), "of which the signature": ("ECAlgorithm.verify ",),
         "join record": ("QueueClient.join ",)}


def test_a_sample_counts_for_every_part_its_stack_passes_through_and_the_rest_for_none() -> None:
    stacks = {
        "run (a.py:1);join_queue (q.py:2);Identity.user (i.py:3);ECAlgorithm.verify (j.py:4)": 6,
        "run (a.py:1);join_queue (q.py:2);Identity.user (i.py:3)": 2,
        "run (a.py:1);join_queue (q.py:2);QueueClient.join (c.py:5)": 1,
        "run (a.py:1);Router.app (r.py:9)": 11,
    }
    assert shares(stacks, PARTS) == {"token check": 40.0, "of which the signature": 30.0,
                                     "join record": 5.0, REST: 55.0}


def test_a_frame_that_only_starts_like_a_part_is_not_that_part() -> None:
    assert shares({"Identity.user_claims (i.py:1)": 1}, PARTS)[REST] == 100.0


def test_shares_read_as_microseconds_of_the_replica_per_request() -> None:
    assert per_request_us({"token check": 25.0}, 0.9, 2000) == {"token check": 112.5}
    assert per_request_us({"token check": 25.0}, 0.9, 0) == {}


def test_py_spys_raw_output_sums_repeated_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "x.raw"
    raw.write_text("a (x.py:1);b (x.py:2) 3\na (x.py:1);b (x.py:2) 4\nbroken line\n")
    assert read_raw(raw) == {"a (x.py:1);b (x.py:2)": 7}


def test_cpu_seconds_grow_with_the_process_own_work() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.03
