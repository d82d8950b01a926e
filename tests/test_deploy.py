"""deploy/: the Prometheus scrape config and the Grafana dashboard ask for what Songbook
serves: the dashboard's queries name only series /metrics has."""

import json
import re
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SERIES = re.compile(r"\bsongbook_\w+")


def test_prometheus_scrapes_metrics_with_a_token() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "songbook"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"


async def test_the_dashboard_queries_only_series_songbook_serves(db: Database) -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    wanted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in SERIES.findall(target["expr"])
    }
    assert wanted, "the dashboard queries Songbook's series"
    app = create_app(Settings(), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as http:
        assert (await http.post("/graphql", json={"query": "{ songs { totalCount } }"})).is_success
        assert (await http.post("/graphql", json={"query": "{ nope }"})).is_success
        text = (await http.get("/metrics")).text
    served = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    assert wanted <= served, wanted - served
