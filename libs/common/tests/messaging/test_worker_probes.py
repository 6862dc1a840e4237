"""A worker's `/readyz` includes the broker, read from the subscription the consumer already
holds: no AMQP connection per probe, not ready while the broker is gone, ready again after.

Real PostgreSQL and RabbitMQ. The worker reaches the broker through a small TCP proxy of the
test's own, which counts the connections opened and can cut them and refuse new ones, so
the outage touches nothing else on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.messaging import Envelope
from shop_common.settings import ServiceSettings
from shop_common.worker import run_service_worker
from tests.support.processes import free_port


class BrokerProxy:
    """Forwards TCP to the broker; `cut()` drops every connection and refuses new ones."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.opened = 0
        self.refusing = False
        self._pipes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def cut(self) -> None:
        self.refusing = True
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def restore(self) -> None:
        self.refusing = False

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        self.opened += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        pipes = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._pipes.discard(pipe)
            for w in (writer, up_writer):
                w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


async def ignore(_session: AsyncSession, _envelope: Envelope, _payload: Any) -> None:
    return None


async def readiness(client: httpx.AsyncClient, url: str, *, status: int, within: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = await client.get(url)
            if response.status_code == status:
                return response.json()
        if loop.time() > deadline:
            raise AssertionError(f"/readyz did not answer {status} within {within}s")
        await asyncio.sleep(0.05)


async def test_worker_readiness_follows_the_broker_without_connecting_per_probe(
    db: Any, pg_admin_url: str, amqp_url: str, names: str
) -> None:
    broker = urlsplit(amqp_url)
    proxy = BrokerProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    proxied = amqp_url.replace(broker.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{await proxy.start()}")
    port = free_port()
    settings = ServiceSettings(
        port=1,
        worker_port=port,
        metrics_port=0,
        database_url=pg_admin_url,
        db_schema=db.schema,
        amqp_url=SecretStr(proxied),
        exchange=f"{names}.events",
        jwt_secret=SecretStr("x" * 32),
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_service_worker(
            service=names,
            settings=settings,
            outbox=db.outbox_table,
            inbox=db.inbox_table,
            handlers={"catalog.product.created.v1": ignore},
            stop=stop,
        )
    )
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await readiness(client, url, status=200, within=20)
            assert ready["checks"] == {"database": "ok", "broker": "ok"}

            held = proxy.opened  # the consumer's connection, and the relay's
            for _ in range(10):
                assert (await client.get(url)).status_code == 200
            assert proxy.opened == held

            await proxy.cut()
            gone = await readiness(client, url, status=503, within=10)
            assert gone["checks"] == {"database": "ok", "broker": "unavailable"}

            proxy.restore()
            back = await readiness(client, url, status=200, within=20)
            assert back["checks"] == {"database": "ok", "broker": "ok"}
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
        await proxy.close()
