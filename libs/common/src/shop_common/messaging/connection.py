"""One AMQP connection that we own and supervise ourselves.

We use plain (not robust) aio-pika connections: robust ones restore channels and consumers
in the background and have known gaps (consumers not restored after some failures, broker
consumer cancellations ignored). Instead, a `BrokerSession` raises its `lost` flag when the
connection or one of its channels closes, or the broker cancels a consumer; the owner then
throws the session away and builds a new one (declare topology, subscribe again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

log = logging.getLogger(__name__)


class BrokerSession:
    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.lost = asyncio.Event()
        self._channels: list[AbstractChannel] = []
        connection.close_callbacks.add(self._on_close)

    @classmethod
    async def open(cls, url: str, *, name: str, connect_timeout: float = 10.0) -> BrokerSession:
        connection = await aio_pika.connect(
            url, timeout=connect_timeout, client_properties={"connection_name": name}
        )
        return cls(connection)

    async def channel(self, *, confirms: bool) -> AbstractChannel:
        """A channel; with `confirms`, publishes wait for the broker and unroutable raises."""
        channel = await self.connection.channel(
            publisher_confirms=confirms, on_return_raises=confirms
        )
        channel.close_callbacks.add(self._on_close)
        self._channels.append(channel)
        return channel

    async def watch_consumer(
        self, channel: AbstractChannel, consumer_tag: str | Callable[[], str | None]
    ) -> None:
        """Raise `lost` if the broker cancels this consumer (e.g. its queue was deleted).

        `consumer_tag` may be a function returning the current tag, for a consumer that
        cancels and subscribes again on its own (it pauses)."""
        underlay = await channel.get_underlay_channel()
        current = consumer_tag if callable(consumer_tag) else lambda: consumer_tag

        def on_cancel(frame: Any) -> None:
            tag = current()
            if tag is not None and getattr(frame, "consumer_tag", None) == tag:
                log.warning("broker cancelled consumer %s", tag)
                self.lost.set()

        underlay.on_consumer_cancel_callbacks.add(on_cancel)

    async def is_consuming(self, channel: AbstractChannel, consumer_tag: str) -> bool:
        if self.lost.is_set() or channel.is_closed:
            return False
        underlay = await channel.get_underlay_channel()
        return isinstance(underlay, aiormq.Channel) and consumer_tag in underlay.consumers

    @property
    def usable(self) -> bool:
        return not self.lost.is_set() and all(not ch.is_closed for ch in self._channels)

    async def close(self) -> None:
        self.lost.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.close(), timeout=5)

    def _on_close(self, _sender: object, exc: BaseException | None = None) -> None:
        if not self.lost.is_set():
            log.info("broker connection or channel closed: %r", exc)
        self.lost.set()
