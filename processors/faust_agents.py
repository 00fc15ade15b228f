"""The agents, timer and rebalance hooks of the Faust app: thin loops, no business logic.

* one agent per family topic: record -> ``WorkerRuntime.on_input`` (entity step,
  timeouts, rows and window hits forwarded);
* one agent on the window-hits topic: hit -> ``WorkerRuntime.on_hit`` (windows
  counted per window key, emitted when due);
* the sink agent on every row topic (``faust_sink``);
* a timer sending a tick record to every input/hits partition this worker holds,
  so timeouts fire and windows close during quiet periods inside stream processing
  (tables may only change there).
"""

from __future__ import annotations

import logging
from typing import Any

from processors.faust_runtime import RAW_TOPIC, WorkerRuntime
from processors.faust_sink import Sink

log = logging.getLogger(__name__)

TICK_S = 1.0


def register(app: Any, settings: Any, follow_wall: bool) -> WorkerRuntime:
    """Create topics, tables, agents and the tick timer on ``app``; returns the runtime."""
    rt = WorkerRuntime(app, settings, follow_wall)
    for family, topic in rt.input_topics.items():
        app.agent(topic, name=f"wcs-{family}")(_input_loop(rt))
    app.agent(rt.hits_topic, name="wcs-windows")(_hits_loop(rt))
    sink = Sink(rt)
    rt.sink = sink
    sink_topic = app.topic(*(t.get_topic_name() for t in rt.row_topics.values()), **RAW_TOPIC)
    app.agent(sink_topic, name="wcs-sink")(sink.run)

    if follow_wall:  # with event time only, a tick could never move a partition's clock

        async def tick() -> None:
            await rt.send_control("tick")

        app.timer(TICK_S, name="wcs-tick")(tick)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        rt.forget()

    app.on_partitions_revoked.connect(on_revoked)
    return rt


def _input_loop(rt: WorkerRuntime) -> Any:
    async def loop(stream: Any) -> None:
        async for event in stream.events():
            await rt.on_input(event.message.tp, event.message.offset, event.value)

    return loop


def _hits_loop(rt: WorkerRuntime) -> Any:
    async def loop(stream: Any) -> None:
        async for event in stream.events():
            await rt.on_hit(event.message.tp, event.value)

    return loop
