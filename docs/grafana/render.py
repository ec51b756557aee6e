"""Draws docs/grafana/perdure-dashboard.png: the panels of perdure-dashboard.json over a real run.

    .venv/bin/python docs/grafana/render.py [--seconds 80] [--out PATH]

It starts `perdure serve docs/grafana/workload.py --dev` (127.0.0.1, a free port, a temporary
SQLite database; ``--concurrency 4``, a pool small enough that a burst of reports leaves
executions ready and waiting, so that the queue panels have something to show) and a Prometheus that scrapes its /metrics every 2 s, drives orders, refunds
(approved, rejected, left to time out, stopped, paused) and CPU-bound reports at it, then asks
that Prometheus for every panel's queries, read from the dashboard's JSON, over the run
(``/api/v1/query_range``, a point every 2 s). The panels are drawn as SVG in a page that
Debian's Chromium, driven by Playwright, turns into the PNG.

Grafana itself is in neither Debian's archive nor PyPI, so the picture is not a Grafana
screenshot; but the numbers are Prometheus's own answers to the dashboard's own PromQL. The
Prometheus server is Debian's (`apt-get install prometheus`); Playwright is in Perdure's test
extras, and Chromium is the one the dashboard tests use, so nothing else is installed for this.
"""

from __future__ import annotations

import argparse
import heapq
import html
import json
import math
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from perdure.client import ApiError, Client

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "perdure-dashboard.json"
WORKLOAD = HERE / "workload.py"
CHROMIUM = Path("/usr/bin/chromium")
SCRAPE_SECONDS = 2
# What Grafana's $__rate_interval stands for in the picture: 15 scrapes. (Grafana makes it at
# least four of the data source's scrape intervals; 30 s keeps a minute-long run readable.)
RATE_INTERVAL = "30s"
# Grafana's classic palette, in its order.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0", "#508642", "#CCA300"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"The process behind {url} exited early:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within 30 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(15)


# --- the traffic -------------------------------------------------------------------------------


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    action: Callable[[], bool] = field(compare=False)  # returns False to be tried again shortly


class Traffic:
    """Starts executions and plays the person who answers refunds, on a timetable of its own."""

    def __init__(self, client: Client, spool: Path, seed: int = 7) -> None:
        self.client = client
        self.spool = spool
        self.rng = random.Random(seed)
        self.due: list[_Due] = []
        self.count = 0
        self.started = 0

    def later(self, delay: float, action: Callable[[], bool]) -> None:
        self.count += 1
        heapq.heappush(self.due, _Due(time.monotonic() + delay, self.count, action))

    def start(self, function: str, payload: dict[str, Any]) -> str:
        self.started += 1
        return str(self.client.invoke(function, payload, wait=False)["DurableExecutionArn"])

    def order(self, crash: bool = False) -> None:
        item = "sofa" if self.rng.random() < 0.08 else self.rng.choice(["mug", "lamp", "chair"])
        self.start("place_order", {"order_id": f"o{self.started}", "item": item, "spool": str(self.spool), "crash": crash})

    def refund(self, elapsed: float) -> None:
        refund_id = f"r{self.started}"
        arn = self.start("refund", {"refund_id": refund_id, "spool": str(self.spool)})
        callback = self.spool / f"{refund_id}.callback"

        def answer(approve: bool) -> Callable[[], bool]:
            def act() -> bool:
                if not callback.exists():
                    return False
                if approve:
                    self.client.succeed_callback(callback.read_text(), {"approved": True})
                else:
                    self.client.fail_callback(callback.read_text(), "Rejected", "The refund was refused.")
                return True

            return act

        def pause() -> bool:
            self.client.pause(arn, "checked by hand")
            return True

        def resume() -> bool:
            self.client.resume(arn)
            return True

        draw = self.rng.random()
        if 10 <= elapsed < 20 and draw < 0.5:
            # Paused a while by an operator: answered meanwhile, but resumed only 20 s later.
            self.later(1, pause)
            self.later(6, answer(True))
            self.later(21, resume)
        elif draw < 0.65:
            self.later(self.rng.uniform(1, 12), answer(True))
        elif draw < 0.8:
            self.later(self.rng.uniform(2, 8), answer(False))
        elif draw < 0.9:
            self.later(8, lambda: bool(self.client.stop(arn, "Cancelled", "The customer withdrew the request.")))
        # else: nobody answers, and its 20 s timeout fails it.

    def report(self) -> None:
        self.start("nightly_report", {"cpu_seconds": round(self.rng.uniform(0.3, 0.6), 2)})

    def run(self, seconds: float) -> None:
        tick = 0.25
        began = time.monotonic()
        crashed = burst = False
        next_report = 0.0
        while (elapsed := time.monotonic() - began) < seconds:
            orders_per_second = 4.0 if 20 <= elapsed < 50 else 1.5
            if self.rng.random() < orders_per_second * tick:
                self.order()
            if self.rng.random() < 0.4 * tick:
                self.refund(elapsed)
            if elapsed >= next_report:
                self.report()
                next_report += 6
            if elapsed >= 35 and not burst:
                burst = True
                for _ in range(12):  # more reports than the pool has places: a queue forms
                    self.report()
            if elapsed >= 55 and not crashed:
                crashed = True
                self.order(crash=True)  # its worker process dies once: its invocations are retried
            self.run_due()
            time.sleep(max(0.0, began + (math.floor(elapsed / tick) + 1) * tick - time.monotonic()))

    def run_due(self) -> None:
        now = time.monotonic()
        while self.due and self.due[0].at <= now:
            due = heapq.heappop(self.due)
            try:
                done = due.action()
            except ApiError as error:  # the execution ended first (a timeout): nothing left to do
                print(f"  skipped: {error}")
                done = True
            if not done:
                self.later(0.5, due.action)


