"""ASGI middleware that refuses request bodies over a size limit with 413."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.web.problems import problem_response


class BodySizeLimit:
    """Checks Content-Length up front and counts streamed bytes for chunked bodies."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._limit_message = f"Request bodies are limited to {max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            too_large = length.isdigit()
            response = problem_response(
                413 if too_large else 400,
                slug="payload-too-large" if too_large else "bad-request",
                detail=self._limit_message if too_large else "Invalid Content-Length header.",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException raised while reading the body.
                    raise HTTPException(413, self._limit_message)
            return message

        await self.app(scope, limited_receive, send)
