"""A batch of holds or checkouts goes out as one call per owning block, answers in place."""

import asyncio

from domain.errors import TicketingError
from replica.client import per_block


def test_each_block_gets_one_call_with_its_items_and_each_answer_returns_to_its_item() -> None:
    calls: list[tuple[str, int, list[str]]] = []

    async def call(event_id: str, block: int, items: list) -> list[str]:
        calls.append((event_id, block, [item[2] for item in items]))
        return [f"{event_id}/{block}/{item[2]}" for item in items]

    items = [("e1", 0, "a", None), ("e1", 1, "b", None), ("e1", 0, "c", None),
             ("e2", 0, "d", None)]
    answers = asyncio.run(per_block(items, call))  # type: ignore[arg-type]
    assert answers == ["e1/0/a", "e1/1/b", "e1/0/c", "e2/0/d"]
    assert sorted(calls) == [("e1", 0, ["a", "c"]), ("e1", 1, ["b"]), ("e2", 0, ["d"])]


def test_a_block_that_answers_with_errors_leaves_the_other_blocks_answers_alone() -> None:
    refused = TicketingError("refused")

    async def call(event_id: str, block: int, items: list) -> list:
        return [refused] * len(items) if block == 1 else ["ok"] * len(items)

    items = [("e", 1, "x", None), ("e", 0, "y", None)]
    assert asyncio.run(per_block(items, call)) == [refused, "ok"]  # type: ignore[arg-type]