# --- the queries -------------------------------------------------------------------------------

Series = tuple[str, list[tuple[float, float]]]


def legend(template: str, labels: dict[str, str]) -> str:
    if not template:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__") + "}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def query_panels(prometheus: str, dashboard: dict[str, Any], start: float, end: float) -> dict[int, list[Series]]:
    """Every panel's series, as Prometheus answers its targets with Function = All."""
    found: dict[int, list[Series]] = {}
    for panel in dashboard["panels"]:
        series: list[Series] = []
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL).replace("$function", ".*")
            reply = httpx.get(
                f"{prometheus}/api/v1/query_range",
                params={"query": expr, "start": start, "end": end, "step": SCRAPE_SECONDS},
                timeout=30,
            )
            if reply.status_code != 200:
                sys.exit(f"Prometheus refused panel {panel['title']!r}, query {expr}: {reply.text}")
            for result in sorted(reply.json()["data"]["result"], key=lambda r: sorted(r["metric"].items())):
                points = [(float(t), float(v)) for t, v in result["values"]]
                series.append((legend(target.get("legendFormat", ""), result["metric"]), points))
        found[panel["id"]] = series
    return found


# --- the drawing -------------------------------------------------------------------------------

COLUMN, ROW_HEIGHT, GAP = 66, 32, 8


def format_value(value: float, unit: str) -> str:
    if unit == "s":
        if value == 0:
            return "0 s"
        if value < 0.001:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.3g} s"
    text = f"{value / 1000:.3g}k" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} ops/s" if unit == "ops" else text


def y_axis(maximum: float) -> tuple[float, float]:
    """The axis's top and its step between ticks: 1, 2, 2.5 or 5 times a power of ten, four steps or fewer."""
    if maximum <= 0:
        return 1.0, 0.25
    raw = maximum / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    return math.ceil(maximum / step - 1e-9) * step, step


