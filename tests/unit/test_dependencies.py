"""faust-streaming, mode-streaming and aiokafka are pinned as a set: they must load together."""

from __future__ import annotations

import importlib.metadata as md


def test_pinned_stream_stack_loads_together() -> None:
    import aiokafka
    import faust
    from faust.transport.drivers import aiokafka as driver

    assert md.version("faust-streaming") == faust.__version__
    assert aiokafka.__version__ == md.version("aiokafka")
    # the Faust Kafka driver is built on aiokafka's consumer/producer classes
    assert driver.Transport.Consumer is not None
    assert issubclass(driver.Producer, faust.transport.producer.Producer)


def test_faust_app_builds_with_the_aiokafka_driver() -> None:
    import faust

    app = faust.App("wcs-dependency-check", broker="kafka://127.0.0.1:9", store="memory://")
    assert app.conf.broker[0].scheme == "kafka"
    assert type(app.transport).__module__ == "faust.transport.drivers.aiokafka"
