"""Idempotent provisioning of a service's database role and schema (run as a superuser).

Each service owns one schema through its own login role. Nothing is granted to PUBLIC:
a service role can connect to the shop database and use its own schema, and nothing else
(not `public`, not the other service's schema). Safe to rerun and to run concurrently.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

__all__ = [
    "ADMIN_DSN_VARIABLE",
    "DEFAULT_ADMIN_DSN",
    "ServiceDatabase",
    "admin_dsn",
    "main",
    "provision",
]

# Where provisioning finds its superuser: the one default for `shop-provision`, `make up`
# and the test fixtures (a local cluster's `postgres` superuser, peer/trust authentication).
ADMIN_DSN_VARIABLE = "PROVISION_DATABASE_URL"
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Serialises concurrent provisioners (two services' jobs often start together).
_ADVISORY_KEY = 0x5_0_0_9


@dataclass(frozen=True)
class ServiceDatabase:
    database: str
    schema: str
    role: str
    password: str | None = None

    def __post_init__(self) -> None:
        for value in (self.database, self.schema, self.role):
            if not _IDENT.match(value):
                raise ValueError(f"not a safe SQL identifier: {value!r}")


def admin_dsn(environ: Mapping[str, str] | None = None) -> str:
    """The superuser DSN: `PROVISION_DATABASE_URL` if set, else `DEFAULT_ADMIN_DSN`."""
    environ = os.environ if environ is None else environ
    return environ.get(ADMIN_DSN_VARIABLE) or DEFAULT_ADMIN_DSN


def _q(ident: str) -> str:
    return f'"{ident}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision(admin_dsn: str, target: ServiceDatabase) -> None:
    """Create (or repair) database, role, schema and grants for one service.

    `admin_dsn` is a superuser DSN to any database of the cluster (usually `postgres`).
    """
    maintenance = await asyncpg.connect(_with_database(admin_dsn, "postgres"))
    try:
        await maintenance.execute("SELECT pg_advisory_lock($1)", _ADVISORY_KEY)
        exists = await maintenance.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", target.database
        )
        if not exists:
            await maintenance.execute(f"CREATE DATABASE {_q(target.database)}")
        role_exists = await maintenance.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", target.role
        )
        if not role_exists:
            await maintenance.execute(f"CREATE ROLE {_q(target.role)} LOGIN")
        password = f"PASSWORD {_literal(target.password)}" if target.password is not None else ""
        await maintenance.execute(
            f"ALTER ROLE {_q(target.role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"NOREPLICATION NOBYPASSRLS {password}"
        )
        db = await asyncpg.connect(_with_database(admin_dsn, target.database))
        try:
            async with db.transaction():
                await _grant(db, target)
        finally:
            await db.close()
    finally:
        await maintenance.close()


async def _grant(db: asyncpg.Connection, t: ServiceDatabase) -> None:
    role, schema, database = _q(t.role), _q(t.schema), _q(t.database)
    statements = [
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA public FROM {role}",
        f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}",
        f"ALTER SCHEMA {schema} OWNER TO {role}",
        f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        f"ALTER ROLE {role} IN DATABASE {database} SET search_path = {schema}",
    ]
    for statement in statements:
        await db.execute(statement)


def _with_database(dsn: str, database: str) -> str:
    base, _, tail = dsn.partition("?")
    scheme_end = base.find("://") + 3
    slash = base.find("/", scheme_end)
    root = base if slash == -1 else base[:slash]
    root = root.replace("postgresql+asyncpg://", "postgresql://", 1)
    return f"{root}/{database}" + (f"?{tail}" if tail else "")


def main(argv: list[str] | None = None) -> None:
    """`shop-provision catalog|orders`: reads PROVISION_DATABASE_URL and <SERVICE>_DB_PASSWORD."""
    parser = argparse.ArgumentParser(prog="shop-provision", description=main.__doc__)
    parser.add_argument("service", help="service name; also the default schema name")
    parser.add_argument("--database", default=os.environ.get("SHOP_DATABASE", "shop"))
    parser.add_argument("--schema", default=None)
    parser.add_argument("--role", default=None)
    args = parser.parse_args(argv)
    service: str = args.service
    target = ServiceDatabase(
        database=args.database,
        schema=args.schema or service,
        role=args.role or f"{service}_svc",
        password=os.environ.get(f"{service.upper()}_DB_PASSWORD") or None,
    )
    asyncio.run(provision(admin_dsn(), target))
    print(f"provisioned role {target.role} and schema {target.database}.{target.schema}")  # noqa: T201