def panel_svg(panel: dict[str, Any], series: list[Series], width: int, height: int, start: float, end: float) -> str:
    defaults = panel["fieldConfig"]["defaults"]
    unit, custom = defaults.get("unit", "short"), defaults.get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    legend_rows = math.ceil(sum(len(name) * 7 + 28 for name, _ in series) / (width - 16)) if series else 0
    left, right, top, bottom = 80, 14, 30, 24 + 18 * max(1, legend_rows)
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="8" y="19" class="title">{html.escape(panel["title"])}</text>']  # fmt: skip

    # Stacked series are drawn on the sum of those before them, as Grafana's "normal" stacking does.
    drawn: list[tuple[str, list[tuple[float, float | None]], list[tuple[float, float]]]] = []
    base: dict[float, float] = {}
    for name, points in series:
        line: list[tuple[float, float | None]] = []
        floor: list[tuple[float, float]] = []
        for t, v in points:
            if math.isnan(v):
                line.append((t, None))
                continue
            low = base.get(t, 0.0) if stacked else 0.0
            line.append((t, low + v))
            floor.append((t, low))
            if stacked:
                base[t] = low + v
        drawn.append((name, line, floor))
    values = [v for _, line, _ in drawn for _, v in line if v is not None]
    top_value, tick = y_axis(max(values, default=0.0))

    def x(t: float) -> float:
        return left + (t - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / top_value * plot_h

    for i in range(round(top_value / tick) + 1):
        v = tick * i
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="axis" text-anchor="end">{format_value(v, unit)}</text>')
    first_tick = math.ceil(start / 20) * 20
    for t in range(first_tick, int(end) + 1, 20):
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>')
        label = datetime.fromtimestamp(t).strftime("%H:%M:%S")
        out.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 15}" class="axis" text-anchor="middle">{label}</text>')

    fill = custom.get("fillOpacity", 0) / 100
    for index, (_, line, floor) in enumerate(drawn):
        color = PALETTE[index % len(PALETTE)]
        for run in _runs(line):
            path = " L".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
            if fill:
                lows = {t: low for t, low in floor}
                back = " L".join(f"{x(t):.1f},{y(lows[t]):.1f}" for t, _ in reversed(run))
                out.append(f'<path d="M{path} L{back} Z" fill="{color}" fill-opacity="{fill}" stroke="none"/>')
            out.append(f'<path d="M{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    if not values:
        out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" class="nodata" text-anchor="middle">No data</text>')

    lx, ly = 10.0, top + plot_h + 36
    for index, (name, _, _) in enumerate(drawn):
        span = len(name) * 7 + 28
        if lx + span > width - 8 and lx > 10:
            lx, ly = 10.0, ly + 18
        color = PALETTE[index % len(PALETTE)]
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="14" height="4" rx="1" fill="{color}"/>')
        out.append(f'<text x="{lx + 19}" y="{ly - 3}" class="legend">{html.escape(name)}</text>')
        lx += span
    out.append("</svg>")
    return "\n".join(out)


def _runs(line: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The stretches of a line between its gaps (a NaN is a gap: spanNulls is off)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in line:
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, v))
    return [run for run in runs if run]


def page(dashboard: dict[str, Any], found: dict[int, list[Series]], start: float, end: float) -> tuple[str, int]:
    width = 24 * COLUMN
    header = 64
    boxes = []
    bottom = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        left, top = grid["x"] * COLUMN, header + grid["y"] * ROW_HEIGHT
        w, h = grid["w"] * COLUMN - GAP, grid["h"] * ROW_HEIGHT - GAP
        bottom = max(bottom, top + h + GAP)
        if panel["type"] == "row":
            boxes.append(f'<div class="row" style="left:{left}px;top:{top}px;width:{w}px">{html.escape(panel["title"])}</div>')
            continue
        svg = panel_svg(panel, found.get(panel["id"], []), w, h, start, end)
        boxes.append(f'<div class="panel" style="left:{left}px;top:{top}px;width:{w}px;height:{h}px">{svg}</div>')
    note = (
        f"Rendered by docs/grafana/render.py, not by Grafana: each panel's PromQL from perdure-dashboard.json, "
        f"answered by Prometheus from a real perdure serve's /metrics (scraped every {SCRAPE_SECONDS} s). "
        f"Function = All, $__rate_interval = {RATE_INTERVAL}."
    )
    style = """
      body { margin: 0; background: #111217; font-family: 'DejaVu Sans', sans-serif; color: #ccccdc; }
      .head { position: absolute; left: 0; top: 8px; }
      .head h1 { margin: 0; font-size: 20px; font-weight: 500; color: #e8e8f0; }
      .head p { margin: 4px 0 0; font-size: 12px; color: #9fa1ad; }
      .panel { position: absolute; background: #181b1f; border: 1px solid #2a2d33; border-radius: 3px; }
      .row { position: absolute; font-size: 15px; font-weight: 600; color: #e8e8f0; padding-top: 6px; }
      .title { font-size: 13px; font-weight: 600; fill: #e0e0ea; }
      .axis { font-size: 10.5px; fill: #9fa1ad; }
      .legend { font-size: 11.5px; fill: #ccccdc; }
      .nodata { font-size: 13px; fill: #7b7f8b; }
      .grid { stroke: #2c3036; stroke-width: 1; }
    """
    body = "\n".join(boxes)
    document = f"""<!doctype html><html><head><meta charset="utf-8"><style>{style}</style></head>
      <body><div style="position:relative;margin:12px;width:{width}px;height:{bottom}px">
      <div class="head"><h1>{html.escape(dashboard["title"])}</h1><p>{html.escape(note)}</p></div>
      {body}</div></body></html>"""
    return document, width + 24 - GAP


