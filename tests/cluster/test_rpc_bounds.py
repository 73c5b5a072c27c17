"""Requests from other nodes (hub.cluster.rpc) when this node is busy:
a flood of them costs a bounded number of tasks and answers, against a
real redis-server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hub.cluster import keys as K
from hub.cluster.rpc import MAX_SERVING, NodeRpc
from tests.cluster.conftest import RedisServer, started_link


def test_a_flood_of_requests_past_the_serving_bound_costs_bounded_tasks_and_answers(
        redis_server: RedisServer) -> None:
    """Before, every request past MAX_SERVING got a "busy" answer from a task
    of its own: 2,000 requests in one read made 2,000 tasks and answers."""
    async def main() -> None:
        link = await started_link(redis_server.url)
        stuck = asyncio.Event()

        async def handler(op: str, args: dict[str, Any]) -> Any:
            await stuck.wait()  # a slow handler: every serving slot taken
            return "done"

        rpc = NodeRpc(link, "a", "i1", handler)
        answers: list[dict[str, Any]] = []
        listener = link.client.pubsub()
        await listener.subscribe(K.rpc_channel("b"))
        try:
            def request(n: int) -> bytes:
                return json.dumps({"id": f"b-{n}", "from": "b", "op": "streams", "a": {}}).encode()

            before = len(asyncio.all_tasks())
            for n in range(MAX_SERVING + 2000):  # as if all came in one read
                rpc.on_message(request(n))
            tasks = len(asyncio.all_tasks()) - before
            assert tasks <= 2 * MAX_SERVING, tasks
            deadline = asyncio.get_running_loop().time() + 5
            while asyncio.get_running_loop().time() < deadline and len(answers) < MAX_SERVING:
                msg = await listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if msg is not None:
                    answers.append(json.loads(msg["data"]))
            assert len(answers) == MAX_SERVING and all("busy" in str(a.get("e")) for a in answers)
            stuck.set()  # the slow ones finish: each still gets its answer
            while len(answers) < 2 * MAX_SERVING and asyncio.get_running_loop().time() < deadline + 5:
                msg = await listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if msg is not None:
                    answers.append(json.loads(msg["data"]))
            assert sorted(a["r"] for a in answers if "r" in a) == ["done"] * MAX_SERVING
        finally:
            await listener.aclose()
            await rpc.aclose()
            await link.aclose()

    asyncio.run(asyncio.wait_for(main(), 30))
