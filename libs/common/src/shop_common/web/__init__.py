"""HTTP plumbing shared by the services' FastAPI apps: the app factory and what routes use.

`create_service_app` puts problem details, auth, the edge middleware (request ids, load
shedding, body limit, Cache-Control, RED metrics) and health around a service's routers;
`api_resources` opens its database for the lifespan; `serve` runs it, with Prometheus on a
port of its own. Routes take a session from `SessionDep` (or the autocommit pool for a
single read from `ReadsDep`), page parameters from `LimitQuery`/`CursorQuery`, the settings
from `SETTINGS`, and build `Location` with `location`. Worker processes reuse the health
endpoints, `DatabaseProbe` and `SideServer`.
"""

from shop_common.web.app import SETTINGS, Lifespan, api_resources, create_service_app
from shop_common.web.health import READINESS_CHECKS, DatabaseProbe, ReadinessCheck, health_router
from shop_common.web.links import location
from shop_common.web.pagination import CursorQuery, LimitQuery
from shop_common.web.server import SideServer, serve
from shop_common.web.sessions import READS, SESSIONMAKER, ReadsDep, SessionDep, get_session

__all__ = [
    "READINESS_CHECKS",
    "READS",
    "SESSIONMAKER",
    "SETTINGS",
    "CursorQuery",
    "DatabaseProbe",
    "Lifespan",
    "LimitQuery",
    "ReadinessCheck",
    "ReadsDep",
    "SessionDep",
    "SideServer",
    "api_resources",
    "create_service_app",
    "get_session",
    "health_router",
    "location",
    "serve",
]
