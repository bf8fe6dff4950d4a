"""Chart data benchmark (issue 14): a run with 1,000,000 metric points, its chart data from ``/ui/data/metrics``.

    python bench/ui_charts.py                 # 1,000,000 points, 2,000 asked for, median of 20 requests
    python bench/ui_charts.py --points 4000 --values 2000000

The run is logged with ``Client.log_metric`` (batched by the client's writer) into a fresh SQLite store, served by a
real ``keel server`` subprocess on 127.0.0.1; the time is the request's wall time seen by httpx (server time plus
loopback), after one warm-up request (the server's first imports). Target: < 300 ms.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from keel.testing.services import keel_server
from keel.tracking.client import Client


def chart_data(values: int = 1_000_000, points: int = 2000, repeats: int = 20) -> dict[str, Any]:
    """Log ``values`` points of one metric, then time ``/ui/data/metrics`` for ``points`` of them: ms median and max,
    the points answered, and whether numpy did the downsampling."""
    with tempfile.TemporaryDirectory() as folder:
        uri, artifacts = f"sqlite:///{Path(folder) / 'keel.db'}", str(Path(folder) / "artifacts")
        client = Client(uri, artifacts)
        run = client.create_run("bench", "million", capture_code=False)
        started = time.perf_counter()
        for step in range(values):
            client.log_metric(run.id, "loss", math.sin(step / 5000) + (step % 997) * 1e-4, step=step)
        client.end_run(run.id)
        client.flush()
        log_s = time.perf_counter() - started
        client.close()
        with keel_server(uri, artifacts) as url:
            query = {"run": run.id, "key": "loss", "points": str(points)}
            first = httpx.get(f"{url}/ui/data/metrics", params=query, timeout=120)
            first.raise_for_status()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                answer = httpx.get(f"{url}/ui/data/metrics", params=query, timeout=120)
                times.append((time.perf_counter() - t) * 1000)
                answer.raise_for_status()
        data = answer.json()
    try:
        import numpy  # noqa: F401

        engine = "numpy"
    except ImportError:
        engine = "pure Python"
    return {"values": values, "points_asked": points, "points_answered": len(data["steps"]), "count": data["count"],
            "ms_median": round(statistics.median(times), 1), "ms_max": round(max(times), 1), "log_s": round(log_s, 1),
            "engine": engine}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    result = chart_data(args.values, args.points, args.repeats)
    print(result)
    verdict = "OK" if result["ms_median"] < 300 else "SLOW"
    print(f"{verdict}: {result['values']:,} points -> {result['points_answered']:,} in {result['ms_median']} ms (median)")


if __name__ == "__main__":
    main()
