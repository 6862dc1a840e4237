"""FastAPI dependencies that turn the Authorization header into a Principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop_common.auth.tokens import Principal, TokenVerifier
from shop_common.errors import Forbidden, Unauthorized
from shop_common.state import StateKey

TOKEN_VERIFIER = StateKey[TokenVerifier]("token_verifier")
_bearer = HTTPBearer(auto_error=False, description="JWT issued by the shop's identity provider")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer token is required.")
    principal = await TOKEN_VERIFIER.from_request(request).verify(credentials.credentials)
    if not principal.roles:
        raise Forbidden("The token carries no role that this service recognises.")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This operation needs the admin role.")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
