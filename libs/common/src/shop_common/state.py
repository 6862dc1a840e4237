"""Typed application state: one `StateKey` per value an app keeps, instead of bare `app.state`.

Each key lives beside the code that owns the value:

    PRICER = StateKey[Pricer]("pricer")
    PRICER.set(app, Pricer(...))                             # in the lifespan
    PricerDep = Annotated[Pricer, Depends(PRICER.from_request)]   # for routes
"""

from __future__ import annotations

from typing import Generic, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request

__all__ = ["StateKey"]

T = TypeVar("T")


class StateKey(Generic[T]):
    """A named, typed slot in `app.state`; reading an unset slot says which one."""

    def __init__(self, name: str) -> None:
        self.name = name

    def set(self, app: Starlette, value: T) -> None:
        setattr(app.state, self.name, value)

    def get(self, app: Starlette) -> T:
        try:
            value: T = getattr(app.state, self.name)
        except AttributeError:
            raise RuntimeError(
                f"app.state.{self.name} is not set (is the lifespan running?)"
            ) from None
        return value

    def from_request(self, request: Request) -> T:
        return self.get(request.app)

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"
