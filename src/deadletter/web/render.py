"""Pages from Jinja2 templates, every value escaped (autoescape on, for every template).

Times are written as `<time datetime=…>` in UTC; the page's script shows them in the
browser's zone and keeps UTC in the title, on hover.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from deadletter.web.access import Operator

# The static files' names carry their versions; this marks the app's own ones, so that a
# browser never runs a cached script of another release.
ASSET_VERSION = "1"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("deadletter.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["pretty_json"] = pretty_json
    env.filters["sparkline"] = sparkline
    env.globals["asset_version"] = ASSET_VERSION
    return env


def when(epoch: float | None) -> Markup:
    """A `<time>` element: UTC in the page, the browser's zone once the script runs."""
    if epoch is None:
        return Markup("&ndash;")
    moment = datetime.fromtimestamp(epoch, UTC)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, text, text)


def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "none"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def sparkline(counts: list[int], width: int = 120, height: int = 24) -> Markup:
    """An inline SVG line of `counts` (no script, no style attribute: the CSP allows it)."""
    top = max(counts) or 1
    step = width / max(1, len(counts) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (n / top) * (height - 4):.1f}" for i, n in enumerate(counts)
    )
    label = f"{sum(counts)} failures in the last {len(counts)} hours, at most {top} an hour"
    return Markup(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"'
        ' aria-label="{label}"><polyline points="{points}"/></svg>'
    ).format(w=width, h=height, label=label, points=points)


class Pages:
    """Renders the templates for one operator's request."""

    def __init__(self) -> None:
        self.env = environment()

    def render(self, name: str, operator: Operator | None, **values: Any) -> str:
        template = self.env.get_template(name)
        csrf = operator.session.csrf if operator else ""
        return template.render(op=operator, csrf=csrf, **values)
