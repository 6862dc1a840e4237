"""The local PostgreSQL and RabbitMQ: check they answer, then provision each service's role.

Every failure a newcomer meets here (nothing listening, a password refused, a vhost that does
not exist, a user that is no superuser) becomes a `DevStackError` that says what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

import aio_pika
import asyncpg
from aiormq.exceptions import ProbableAuthenticationError

from shop_catalog.events.handlers import HANDLERS as CATALOG_HANDLERS
from shop_common.db.provision import ADMIN_DSN_VARIABLE, ServiceDatabase, provision
from shop_common.messaging import ensure_topology
from shop_dev.errors import DevStackError
from shop_dev.stack import Stack
from shop_orders.events.handlers import HANDLERS as ORDERS_HANDLERS

CONNECT_TIMEOUT_SECONDS = 5
# The event types each service's worker binds its queue to (its handlers).
ROUTING_KEYS = {"catalog": sorted(CATALOG_HANDLERS), "orders": sorted(ORDERS_HANDLERS)}
README = "see Requirements and Troubleshooting in README.md"

_START_POSTGRES = (
    "Start it (Debian/Ubuntu: `sudo systemctl start postgresql`, or `pg_ctlcluster 15 main start`;"
    " macOS: `brew services start postgresql@17`)"
)
_START_RABBITMQ = (
    "Start it (Debian/Ubuntu: `sudo systemctl start rabbitmq-server`; "
    "macOS: `brew services start rabbitmq`)"
)


async def check_reachable(admin_dsn: str, amqp_urls: Mapping[str, Iterable[str]]) -> None:
    """Raise `DevStackError` saying what to start (or set) unless both answer.

    `amqp_urls` maps each broker URL to the variables that configure it.
    """
    await check_postgres(admin_dsn)
    for url, variables in amqp_urls.items():
        await check_rabbitmq(url, list(variables))


async def check_postgres(admin_dsn: str) -> None:
    shown = without_password(admin_dsn)
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise DevStackError(
            f"PostgreSQL does not answer at {_host_port(admin_dsn, 5432)} ({_reason(exc)}).\n"
            f"  {_START_POSTGRES}, or point {ADMIN_DSN_VARIABLE} at a superuser DSN of yours "
            f"(now {shown}), then run `make up` again."
        ) from exc
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise DevStackError(
            f"PostgreSQL refused the superuser login {shown}: {exc}.\n"
            f"  make up provisions as a superuser. Either set {ADMIN_DSN_VARIABLE}="
            f"postgresql://postgres:<password>@{_host_port(admin_dsn, 5432)}/postgres (stock "
            "Debian/Ubuntu ask for a password on 127.0.0.1), or allow `trust` for 127.0.0.1 in "
            f"pg_hba.conf; {README}."
        ) from exc
    except asyncpg.PostgresError as exc:
        raise DevStackError(f"PostgreSQL refused {shown}: {exc!r}; {README}.") from exc
    try:
        superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = user")
    finally:
        await conn.close()
    if not superuser:
        raise DevStackError(
            f"{shown} logs in, but not as a superuser: make up creates roles, a database and "
            f"schemas. Point {ADMIN_DSN_VARIABLE} at a superuser (usually `postgres`)."
        )


async def check_rabbitmq(url: str, variables: list[str]) -> None:
    shown = without_password(url)
    setting = " and ".join(variables)
    # aiormq logs each failed attempt on its own; the message below says it better.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    try:
        connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except ProbableAuthenticationError as exc:
        raise DevStackError(
            f"RabbitMQ refused the login in {shown} (set by {setting}).\n"
            "  Use a user the broker knows (`rabbitmqctl list_users`). The default `guest` may "
            "log in from localhost only; for another user: `rabbitmqctl add_user shop <password>`"
            " and `rabbitmqctl set_permissions -p / shop '.*' '.*' '.*'`, then set "
            f"{setting}=amqp://shop:<password>@127.0.0.1:5672/; {README}."
        ) from exc
    except (OSError, TimeoutError) as exc:
        if _connected_then_closed(exc):
            raise DevStackError(_vhost_problem(url, shown, setting)) from exc
        raise DevStackError(
            f"RabbitMQ does not answer at {_host_port(url, 5672)} ({_reason(exc)}).\n"
            f"  {_START_RABBITMQ}, or set {setting} (now {shown}), then run `make up` again."
        ) from exc
    except aio_pika.exceptions.AMQPError as exc:
        raise DevStackError(_vhost_problem(url, shown, setting)) from exc
    await connection.close()


def _vhost_problem(url: str, shown: str, setting: str) -> str:
    vhost = unquote(urlsplit(url).path[1:]) or "/"
    return (
        f"RabbitMQ at {_host_port(url, 5672)} accepted the login but closed the connection: the "
        f"vhost {vhost!r} of {shown} (set by {setting}) does not exist or the user has no "
        f"rights on it.\n  Create it: `rabbitmqctl add_vhost {vhost}` and "
        f"`rabbitmqctl set_permissions -p {vhost} <user> '.*' '.*' '.*'`, or fix {setting}."
    )


def _connected_then_closed(exc: BaseException) -> bool:
    """aiormq reports a Connection.Close during the handshake as an (OSError) frame error."""
    return "Connection.Close" in str(exc) or "Connection.OpenOk" in str(exc)


async def declare_topologies(stack: Stack) -> None:
    """Both services' exchanges, queues and bindings, before any worker starts.

    Each worker declares its own on start-up too; doing it here first means the events
    already waiting in an outbox (the seed's) are routable the moment either relay runs.
    """
    for service in stack.services:
        await ensure_topology(
            service.settings.amqp_url.get_secret_value(),
            service.topology(),
            ROUTING_KEYS[service.name],
        )


async def provision_all(admin_dsn: str, databases: Iterable[ServiceDatabase]) -> None:
    for database in databases:
        try:
            await provision(admin_dsn, database)
        except asyncpg.PostgresError as exc:
            raise DevStackError(
                f"provisioning role {database.role} and schema "
                f"{database.database}.{database.schema} failed: {exc!r}"
            ) from exc


async def check_service_login(url: str, variable: str) -> None:
    """The service's own role can log in (the first thing its migrations do)."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    shown = without_password(url)
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        user = urlsplit(dsn).username
        raise DevStackError(
            f"PostgreSQL refused the service login {shown} ({variable}): {exc}.\n"
            "  The role exists now; this server wants a password for it. Put one in the URL, "
            f"e.g. {variable}=postgresql+asyncpg://{user}:<password>@{_host_port(dsn, 5432)}/"
            f"{urlsplit(dsn).path.lstrip('/')} "
            "(make up sets it on the role), or allow `trust` for 127.0.0.1 in pg_hba.conf; "
            f"{README}."
        ) from exc
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DevStackError(f"the service login {shown} ({variable}) failed: {exc!r}") from exc
    await conn.close()


def without_password(url: str) -> str:
    """`url` fit for a terminal: the password, if any, masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))


def _host_port(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {CONNECT_TIMEOUT_SECONDS}s"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused: nothing listens there"
    return repr(exc)
