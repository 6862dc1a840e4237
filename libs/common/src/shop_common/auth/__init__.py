"""JWT bearer authentication: token verification and FastAPI dependencies."""

from shop_common.auth.dependencies import (
    AdminDep,
    PrincipalDep,
    current_principal,
    require_admin,
)
from shop_common.auth.tokens import ROLES, Principal, TokenVerifier, issue_dev_token

__all__ = [
    "ROLES",
    "AdminDep",
    "Principal",
    "PrincipalDep",
    "TokenVerifier",
    "current_principal",
    "issue_dev_token",
    "require_admin",
]
