"""`shop-token`: print a signed development token (HS256, secret from JWT_SECRET)."""

from __future__ import annotations

import argparse
import os
import sys

from shop_common.auth import ROLES, issue_dev_token
from shop_common.settings import ServiceSettings

# What the services expect unless their <SERVICE>_JWT_ISSUER / _AUDIENCE say otherwise.
DEFAULT_ISSUER: str = ServiceSettings.model_fields["jwt_issuer"].default
DEFAULT_AUDIENCE: str = ServiceSettings.model_fields["jwt_audience"].default


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shop-token", description=__doc__)
    parser.add_argument("--sub", default="alice", help="subject (user id)")
    parser.add_argument("--role", default="customer", choices=sorted(ROLES))
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    secret = os.environ.get("JWT_SECRET")
    if not secret:
        sys.exit(
            "shop-token: set JWT_SECRET (the dev HS256 secret the services use); "
            "`make token` passes the Makefile's dev default"
        )
    print(  # noqa: T201
        issue_dev_token(
            subject=args.sub,
            roles=[args.role],
            secret=secret,
            issuer=os.environ.get("JWT_ISSUER") or DEFAULT_ISSUER,
            audience=os.environ.get("JWT_AUDIENCE") or DEFAULT_AUDIENCE,
            ttl_seconds=args.ttl,
        )
    )
