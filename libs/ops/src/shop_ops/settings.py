"""Where shop-ops finds each service: that service's own environment variables.

`CATALOG_DATABASE_URL`, `CATALOG_AMQP_URL`, `CATALOG_EXCHANGE` and the `ORDERS_` ones, with
the services' own defaults (a `make up` stack needs none of them set). Only what shop-ops
uses is read: it needs no JWT secret, no ports.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from yarl import URL

from shop_catalog.settings import SCHEMA as CATALOG_SCHEMA
from shop_catalog.settings import CatalogSettings
from shop_common.messaging import ConsumerTopology
from shop_orders.settings import SCHEMA as ORDERS_SCHEMA
from shop_orders.settings import OrdersSettings


class Service(enum.StrEnum):
    CATALOG = "catalog"
    ORDERS = "orders"

    @property
    def other(self) -> Service:
        return Service.ORDERS if self is Service.CATALOG else Service.CATALOG


def _default(settings: type[BaseSettings], name: str) -> Any:
    """The service's own default, so a local stack needs no variable set."""
    return settings.model_fields[name].default


class _CatalogEnvironment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", frozen=True)

    database_url: str = _default(CatalogSettings, "database_url")
    amqp_url: SecretStr = _default(CatalogSettings, "amqp_url")
    exchange: str = _default(CatalogSettings, "exchange")


class _OrdersEnvironment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    database_url: str = _default(OrdersSettings, "database_url")
    amqp_url: SecretStr = _default(OrdersSettings, "amqp_url")
    exchange: str = _default(OrdersSettings, "exchange")


@dataclass(frozen=True)
class Target:
    """One service as shop-ops reaches it: its database role and schema, its broker."""

    service: Service
    database_url: str
    schema: str
    amqp_url: str
    exchange: str

    @property
    def topology(self) -> ConsumerTopology:
        """The service's queues (their names derive from the service, as the worker's do)."""
        return ConsumerTopology(service=self.service.value, exchange=self.exchange)

    @property
    def safe_database_url(self) -> str:
        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def safe_amqp_url(self) -> str:
        url = URL(self.amqp_url)
        return str(url.with_password("***")) if url.password else str(url)


def load_targets() -> dict[Service, Target]:
    """Both services' targets, from the environment (built once per command)."""
    catalog, orders = _CatalogEnvironment(), _OrdersEnvironment()
    return {
        Service.CATALOG: Target(
            Service.CATALOG,
            catalog.database_url,
            CATALOG_SCHEMA,
            catalog.amqp_url.get_secret_value(),
            catalog.exchange,
        ),
        Service.ORDERS: Target(
            Service.ORDERS,
            orders.database_url,
            ORDERS_SCHEMA,
            orders.amqp_url.get_secret_value(),
            orders.exchange,
        ),
    }
