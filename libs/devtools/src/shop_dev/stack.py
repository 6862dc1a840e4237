"""What `make up` runs, read from the services' own settings: processes, URLs, roles, tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from shop_catalog.settings import CatalogSettings
from shop_common.auth import issue_dev_token
from shop_common.db.provision import ServiceDatabase
from shop_common.messaging import ConsumerTopology
from shop_common.settings import ServiceSettings
from shop_dev.errors import DevStackError
from shop_orders.settings import OrdersSettings

__all__ = ["DevStackError", "Process", "Service", "Stack", "http_url"]

S = TypeVar("S", bound=ServiceSettings)
# A server bound to every interface is reached on loopback.
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def http_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to `host`:`port`."""
    host = _WILDCARD_HOSTS.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class Process:
    """One long-running process of the stack and the URL that answers 200 once it is ready."""

    name: str
    ready_url: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    """One service: its name (the prefix of its console scripts) and its settings."""

    name: str
    settings: ServiceSettings

    @property
    def env_prefix(self) -> str:
        return str(self.settings.model_config.get("env_prefix", ""))

    @property
    def api_url(self) -> str:
        return http_url(self.settings.host, self.settings.port)

    @property
    def worker_url(self) -> str:
        return http_url(self.settings.host, self.settings.worker_port)

    @property
    def metrics_url(self) -> str:
        """The API's Prometheus endpoint: a port of its own, not the API's."""
        return http_url(self.settings.host, self.settings.metrics_port)

    def topology(self) -> ConsumerTopology:
        """Its queues and exchanges, named as its worker names them (shop_common.worker)."""
        return ConsumerTopology(service=self.name, exchange=self.settings.exchange)

    def database(self) -> ServiceDatabase:
        """The database, role and schema to provision, as the service's own URL names them."""
        url = make_url(self.settings.database_url)
        if not url.username or not url.database:
            raise DevStackError(
                f"{self.env_prefix}DATABASE_URL must name a user and a database: {url!r}"
            )
        return ServiceDatabase(
            database=url.database,
            schema=self.settings.db_schema,
            role=url.username,
            password=url.password if isinstance(url.password, str) else None,
        )

    def unless_set(self, **values: str) -> dict[str, str]:
        """Environment for this service's processes: `values`, except settings given explicitly."""
        explicit = self.settings.model_fields_set
        return {
            f"{self.env_prefix}{name.upper()}": value
            for name, value in values.items()
            if name not in explicit
        }


@dataclass(frozen=True)
class Stack:
    """Both services, configured exactly as their processes will read the environment."""

    catalog: Service
    orders: Service

    @classmethod
    def from_environment(cls) -> Stack:
        return cls(
            catalog=Service("catalog", _settings("catalog", CatalogSettings)),
            orders=Service("orders", _settings("orders", OrdersSettings)),
        )

    @property
    def services(self) -> tuple[Service, Service]:
        return self.catalog, self.orders

    def workers(self) -> list[Process]:
        return [Process(f"{s.name}-worker", f"{s.worker_url}/readyz") for s in self.services]

    def apis(self) -> list[Process]:
        # Access logs are cheap at dev rates and handy in .run/; Orders calls the Catalog this
        # stack runs, wherever its settings put it. An explicit setting wins over either.
        return [
            Process(
                "catalog-api",
                f"{self.catalog.api_url}/readyz",
                self.catalog.unless_set(access_log="true"),
            ),
            Process(
                "orders-api",
                f"{self.orders.api_url}/readyz",
                self.orders.unless_set(access_log="true", catalog_url=self.catalog.api_url),
            ),
        ]

    def amqp_urls(self) -> dict[str, list[str]]:
        """Each broker URL the services use, with the variables that set it."""
        urls: dict[str, list[str]] = {}
        for s in self.services:
            urls.setdefault(s.settings.amqp_url.get_secret_value(), []).append(
                f"{s.env_prefix}AMQP_URL"
            )
        return urls

    def dev_tokens(self) -> dict[str, str]:
        """An admin's and a customer's token that both services accept."""
        signing = {_hs256_signing(s.settings) for s in self.services}
        key = signing.pop() if len(signing) == 1 else None
        if key is None:
            prefixes = " and ".join(s.env_prefix for s in self.services)
            raise DevStackError(
                "make up mints HS256 dev tokens that both services must accept: give "
                f"{prefixes} the same JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE, and no JWKS_URL."
            )
        secret, issuer, audience = key
        return {
            "ADMIN_TOKEN": issue_dev_token(
                subject="admin", roles=["admin"], secret=secret, issuer=issuer, audience=audience
            ),
            "CUSTOMER_TOKEN": issue_dev_token(
                subject="alice", roles=["customer"], secret=secret, issuer=issuer, audience=audience
            ),
        }


def _settings(name: str, settings_class: type[S]) -> S:
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = settings_class.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        hint = (
            f"\n  `make up` passes JWT_SECRET (a dev-only default in the Makefile) on as "
            f"{prefix}JWT_SECRET: run it through make, or set {prefix}JWT_SECRET yourself."
            if "JWT_SECRET" in problems
            else ""
        )
        raise DevStackError(
            f"the {name} settings ({prefix}*) are not usable: {problems}.{hint}"
        ) from exc


def _hs256_signing(settings: ServiceSettings) -> tuple[str, str, str] | None:
    if settings.jwks_url is not None or settings.jwt_secret is None:
        return None
    return settings.jwt_secret.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
