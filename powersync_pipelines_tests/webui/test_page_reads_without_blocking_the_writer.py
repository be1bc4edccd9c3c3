"""The homeowner's page reads the history read-only: the pipeline's writes succeed while the page is being
served, and the page answers with the demo's plan (units, local zone, sign convention) throughout."""

from __future__ import annotations

import threading

import httpx
import pandas as pd
import pytest

from powersync_pipelines.storage import HistoryStore

from .servers import web

pytestmark = pytest.mark.timeout(1200)  # a demo run and a web server on a shared 2-core machine


def test_writes_succeed_while_the_page_is_served(demo_home):
    store = HistoryStore(demo_home / "powersync.duckdb")
    with web(demo_home) as url:
        pages: list[httpx.Response] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set():
                    pages.append(client.get(f"{url}/"))

        reader = threading.Thread(target=load)
        reader.start()
        try:
            written = 0
            for i in range(20):  # the writer's own connections, as the pipeline makes them
                ts = pd.Timestamp("2030-01-01T00:00Z") + pd.Timedelta(minutes=5 * i)
                row = pd.DataFrame([{"site_id": "writer_probe", "ts": ts, "soc": 0.5}])  # not a site the page shows
                written += store.upsert("telemetry", row, ["site_id", "ts"])
        finally:
            stop.set()
            reader.join()
        assert written == 20
        assert store.query("SELECT count(*) n FROM telemetry WHERE site_id = 'writer_probe'")["n"].iloc[0] == 20
        assert pages and all(p.status_code == 200 for p in pages)
        page = pages[-1].text
        assert "Australia/Melbourne" in page and "$/kWh" in page and "+ when charging" in page
        status = httpx.get(f"{url}/api/site/demo", timeout=60).json()
        assert status["status"]["plan_id"] == "demo:20240212T2000Z" and status["next_actions"]
        assert httpx.get(f"{url}/site/nowhere", timeout=60).status_code == 404


def test_the_page_refuses_a_store_that_does_not_exist(tmp_path):
    from powersync_pipelines.storage import StorageError
    from powersync_pipelines.webui.store import ReadOnlyHistory

    with pytest.raises(StorageError, match="no history yet"):
        ReadOnlyHistory(tmp_path / "none.duckdb")
    assert not (tmp_path / "none.duckdb").exists()


def test_before_the_first_run_the_page_says_so_and_creates_nothing(tmp_path):
    import asyncio

    from powersync_pipelines.config import load_sites
    from powersync_pipelines.webui.app import create_app

    db = tmp_path / "none.duckdb"

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(load_sites(), db))
        async with httpx.AsyncClient(transport=transport, base_url="http://page") as client:
            return await client.get(path)

    page = asyncio.run(get("/"))
    assert page.status_code == 503 and "no history yet" in page.text
    assert asyncio.run(get("/api/site/demo")).json()["error"].startswith("no history yet")
    assert not db.exists()
