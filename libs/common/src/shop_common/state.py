"""Typed application state: one `StateKey` per value an app keeps, instead of bare `app.state`.

Each key lives beside the code that owns the value; the lifespan sets it, routes read it:

>>> import asyncio, httpx
>>> from typing import Annotated
>>> from fastapi import Depends, FastAPI
>>> GREETING = StateKey[str]("greeting")
>>> GreetingDep = Annotated[str, Depends(GREETING.dependency)]
>>> app = FastAPI()
>>> @app.get("/")
... def hello(greeting: GreetingDep) -> str:
...     return greeting
>>> GREETING.get(app)
Traceback (most recent call last):
RuntimeError: app.state.greeting is not set (is the lifespan running?)
>>> GREETING.set(app, "hello")  # in the lifespan
>>> async def get(path: str) -> object:
...     transport = httpx.ASGITransport(app=app)
...     async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
...         return (await client.get(path)).json()
>>> asyncio.run(get("/"))
'hello'
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

    async def dependency(self, request: Request) -> T:
        """For `Depends(...)`. Async on purpose: FastAPI runs a plain `def` dependency in a
        worker thread, a thread hop on every request for a dictionary lookup."""
        return self.get(request.app)

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"
