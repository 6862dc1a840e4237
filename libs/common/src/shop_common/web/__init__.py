"""HTTP plumbing shared by the services' FastAPI apps: the app factory and what routes use.

`create_service_app` puts problem details, auth, the edge middleware (request ids, load
shedding, body limit, Cache-Control, RED metrics) and health around a service's routers;
`api_resources` opens its database for the lifespan; `serve` runs it, with Prometheus on a
port of its own. Routes take a session from `SessionDep` (or the driver pool for a hot
statement from `DriverPoolDep`, answered with `json_response`; the hottest reads are
declared with `hot_get`), page parameters from `LimitQuery`/`CursorQuery`, the settings
from `SETTINGS`, and build `Location` with `location`. Worker processes reuse the health
endpoints, `DatabaseProbe` and `SideServer`.
"""

from shop_common.web.app import SETTINGS, Lifespan, api_resources, create_service_app
from shop_common.web.health import READINESS_CHECKS, DatabaseProbe, ReadinessCheck, health_router
from shop_common.web.hot import HotRoute, hot_get
from shop_common.web.links import location
from shop_common.web.numbers import WholeNumber
from shop_common.web.pagination import CursorQuery, LimitQuery
from shop_common.web.problems import (
    FORBIDDEN,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    FieldError,
    Problem,
    problem,
    response_headers,
)
from shop_common.web.responses import encode_json, json_response
from shop_common.web.server import SideServer, serve
from shop_common.web.sessions import (
    DRIVER_POOL,
    SESSIONMAKER,
    DriverPoolDep,
    SessionDep,
    SessionsDep,
    get_session,
)

__all__ = [
    "DRIVER_POOL",
    "FORBIDDEN",
    "PAYLOAD_TOO_LARGE",
    "READINESS_CHECKS",
    "SESSIONMAKER",
    "SETTINGS",
    "UNAUTHORIZED",
    "CursorQuery",
    "DatabaseProbe",
    "DriverPoolDep",
    "FieldError",
    "HotRoute",
    "Lifespan",
    "LimitQuery",
    "Problem",
    "ReadinessCheck",
    "SessionDep",
    "SessionsDep",
    "SideServer",
    "WholeNumber",
    "api_resources",
    "create_service_app",
    "encode_json",
    "get_session",
    "health_router",
    "hot_get",
    "json_response",
    "location",
    "problem",
    "response_headers",
    "serve",
]
