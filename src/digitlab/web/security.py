"""`SecurityHeaders`: ASGI middleware that adds the same security headers to every answer the app gives."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page's own files only: no inline script or style, no other origin; images also from data:
# URLs (the 28x28 the model saw) and blob: URLs (an uploaded photo, decoded through an <img> where
# createImageBitmap cannot). Sent with every answer (JSON included), with the other headers.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response (an app's own or an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
