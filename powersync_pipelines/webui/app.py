"""The page's web app (Starlette, served by uvicorn): ``/`` every site, ``/site/{id}`` one, ``/api/site/{id}``
its status as JSON, ``/static/plotly.js``. Each request reads the store afresh, read-only."""

from __future__ import annotations

import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..config import SitesFile
from ..control.clock import Clock
from ..control.context import ControlContext
from ..storage import StorageError
from .charts import plotly_js
from .model import site_view
from .page import render
from .store import ReadOnlyHistory


def create_app(sites: SitesFile, db: str | Path, dagster_url: str | None = None, clock: Clock | None = None
               ) -> Starlette:
    """The app for ``sites`` reading the DuckDB file ``db``; ``dagster_url`` adds links to the runs behind it."""
    lock = threading.Lock()  # one reader at a time: the writer never waits behind a queue of page loads
    clock = clock or Clock()

    def views(only: str | None = None):  # noqa: ANN202
        chosen = [s for s in sites.sites if only is None or s.id == only]
        with lock:
            ctx = ControlContext(ReadOnlyHistory(db), clock)
            return [site_view(ctx, s) for s in chosen]

    def page(only: str | None = None) -> Response:
        try:
            return HTMLResponse(render(views(only), dagster_url))
        except StorageError as exc:  # before the pipeline's first run: say so, and serve again once it has run
            return PlainTextResponse(f"{exc}", status_code=503, headers={"Retry-After": "60"})

    def index(request: Request) -> Response:
        return page()

    def one(request: Request) -> Response:
        sid = request.path_params["site_id"]
        if sid not in {s.id for s in sites.sites}:
            return PlainTextResponse(f"no site {sid!r} in {sites.path}", status_code=404)
        return page(sid)

    def api(request: Request) -> Response:
        sid = request.path_params["site_id"]
        if sid not in {s.id for s in sites.sites}:
            return JSONResponse({"error": f"no site {sid!r}"}, status_code=404)
        try:
            v = views(sid)[0]
        except StorageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"site_id": sid, "time_zone": v.site.timezone, "status": v.status,
                             "savings": v.savings, "reason": v.reason(),
                             "next_actions": v.blocks.to_dict(orient="records"),
                             "sign_convention": "battery_kw: + charging, - discharging"})

    def js(request: Request) -> Response:
        return Response(plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "max-age=86400"})

    return Starlette(routes=[Route("/", index), Route("/site/{site_id}", one), Route("/api/site/{site_id}", api),
                             Route("/static/plotly.js", js)])
