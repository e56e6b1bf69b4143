"""Who the dashboard answers: the ``Host`` check and the token its actions need.

* :class:`HostCheck` refuses requests that name another host (DNS rebinding: a web page
  elsewhere reaching this server through a DNS name that points here). The decision is
  Starlette's ``TrustedHostMiddleware``, which parses the header by its grammar (so
  ``127.0.0.1:8787@evil.example`` or ``[::1]:8787`` are read as what they are); only the refusal
  is ours, a 421 that says how to open the dashboard. Every answer gets the security headers.
* :func:`require_token` is the dependency of the actions (cancel, submitting a published
  pipeline): the token printed at start, in ``X-Parallelrun-Token`` or ``Authorization: Bearer``,
  read by ``fastapi.security`` (so the OpenAPI document describes both).

Example::

    app.add_middleware(HostCheck, allowed=LOOPBACK_HOSTS)
    @router.post("/api/runs/{run_id}/cancel", dependencies=[Depends(require_token("cancel"))])
"""

from __future__ import annotations

import secrets
from typing import Optional

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse

from parallelrun.ui.routes.context import Ctx

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: the header the dashboard's page and scripts send the token in
TOKEN_HEADER = "X-Parallelrun-Token"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
]
#: set in a request's scope once TrustedHostMiddleware has let it through
_HOST_ALLOWED = "parallelrun.host_allowed"


class HostCheck:
    """Plain ASGI middleware (event streams pass through unbuffered): requests for host names
    outside ``allowed`` (None: any) get a 421; every response gets the security headers."""

    def __init__(self, app, allowed: frozenset[str] | None):
        async def passed(scope, receive, send):
            scope[_HOST_ALLOWED] = True
            await app(scope, receive, send)

        self.checked = TrustedHostMiddleware(
            passed, allowed_hosts=["*"] if allowed is None else sorted(allowed), www_redirect=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.checked(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers") or []) + _SECURITY_HEADERS
            await send(message)

        async def if_allowed(message):
            # what TrustedHostMiddleware answers a refused host is replaced by the 421 below
            if scope.get(_HOST_ALLOWED):
                await with_headers(message)

        await self.checked(scope, receive, if_allowed)
        if not scope.get(_HOST_ALLOWED):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            refusal = JSONResponse(
                {"detail": f"host {host!r} is not served here; open the dashboard as "
                           "http://127.0.0.1:<port>/ (or start it with --host)"},
                status_code=421)
            await refusal(scope, receive, with_headers)


_token_header = APIKeyHeader(name=TOKEN_HEADER, auto_error=False,
                             description="The token `parallelrun ui` printed when it started.")
_bearer = HTTPBearer(auto_error=False, description=f"The same token, as {TOKEN_HEADER} takes.")


def require_token(action: str):
    """A dependency refusing (403) requests without the dashboard's token; ``action`` names what
    was refused in the message. The token is the app context's ``cancel_token`` (None:
    ``action`` is turned off). Example: ``dependencies=[Depends(require_token("cancel"))]``."""

    async def check(ctx: Ctx, header: Optional[str] = Depends(_token_header),
              bearer: Optional[HTTPAuthorizationCredentials] = Depends(_bearer)) -> None:
        expected = ctx.cancel_token
        given = header if header is not None else bearer.credentials if bearer else None
        if expected is None:
            raise HTTPException(403, f"{action} is turned off on this dashboard")
        if not given or not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(403, f"{action} needs the token the dashboard printed when it "
                                     f"started (header {TOKEN_HEADER})")

    return check


def new_token() -> str:
    """A cancel token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)
