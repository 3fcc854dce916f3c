"""The dashboard's ASGI app (Starlette): pages, ``/api/`` JSON, sign-in and operator actions.

Every response carries a strict Content-Security-Policy (scripts, styles and images from this
server only, no framing, forms post only here), ``nosniff`` and ``no-referrer``. Actions are
``POST`` forms checked by :class:`~federated.dashboard.auth.OperatorAuth` (session + CSRF);
without an operator token configured the app has no action routes at all (read-only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.device_identity import IdentityError, parse_certificate, parse_public_key
from federated.dashboard.actions import ActionRefused, FleetActions
from federated.dashboard.auth import SESSION_COOKIE, BadCsrf, NotSignedIn, OperatorAuth
from federated.dashboard.charts import Series, heatmap, line_chart
from federated.dashboard.data import FleetData

HERE = Path(__file__).parent
ROUNDS_PER_PAGE = 50
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class DashboardConfig:
    """How the app is served: ``secure_cookies`` under TLS; ``title`` in every page."""

    secure_cookies: bool = False
    title: str = "pifed fleet"


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _ago(t: float | None) -> str:
    if t is None:
        return "never"
    s = int(time.time() - t)
    if s < 120:
        return f"{s} s ago"
    return f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def _utc(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _pct(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def _secs(x: Any) -> str:
    return f"{x:.1f} s" if isinstance(x, (int, float)) else ""


def _int_field(form: Any, name: str) -> int:
    raw = form.get(name)
    if not isinstance(raw, str) or not raw.strip().isdigit() or len(raw.strip()) > 9:
        raise ActionRefused(f"{name} must be a whole number, got {str(raw)[:20]!r}")
    return int(raw.strip())


def _text_field(form: Any, name: str, limit: int = 200, default: str | None = None) -> str:
    raw = form.get(name, default)
    if not isinstance(raw, str) or len(raw) > limit:
        raise ActionRefused(f"{name} must be text of at most {limit} characters")
    return raw.strip()


def build_app(
    data: FleetData,
    auth: OperatorAuth | None = None,
    actions: FleetActions | None = None,
    cfg: DashboardConfig | None = None,
) -> Starlette:
    """The app; ``auth`` and ``actions`` both or neither (None: read-only)."""
    if (auth is None) != (actions is None):
        raise ValueError("operator actions need both an OperatorAuth and FleetActions")
    cfg = cfg or DashboardConfig()
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )
    env.filters.update(ago=_ago, utc=_utc, pct=_pct, secs=_secs)

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        sid = request.cookies.get(SESSION_COOKIE)
        csrf = auth.csrf_for(sid) if auth else None
        html = env.get_template(template).render(
            title=cfg.title,
            path=request.url.path,
            operator=auth is not None,
            signed_in=csrf is not None,
            csrf=csrf,
            live=data.live,
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    # -- pages ---------------------------------------------------------------------------------
    def fleet_page(request: Request) -> Response:
        return page(request, "fleet.html", fleet=data.fleet())

    def _rounds_ctx(request: Request) -> dict[str, Any]:
        before = request.query_params.get("before")
        if before is not None and not before.isdigit():
            before = None
        rounds = data.views.rounds(ROUNDS_PER_PAGE, int(before) if before else None)
        older = (
            rounds[-1]["id"] if len(rounds) == ROUNDS_PER_PAGE and rounds[-1]["id"] > 1 else None
        )
        return {"rounds": rounds, "older": older, "first_page": before is None}

    def rounds_page(request: Request) -> Response:
        return page(
            request, "rounds.html", live_round=data.views.live_round(), **_rounds_ctx(request)
        )

    def rounds_table(request: Request) -> Response:
        return page(request, "rounds_table.html", **_rounds_ctx(request))

    def versions_page(request: Request) -> Response:
        v = data.versions()
        c = v["curves"]
        acc = Series("accuracy", list(zip(c["round"], c["accuracy"], strict=True)))
        bal = Series(
            "balanced accuracy", list(zip(c["round"], c["balanced_accuracy"], strict=True))
        )
        marks = [r for r, p in zip(c["round"], c["promoted"], strict=True) if p]
        chart = line_chart([acc, bal], marks, "round")
        return page(
            request,
            "versions.html",
            versions=list(reversed(v["versions"])),
            deployed=v["deployed_version"],
            chart=chart,
        )

    def _quality(request: Request) -> dict[str, Any] | None:
        raw = request.query_params.get("version")
        if raw is not None and (not raw.isdigit() or len(raw) > 9):
            return None
        return data.views.quality(int(raw) if raw is not None else None)

    def quality_page(request: Request) -> Response:
        q = _quality(request)
        if q is None:
            return page(request, "result.html", status=400, ok=False, message="bad version")
        chart = heatmap(q.get("languages", []), q.get("counts", []))
        return page(request, "quality.html", q=q, chart=chart)

    # -- api -----------------------------------------------------------------------------------
    def api_quality(request: Request) -> Response:
        q = _quality(request)
        if q is None:
            return JSONResponse({"error": "version must be a whole number"}, 400)
        return JSONResponse(q)

    def api_fleet(request: Request) -> Response:
        return JSONResponse(data.fleet())

    def api_devices(request: Request) -> Response:
        return JSONResponse({"devices": data.devices()})

    def api_rounds(request: Request) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit", ROUNDS_PER_PAGE))
            before = int(q["before"]) if "before" in q else None
        except ValueError:
            return JSONResponse({"error": "limit and before must be whole numbers"}, 400)
        if not 1 <= limit <= 500:
            return JSONResponse({"error": "limit must be between 1 and 500"}, 400)
        return JSONResponse({"rounds": data.views.rounds(limit, before)})

    def api_round(request: Request) -> Response:
        found = data.views.round(request.path_params["round_id"])
        if found is None:
            return JSONResponse({"error": "no such round"}, 404)
        return JSONResponse(found)

    def api_live(request: Request) -> Response:
        return JSONResponse({"round": data.views.live_round(), "counts": data.views.round_count()})

    def api_versions(request: Request) -> Response:
        return JSONResponse(data.versions())

    def api_missing(request: Request) -> Response:
        return JSONResponse(
            {"error": f"no endpoint {request.url.path}; see docs/dashboard.md"}, 404
        )

    routes: list[Any] = [
        Route("/", fleet_page),
        Route("/rounds", rounds_page),
        Route("/rounds/table", rounds_table),
        Route("/versions", versions_page),
        Route("/quality", quality_page),
        Route("/api/fleet", api_fleet),
        Route("/api/devices", api_devices),
        Route("/api/rounds", api_rounds),
        Route("/api/rounds/live", api_live),
        Route("/api/rounds/{round_id:int}", api_round),
        Route("/api/versions", api_versions),
        Route("/api/quality", api_quality),
        Route("/api/{rest:path}", api_missing),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if auth is not None and actions is not None:
        routes += _operator_routes(auth, actions, cfg, page, data)
    return Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)])


def _operator_routes(
    auth: OperatorAuth, actions: FleetActions, cfg: DashboardConfig, page: Any, data: FleetData
) -> list[Route]:
    """Sign-in, sign-out and the three actions (POST only)."""

    def login_form(request: Request) -> Response:
        return page(request, "login.html")

    async def login(request: Request) -> Response:
        form = await request.form()
        try:
            sid, _ = auth.sign_in(_text_field(form, "token", 500))
        except (NotSignedIn, ActionRefused):
            actions.log({"event": "dashboard_sign_in", "ok": False})
            return page(request, "login.html", status=403, error="wrong operator token")
        actions.log({"event": "dashboard_sign_in", "ok": True})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            secure=cfg.secure_cookies,
            path="/",
        )
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        sid = request.cookies.get(SESSION_COOKIE)
        try:
            posted = form.get("csrf")
            auth.check(sid, posted if isinstance(posted, str) else None)
        except (NotSignedIn, BadCsrf) as e:
            return page(request, "result.html", status=403, ok=False, message=str(e))
        auth.sign_out(sid)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def act(request: Request) -> Response:
        form = await request.form()
        what = request.path_params["action"]
        if what not in ("rollback", "revoke", "enroll", "certificate"):
            return page(request, "result.html", status=404, ok=False, message=f"no action {what!r}")
        csrf = form.get("csrf")
        try:
            auth.check(request.cookies.get(SESSION_COOKIE), csrf if isinstance(csrf, str) else None)
        except (NotSignedIn, BadCsrf) as e:
            actions.log({"event": "dashboard_action", "action": what, "ok": False, "error": str(e)})
            return page(request, "result.html", status=403, ok=False, message=str(e))
        try:
            if what == "rollback":
                version = _int_field(form, "version")
                actions.rollback(version, _text_field(form, "reason", default=""))
                msg = f"version {version} is now deployed; connected Pis are sent it now"
                return page(request, "result.html", ok=True, message=msg)
            if what == "revoke":
                name = _text_field(form, "name", 64)
                actions.revoke(name)
                return page(request, "result.html", ok=True, message=f"revoked {name}")
            if what == "certificate":
                cert = parse_certificate(_text_field(form, "certificate", 4096))
                name = actions.import_certificate(cert)
                msg = f"stored the certificate of {name}: it is active"
                return page(request, "result.html", ok=True, message=msg)
            name = _text_field(form, "name", 64)
            public_key = parse_public_key(_text_field(form, "public_key", 128))
            token, enrollment_request = actions.enroll(name, public_key)
            return page(
                request, "enrolled.html", name=name, token=token, request_json=enrollment_request
            )
        except IdentityError as e:
            return page(request, "result.html", status=400, ok=False, message=str(e))
        except ActionRefused as e:
            return page(request, "result.html", status=400, ok=False, message=str(e))

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/actions/{action:str}", act, methods=["POST"]),
    ]
