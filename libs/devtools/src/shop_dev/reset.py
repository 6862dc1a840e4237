"""`make reset`: drop what `make up` created, so the next `make up` starts from nothing.

In PostgreSQL: each service's schema (with its tables and data) and role, and the database
when nothing else is left in it. In RabbitMQ: each service's queues (main, retry, parking)
and exchanges (its dead-letter exchange and the shared events exchange). Names come from the
same settings `make up` reads, so a stack configured elsewhere (other URLs, another vhost) is
reset where it lives, and nothing else is touched. It asks first: `YES=1` answers for you.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
import asyncpg
from aiormq.exceptions import AMQPChannelError

from shop_common.db.provision import ServiceDatabase
from shop_common.messaging import ConsumerTopology
from shop_dev.errors import DevStackError
from shop_dev.infrastructure import check_postgres, check_rabbitmq, without_password
from shop_dev.stack import Stack

_NEVER_DROPPED = {"postgres", "template0", "template1"}
_LOCK_TIMEOUT = "5s"  # a session we do not know about holds a lock: fail, do not hang


@dataclass
class _Broker:
    url: str
    queues: dict[str, int] = field(default_factory=dict)  # existing queue -> messages
    consumers: dict[str, int] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)


@dataclass
class ResetPlan:
    admin_dsn: str
    targets: list[ServiceDatabase]
    schemas: dict[tuple[str, str], int] = field(default_factory=dict)  # existing -> tables
    roles: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    sessions: dict[str, int] = field(default_factory=dict)  # role -> connected sessions
    brokers: list[_Broker] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.schemas or self.roles or any(b.queues or b.exchanges for b in self.brokers)
        )

    def blockers(self) -> list[str]:
        """Why dropping now would break something that runs."""
        found = [
            f"{count} PostgreSQL session(s) are logged in as {role}"
            for role, count in self.sessions.items()
        ]
        found += [
            f"queue {queue} has {count} consumer(s)"
            for broker in self.brokers
            for queue, count in broker.consumers.items()
            if count
        ]
        return found

    def describe(self) -> list[str]:
        lines = [f"PostgreSQL ({without_password(self.admin_dsn)}):"]
        for (database, schema), tables in self.schemas.items():
            lines.append(f"  schema {database}.{schema} ({tables} tables, with their data)")
        if self.roles:
            lines.append(f"  role{'s' if len(self.roles) > 1 else ''} {', '.join(self.roles)}")
        lines += [f"  database {db}, if nothing else is left in it" for db in self.databases]
        if len(lines) == 1:
            lines.append("  nothing of ours")
        for broker in self.brokers:
            lines.append(f"RabbitMQ ({without_password(broker.url)}):")
            by_queue: dict[str, list[str]] = {}
            for queue in broker.queues:
                by_queue.setdefault(queue.split(".retry.")[0].removesuffix(".parking"), []).append(
                    queue
                )
            for main, queues in by_queue.items():
                messages = sum(broker.queues[q] for q in queues)
                lines.append(
                    f"  queue {main} with its retry and parking queues ({len(queues)} queues, "
                    f"{messages} messages)"
                )
            if broker.exchanges:
                lines.append(f"  exchanges {', '.join(broker.exchanges)}")
            if not broker.queues and not broker.exchanges:
                lines.append("  nothing of ours")
        return lines

    async def execute(self, say: Callable[[str], None]) -> None:
        await self._drop_postgres(say)
        for broker in self.brokers:
            await _drop_broker_objects(broker, say)

    async def _drop_postgres(self, say: Callable[[str], None]) -> None:
        maintenance = await _connect(self.admin_dsn, "postgres")
        try:
            await maintenance.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT}'")
            for database in sorted({t.database for t in self.targets}):
                if not await _database_exists(maintenance, database):
                    continue
                here = [t for t in self.targets if t.database == database]
                await _drop_in_database(self, database, here, say)
            for role in self.roles:
                try:
                    await maintenance.execute(f'DROP ROLE IF EXISTS "{role}"')
                    say(f"dropped role {role}")
                except asyncpg.DependentObjectsStillExistError as exc:
                    say(f"kept role {role}: it still has objects or rights elsewhere ({exc})")
            for database in self.databases:
                await _drop_database_if_empty(self.admin_dsn, maintenance, database, say)
        finally:
            await maintenance.close()


async def plan_reset(stack: Stack, admin_dsn: str) -> ResetPlan:
    """Look (read only) at what of ours exists; `DevStackError` if a server is unreachable."""
    targets = [service.database() for service in stack.services]
    plan = ResetPlan(admin_dsn=admin_dsn, targets=targets)
    await check_postgres(admin_dsn)
    maintenance = await _connect(admin_dsn, "postgres")
    try:
        roles = sorted({t.role for t in targets})
        plan.roles = [
            r["rolname"]
            for r in await maintenance.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1", roles
            )
        ]
        plan.sessions = {
            r["usename"]: r["n"]
            for r in await maintenance.fetch(
                "SELECT usename, count(*) AS n FROM pg_stat_activity "
                "WHERE usename = ANY($1::text[]) GROUP BY usename",
                roles,
            )
        }
        for database in sorted({t.database for t in targets}):
            if not await _database_exists(maintenance, database):
                continue
            if database not in _NEVER_DROPPED:
                plan.databases.append(database)
            conn = await _connect(admin_dsn, database)
            try:
                for target in (t for t in targets if t.database == database):
                    tables = await conn.fetchval(
                        "SELECT count(c.oid) FROM pg_namespace n LEFT JOIN pg_class c "
                        "ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') "
                        "WHERE n.nspname = $1 GROUP BY n.oid",
                        target.schema,
                    )
                    if tables is not None:
                        plan.schemas[(database, target.schema)] = tables
            finally:
                await conn.close()
    finally:
        await maintenance.close()
    for url, variables in stack.amqp_urls().items():
        await check_rabbitmq(url, variables)
        services = [s for s in stack.services if s.settings.amqp_url.get_secret_value() == url]
        plan.brokers.append(await _inspect_broker(url, [s.topology() for s in services]))
    return plan


def _queue_names(topology: ConsumerTopology) -> list[str]:
    retries = sorted({topology.retry_queue(n) for n in range(len(topology.retry_delays))})
    return [topology.queue, *retries, topology.parking_queue]


async def _inspect_broker(url: str, topologies: list[ConsumerTopology]) -> _Broker:
    broker = _Broker(url=url)
    exchanges = [t.dead_letter_exchange for t in topologies]
    exchanges += sorted({t.exchange for t in topologies})
    connection = await aio_pika.connect(url)
    try:
        for name in (q for t in topologies for q in _queue_names(t)):
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except AMQPChannelError:
                continue  # the broker closed that channel: no such queue
            result = queue.declaration_result
            broker.queues[name] = result.message_count or 0
            broker.consumers[name] = result.consumer_count or 0
            await channel.close()
        for name in exchanges:
            channel = await connection.channel()
            try:
                await channel.declare_exchange(name, passive=True)
            except AMQPChannelError:
                continue
            broker.exchanges.append(name)
            await channel.close()
    finally:
        await connection.close()
    return broker


async def _drop_broker_objects(broker: _Broker, say: Callable[[str], None]) -> None:
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        for name in broker.queues:
            await channel.queue_delete(name)
        for name in broker.exchanges:
            await channel.exchange_delete(name)
        say(
            f"deleted {len(broker.queues)} queues and the exchanges "
            f"{', '.join(broker.exchanges) or '(none)'} in {without_password(broker.url)}"
        )
    finally:
        await connection.close()


async def _drop_in_database(
    plan: ResetPlan, database: str, targets: list[ServiceDatabase], say: Callable[[str], None]
) -> None:
    conn = await _connect(plan.admin_dsn, database)
    try:
        await conn.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT}'")
        for target in targets:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{target.schema}" CASCADE')
            if (database, target.schema) in plan.schemas:
                say(f"dropped schema {database}.{target.schema}")
            if target.role in plan.roles:
                # Its grants here (CONNECT, the search_path setting) go with it.
                await conn.execute(f'DROP OWNED BY "{target.role}" CASCADE')
    finally:
        await conn.close()


async def _drop_database_if_empty(
    admin_dsn: str, maintenance: asyncpg.Connection, database: str, say: Callable[[str], None]
) -> None:
    if not await _database_exists(maintenance, database):
        return
    conn = await _connect(admin_dsn, database)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        )
        schemas = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname NOT IN "
            "('public', 'pg_catalog', 'information_schema', 'pg_toast') "
            "AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'"
        )
    finally:
        await conn.close()
    if left or schemas:
        say(f"kept database {database}: it holds other schemas or tables")
        return
    try:
        await maintenance.execute(f'DROP DATABASE "{database}"')
        say(f"dropped database {database}")
    except asyncpg.ObjectInUseError:
        say(f"kept database {database}: other sessions are connected to it")


async def _database_exists(conn: asyncpg.Connection, database: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))


async def _connect(admin_dsn: str, database: str) -> asyncpg.Connection:
    base, _, query = admin_dsn.partition("?")
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    dsn = f"{root}/{database}" + (f"?{query}" if query else "")
    try:
        return await asyncpg.connect(dsn, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DevStackError(f"cannot connect to {without_password(dsn)}: {exc!r}") from exc
