"""The demo app: chart-processing jobs for several sites, with injected faults.

Each fault stands for one row of the seed's classification table, so a run shows
every path: success, retries, and dead letters of each class.
"""

from __future__ import annotations

from dataclasses import replace

from deadletter.app import App
from deadletter.config import QueuePolicy, Settings
from deadletter.errors import InvalidInput
from deadletter.tasks import JobSpec
from deadletter.worker.slots import current_job

QUEUE = "chart-processing"
SITES = ("building-a", "building-b", "building-c", "warehouse-1", "campus-north")

# fault -> how many of every 20 jobs carry it
FAULT_MIX = {
    None: 9,
    "flaky": 2,
    "timeout": 2,
    "rate_limit": 1,
    "bad_request": 1,
    "not_found": 1,
    "server_error": 1,
    "bad_gateway": 1,
    "invalid_input": 1,
    "unexpected": 1,
}


class UpstreamHTTPError(Exception):
    """What an HTTP client raises for an error status (carries `status_code`)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


def render_chart(site_name: str, chart_id: int, fault: str | None = None) -> dict[str, object]:
    """Fetch a site's data and render a chart; `fault` injects a failure."""
    attempt = current_job.get().attempt
    if fault == "flaky" and attempt == 1:
        raise UpstreamHTTPError(503, f"Service Unavailable fetching data for {site_name}")
    if fault is not None and fault != "flaky":
        raise _fault(fault, site_name, chart_id)
    return {"site_name": site_name, "chart_id": chart_id, "points": 96}


def _fault(fault: str, site_name: str, chart_id: int) -> Exception:
    faults: dict[str, Exception] = {
        "timeout": TimeoutError(f"Timeout fetching data for {site_name} after 30s"),
        "rate_limit": UpstreamHTTPError(429, "Too Many Requests"),
        "bad_request": UpstreamHTTPError(400, f"Bad Request: chart {chart_id} has no series"),
        "not_found": UpstreamHTTPError(404, f"Not Found: site {site_name}"),
        "server_error": UpstreamHTTPError(500, "Internal Server Error"),
        "bad_gateway": UpstreamHTTPError(502, "Bad Gateway"),
        "invalid_input": InvalidInput(f"chart {chart_id}: date range end before start"),
        "unexpected": KeyError(f"series_{chart_id}"),
    }
    return faults[fault]


def demo_settings(settings: Settings) -> Settings:
    """The user's settings, with short backoffs on the demo queue so it ends quickly."""
    policy = QueuePolicy(max_retries=3, backoff_base=0.05, backoff_max=0.2)
    return replace(settings, queues={**settings.queues, QUEUE: policy})


def build_app(settings: Settings) -> App:
    app = App(demo_settings(settings))
    app.task(name="charts.render", queue=QUEUE)(render_chart)
    return app


def job_specs(app: App, count: int) -> list[JobSpec]:
    """`count` chart jobs over the sites, with the fault mix; labelled with their site
    and a user to notify."""
    task = app.tasks["charts.render"]
    return [
        task.spec(site, n, fault).options(labels={"site_name": site, "user": f"{site}@example.com"})
        for n, fault in enumerate(faults_for(count))
        for site in [SITES[n % len(SITES)]]
    ]


def faults_for(count: int) -> list[str | None]:
    """A deterministic mix of faults for `count` jobs."""
    cycle = [fault for fault, weight in FAULT_MIX.items() for _ in range(weight)]
    return [cycle[(n * 7) % len(cycle)] for n in range(count)]
