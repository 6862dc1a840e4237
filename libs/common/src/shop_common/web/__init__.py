"""HTTP plumbing shared by the services' FastAPI apps: the app factory and what routes use.

`create_service_app` puts problem details, auth, body limits, request ids, metrics and
health around a service's routers; `api_resources` opens its database for the lifespan.
Routes take a session from `SessionDep` (or the driver pool for a hot statement from
`DriverPoolDep`, answered with `json_response`), page parameters from `LimitQuery`/`CursorQuery`
and the settings from `SETTINGS`. Worker processes reuse the health endpoints.
"""

from shop_common.web.app import SETTINGS, Lifespan, api_resources, create_service_app, serve
from shop_common.web.health import READINESS_CHECKS, ReadinessCheck, health_router
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
    "DriverPoolDep",
    "FieldError",
    "Lifespan",
    "LimitQuery",
    "Problem",
    "ReadinessCheck",
    "SessionDep",
    "SessionsDep",
    "WholeNumber",
    "api_resources",
    "create_service_app",
    "encode_json",
    "get_session",
    "health_router",
    "json_response",
    "problem",
    "response_headers",
    "serve",
]
