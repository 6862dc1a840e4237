"""shop_common.metrics: observations that wait for the commit, pool gauges read at scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shop_common.db import create_engine
from shop_common.metrics import PoolGauges, after_commit
from tests.support import ServiceDb


@pytest.fixture
async def engine(provision_service: Callable[[str], ServiceDb]) -> AsyncIterator[AsyncEngine]:
    db = provision_service("orders")
    engine = create_engine(db.url, schema=db.schema, application_name="metrics-test")
    yield engine
    await engine.dispose()


@pytest.mark.integration
async def test_an_observation_runs_after_commit_and_never_after_rollback(
    engine: AsyncEngine,
) -> None:
    seen: list[str] = []
    sessions = async_sessionmaker(engine, class_=AsyncSession)
    async with sessions() as session:
        async with session.begin():
            await session.execute(text("SELECT 1"))
            after_commit(session, lambda: seen.append("committed"))
            assert seen == []
        assert seen == ["committed"]

        async def failing() -> None:
            async with session.begin():
                after_commit(session, lambda: seen.append("rolled back"))
                raise RuntimeError("the unit of work failed")

        with pytest.raises(RuntimeError):
            await failing()
        async with session.begin():  # the next transaction of the same session
            await session.execute(text("SELECT 1"))
    assert seen == ["committed"]


@pytest.mark.integration
async def test_a_failing_observation_does_not_fail_the_commit(engine: AsyncEngine) -> None:
    def broken() -> None:
        raise ValueError("a bug in a metric")

    async with async_sessionmaker(engine)() as session, session.begin():
        after_commit(session, broken)
        await session.execute(text("SELECT 1"))


def test_pool_gauges_add_up_pools_of_one_name_until_untracked() -> None:
    registry = CollectorRegistry()
    gauges = PoolGauges()
    registry.register(gauges)
    untrack_a = gauges.track("engine", in_use=lambda: 2, capacity=10)
    gauges.track("engine", in_use=lambda: 1, capacity=5)
    gauges.track("driver", in_use=lambda: 3, capacity=4)
    assert registry.get_sample_value("shop_db_pool_connections_in_use", {"pool": "engine"}) == 3
    assert registry.get_sample_value("shop_db_pool_connections_max", {"pool": "engine"}) == 15
    assert registry.get_sample_value("shop_db_pool_connections_in_use", {"pool": "driver"}) == 3
    untrack_a()
    assert registry.get_sample_value("shop_db_pool_connections_in_use", {"pool": "engine"}) == 1


def test_a_pool_that_cannot_be_read_is_left_out_of_the_scrape() -> None:
    registry = CollectorRegistry()
    gauges = PoolGauges()
    registry.register(gauges)

    def closing() -> int:
        raise RuntimeError("pool closed")

    gauges.track("driver", in_use=closing, capacity=4)
    assert b"shop_db_pool_connections_in_use{" not in generate_latest(registry)
