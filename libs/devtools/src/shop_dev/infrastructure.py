"""The local PostgreSQL and RabbitMQ: check they answer, then provision each service's role."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg

from shop_common.db.provision import ADMIN_DSN_VARIABLE, ServiceDatabase, provision
from shop_dev.stack import DevStackError

CONNECT_TIMEOUT_SECONDS = 5


async def check_reachable(admin_dsn: str, amqp_urls: Mapping[str, Iterable[str]]) -> None:
    """Raise `DevStackError` saying what to start (or set) unless both answer.

    `amqp_urls` maps each broker URL to the variables that configure it.
    """
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DevStackError(
            f"PostgreSQL is not reachable as a superuser at {without_password(admin_dsn)} "
            f"({exc!r}).\n  Start it (Debian: `pg_ctlcluster 15 main start`) or point "
            f"{ADMIN_DSN_VARIABLE} at a superuser DSN, then run `make up` again."
        ) from exc
    for url, variables in amqp_urls.items():
        try:
            connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
            await connection.close()
        except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
            raise DevStackError(
                f"RabbitMQ is not reachable at {without_password(url)} ({exc!r}).\n"
                f"  Start it (`rabbitmq-server -detached`) or set {' and '.join(variables)}, "
                "then run `make up` again."
            ) from exc


async def provision_all(admin_dsn: str, databases: Iterable[ServiceDatabase]) -> None:
    for database in databases:
        await provision(admin_dsn, database)


def without_password(url: str) -> str:
    """`url` fit for a terminal: the password, if any, masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))