def screenshot(document: str, width: int, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": 800})
            tab.set_content(document)
            tab.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


# --- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=80, help="How long to send traffic (then 15 s to settle).")
    parser.add_argument("--out", type=Path, default=HERE / "perdure-dashboard.png")
    options = parser.parse_args()
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None:
        sys.exit("The Prometheus server was not found: install it (Debian: apt-get install prometheus) and run this again.")
    if not CHROMIUM.exists():
        sys.exit(f"Chromium was not found at {CHROMIUM}: install it (Debian: apt-get install chromium) and run this again.")
    dashboard = json.loads(DASHBOARD.read_text())

    with tempfile.TemporaryDirectory(prefix="perdure-grafana-") as tmp:
        folder = Path(tmp)
        spool = folder / "spool"
        spool.mkdir()
        perdure_port, prometheus_port = free_port(), free_port()
        endpoint, prometheus = f"http://127.0.0.1:{perdure_port}", f"http://127.0.0.1:{prometheus_port}"
        (folder / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\n  scrape_timeout: {SCRAPE_SECONDS}s\n"
            f"scrape_configs:\n  - job_name: perdure\n    static_configs:\n      - targets: ['127.0.0.1:{perdure_port}']\n"
        )
        server = scraper = None
        try:
            with open(folder / "perdure.log", "wb") as log:
                server = subprocess.Popen(
                    [sys.executable, "-m", "perdure", "serve", str(WORKLOAD), "--dev", "--host", "127.0.0.1",
                     "--port", str(perdure_port), "--db", f"sqlite:///{folder / 'perdure.db'}", "--concurrency", "4"],
                    cwd=folder, stdout=log, stderr=log,
                )  # fmt: skip
            wait_until_up(f"{endpoint}/health", server, folder / "perdure.log")
            with open(folder / "prometheus.log", "wb") as log:
                scraper = subprocess.Popen(
                    [prometheus_binary, f"--config.file={folder / 'prometheus.yml'}",
                     f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                    cwd=folder, stdout=log, stderr=log,
                )  # fmt: skip
            wait_until_up(f"{prometheus}/-/ready", scraper, folder / "prometheus.log")
            start = time.time()
            print(f"Sending traffic to {endpoint} for {options.seconds:.0f} s; Prometheus at {prometheus}.")
            with Client(endpoint) as client:
                traffic = Traffic(client, spool)
                traffic.run(options.seconds)
                settle = time.monotonic() + 15
                while time.monotonic() < settle:
                    traffic.run_due()
                    time.sleep(0.25)
            time.sleep(SCRAPE_SECONDS * 2)  # the last scrapes
            end = time.time()
            # From the third scrape on: a rate needs two samples, and the first executions a moment.
            start += 3 * SCRAPE_SECONDS
            found = query_panels(prometheus, dashboard, start, end)
        finally:
            stop(scraper)
            stop(server)
    document, width = page(dashboard, found, start, end)
    screenshot(document, width, options.out)
    print(f"Wrote {options.out}")


if __name__ == "__main__":
    main()
