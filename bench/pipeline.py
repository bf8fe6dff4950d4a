"""Pipeline benchmark: keel's overhead per step, and the parallel speed-up of CPU-bound trials.

    python bench/pipeline.py
    python bench/pipeline.py --steps 100 --trials 8 --trial-seconds 2 --no-fanout

Workloads (issue text):
  (a) a pipeline of 100 trivial chained steps (one step function called 100 times, each
      returning its input + 1: nodes step, step_2, ...) on the inline executor, after a
      warm-up pipeline that creates the store: a first run with an empty cache (every step
      runs), a fully cached re-run, and a re-run with cache=False. ms per step and seconds.
      Targets: a cached step <= 5 ms; the 100-step fully cached re-run <= 1 s.
  (b) 8 CPU-bound trials of ~2 s each (a pure-Python busy loop, calibrated once at start on
      this machine; the iteration count is a trial param) with keel.tune.sweep: sequential
      (executor="inline"), then executor="process", then executor="ray". Ray is started
      first with ray.init(num_cpus=2, ...) and that is timed on its own, so the Ray figure
      is the sweep itself (Ray's worker processes still start and import keel inside it,
      as the process pool's do). Seconds and speed-up over sequential; target >= 1.7x. Each
      parallel run is repeated (--repeat, 3) and the median shown: on a small VM they vary.
      The same 8 loops on a plain multiprocessing spawn Pool(2), without keel, give the
      ceiling this machine allows (its two vCPUs slow each other down).
  (c) the same 8 busy loops as 8 independent steps of one pipeline (fan-out), cache=False,
      on the process executor (and Ray with --fanout-executors process,ray).

Each run uses a fresh temporary folder as its working directory, so keel's store
(./.keel) is created there and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

os.environ["DO_NOT_TRACK"] = "true"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"

from rich.console import Console
from rich.table import Table

import keel

console = Console(width=None if os.isatty(1) else 130)  # wide enough for the tables when piped
CACHED_STEP_TARGET_MS = 5.0
CACHED_RUN_TARGET_S = 1.0
SPEEDUP_TARGET = 1.7


# ----------------------------------------------------------------------------------------------- steps and objectives
# At module level: the process pool re-imports this script as __mp_main__, and cloudpickle
# ships these functions by value to process and Ray workers.


def busy(iterations: int) -> int:
    """Pure-Python CPU work (holds the GIL: threads would not help, processes do)."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


@keel.step
def step(x: int) -> int:
    return x + 1


@keel.pipeline
def chain(n: int = 100) -> Any:
    out: Any = 0
    for _ in range(n):
        out = step(out)
    return out


@keel.pipeline
def warmup() -> Any:
    return step(-1)


@keel.step
def burn(iterations: int, index: int) -> dict[str, float]:
    t0 = time.perf_counter()
    busy(iterations)
    return {"index": index, "seconds": time.perf_counter() - t0}


@keel.pipeline
def fanout(iterations: int, width: int = 8) -> Any:
    return [burn(iterations, i) for i in range(width)]


def timed_busy(iterations: int) -> float:
    t0 = time.perf_counter()
    busy(iterations)
    return time.perf_counter() - t0


def burn_objective(trial: Any) -> dict[str, float]:
    t0 = time.perf_counter()
    busy(trial["iterations"])
    return {"score": float(trial["index"]), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------------- workloads


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat ((0, 0) where there is none)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    total = sum(values)
    return total - values[3] - values[4], total  # idle and iowait are not busy


def busy_cpus(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many CPUs the whole machine kept busy in between (ours and anyone else's): a check for interference."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * (os.cpu_count() or 1) if total else float("nan")


def calibrate(seconds: float) -> tuple[int, float]:
    """Iterations of ``busy`` that take about ``seconds`` here: a short probe, then one check at full size."""
    probe = 1_000_000
    t0 = time.perf_counter()
    busy(probe)
    per_iteration = (time.perf_counter() - t0) / probe
    iterations = int(seconds / per_iteration)
    t0 = time.perf_counter()
    busy(iterations)
    measured = time.perf_counter() - t0
    iterations = int(iterations * seconds / measured)  # one refinement from the full-size run
    return iterations, measured


def stop_ray() -> None:
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def step_overhead(steps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    first = warmup.run(executor="inline")  # creates the store, runs migrations, warms imports: not timed below
    out: dict[str, Any] = {"warmup_s": time.perf_counter() - t0}
    assert first.output == 0

    runs = (("first", True, "ran"), ("cached", True, "cached"), ("uncached", False, "ran"))
    for label, cache, expected in runs:
        t0 = time.perf_counter()
        result = chain.run(executor="inline", cache=cache, n=steps)
        seconds = time.perf_counter() - t0
        statuses = {r.status for r in result.steps}
        assert statuses == {expected}, (label, statuses)
        assert result.output == steps, result.output
        out[label] = {
            "seconds": seconds,
            "ms_per_step": seconds * 1000 / steps,
            # what the runner records per step: execute() for a step that ran, the cache lookup + its run for a cached one
            "step_record_ms": statistics.mean(r.seconds for r in result.steps) * 1000,
        }
    return out


def median_run(measure: Any, repeat: int) -> dict[str, Any]:
    """Run ``measure()`` ``repeat`` times: the run with the median seconds (the lower middle one for an even count;
    its figures stay together), and every run's seconds in order (the first one starts cold)."""
    runs = [measure() for _ in range(repeat)]
    out = dict(sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2])
    out["all_seconds"] = [r["seconds"] for r in runs]
    return out


def sweep_speedup(iterations: int, trials: int, executors: list[str], repeat: int) -> dict[str, Any]:
    import keel.tune as tune

    configs = tune.grid({"index": list(range(trials)), "iterations": [iterations]})
    out: dict[str, Any] = {}
    for executor in executors:
        if executor == "ray":  # started here, after the others ran, and timed on its own
            import ray

            t0 = time.perf_counter()
            if not ray.is_initialized():
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
            out["ray_init_s"] = time.perf_counter() - t0

        def once(executor: str = executor) -> dict[str, Any]:
            ticks, t0 = cpu_ticks(), time.perf_counter()
            result = tune.sweep(burn_objective, configs, executor=executor, metric="score", name=f"burn-{executor}")
            seconds = time.perf_counter() - t0
            states = [t.state for t in result.trials]
            assert states == ["complete"] * trials, [(t.state, t.error) for t in result.trials]
            return {
                "seconds": seconds,
                "trial_seconds_mean": statistics.mean(t.metrics["seconds"] for t in result.trials),
                "busy_cpus": busy_cpus(ticks, cpu_ticks()),
            }

        out[executor] = median_run(once, 1 if executor == "inline" else repeat)
        if executor != "inline":  # keel's fixed cost on this executor: the same sweep of empty trials (busy(0))
            empty = tune.grid({"index": list(range(trials)), "iterations": [0]})
            t0 = time.perf_counter()
            tune.sweep(burn_objective, empty, executor=executor, metric="score", name=f"empty-{executor}")
            out[executor]["empty_seconds"] = time.perf_counter() - t0
    return out


def raw_pool(iterations: int, trials: int, repeat: int) -> dict[str, Any]:
    """The same busy loops on a plain spawn pool of 2 processes, no keel: what this machine allows."""
    import multiprocessing

    def once() -> dict[str, Any]:
        ticks, t0 = cpu_ticks(), time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            seconds_each = pool.map(timed_busy, [iterations] * trials, chunksize=1)
        seconds = time.perf_counter() - t0
        mean = statistics.mean(seconds_each)
        return {"seconds": seconds, "trial_seconds_mean": mean, "busy_cpus": busy_cpus(ticks, cpu_ticks())}

    out = median_run(once, repeat)
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(timed_busy, [0] * trials, chunksize=1)
    out["empty_seconds"] = time.perf_counter() - t0
    return out


def fanout_speedup(iterations: int, trials: int, executors: list[str], repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for executor in executors:

        def once(executor: str = executor) -> dict[str, Any]:
            ticks, t0 = cpu_ticks(), time.perf_counter()
            result = fanout.run(executor=executor, cache=False, iterations=iterations, width=trials)
            seconds = time.perf_counter() - t0
            assert [r.status for r in result.steps] == ["ran"] * trials, [(r.node, r.status, r.error) for r in result.steps]
            return {
                "seconds": seconds,
                "trial_seconds_mean": statistics.mean(o["seconds"] for o in result.output),
                "busy_cpus": busy_cpus(ticks, cpu_ticks()),
            }

        out[executor] = median_run(once, repeat)
    return out


# ------------------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="chained steps in workload (a)")
    parser.add_argument("--trials", type=int, default=8, help="CPU-bound trials in workloads (b) and (c)")
    parser.add_argument("--trial-seconds", type=float, default=2.0, help="calibrated length of one trial")
    parser.add_argument("--executors", default="inline,process,ray", help="(b): inline (sequential) first, then others")
    parser.add_argument("--fanout-executors", default="process", help="(c): executors for the fan-out pipeline")
    parser.add_argument("--repeat", type=int, default=3, help="(b), (c): each parallel run this many times; the median")
    parser.add_argument("--no-raw", action="store_true", help="skip the plain multiprocessing pool (no keel) in (b)")
    parser.add_argument("--no-fanout", action="store_true", help="skip (c)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its .keel store)")
    args = parser.parse_args()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if executors[0] != "inline":
        parser.error("--executors must start with inline (the sequential baseline)")

    start = time.perf_counter()
    home = os.getcwd()
    folder = tempfile.mkdtemp(prefix="keel-bench-pipeline-")
    os.chdir(folder)  # keel's store: ./.keel in here
    results: dict[str, Any] = {"cpus": os.cpu_count(), "steps": args.steps, "trials": args.trials}
    results["load_average"] = os.getloadavg()[0]
    try:
        console.print(f"[bold]keel[/] pipelines in {folder} ({os.cpu_count()} CPUs)")
        console.print(f"(a) {args.steps} chained trivial steps, inline executor")
        results["a"] = step_overhead(args.steps)

        iterations, measured = calibrate(args.trial_seconds)
        results["iterations"] = iterations
        results["calibration_s"] = measured
        shown = ", ".join(executors)
        console.print(f"(b) {args.trials} trials of busy({iterations:,}) (~{args.trial_seconds:g} s each): {shown}")
        results["b"] = sweep_speedup(iterations, args.trials, executors, args.repeat)
        fan = [] if args.no_fanout else [e.strip() for e in args.fanout_executors.split(",") if e.strip()]
        if "ray" in executors and "ray" not in fan:
            stop_ray()  # its idle processes out of the way of what follows
        if not args.no_raw:
            console.print("    and on a plain multiprocessing spawn Pool(2), no keel")
            results["b"]["raw_pool"] = raw_pool(iterations, args.trials, args.repeat)
        if fan:
            console.print(f"(c) fan-out pipeline of {args.trials} busy steps: {', '.join(fan)}")
            results["c"] = fanout_speedup(iterations, args.trials, fan, args.repeat)
    finally:
        os.chdir(home)
        stop_ray()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    results["total_s"] = time.perf_counter() - start

    a = results["a"]
    table = Table(title=f"(a) {args.steps} chained trivial steps, inline executor")
    table.add_column("run")
    table.add_column("seconds", justify="right")
    table.add_column("ms / step", justify="right")
    table.add_column("ms / step record", justify="right")
    table.add_column(f"target <= {CACHED_STEP_TARGET_MS:g} ms, {CACHED_RUN_TARGET_S:g} s", justify="right")
    for label, text in (
        ("first", "first run (empty cache)"),
        ("cached", "re-run, fully cached"),
        ("uncached", "re-run, cache=False"),
    ):
        r = a[label]
        target = ""
        if label == "cached":
            ok = r["ms_per_step"] <= CACHED_STEP_TARGET_MS and r["seconds"] <= CACHED_RUN_TARGET_S
            target = "[green]met[/]" if ok else "[red]missed[/]"
        table.add_row(text, f"{r['seconds']:.3f}", f"{r['ms_per_step']:.2f}", f"{r['step_record_ms']:.2f}", target)
    console.print(table)
    cached = a["cached"]
    console.print(
        f"cached step: {cached['ms_per_step']:.2f} ms (target <= {CACHED_STEP_TARGET_MS:g} ms, "
        f"{cached['ms_per_step'] / CACHED_STEP_TARGET_MS:.2f}x of it); fully cached {args.steps}-step re-run: "
        f"{cached['seconds']:.3f} s (target <= {CACHED_RUN_TARGET_S:g} s, {cached['seconds'] / CACHED_RUN_TARGET_S:.2f}x of it). "
        f"'ms / step record' is what the runner times per step (execute() for a step that ran; lookup + run for a cached one); "
        f"the rest of 'ms / step' is scheduling, recording and the pipeline run. Warm-up pipeline: {a['warmup_s']:.2f} s."
    )

    b = results["b"]
    sequential = b["inline"]["seconds"]
    table = Table(
        title=f"(b) {args.trials} CPU-bound trials (~{args.trial_seconds:g} s each) on {os.cpu_count()} CPUs; "
        f"parallel rows: median of {args.repeat} (range)"
    )
    table.add_column("how")
    table.add_column("seconds", justify="right")
    table.add_column("mean trial s", justify="right")
    table.add_column("speed-up", justify="right", style="bold green")
    table.add_column("plain pool / it", justify="right")
    table.add_column("busy CPUs", justify="right")
    table.add_column(f"target >= {SPEEDUP_TARGET:g}x", justify="right")
    raw = b.get("raw_pool")
    rows: list[tuple[str, dict[str, Any], bool]] = []
    for executor in executors:
        label = "sweep, inline (sequential)" if executor == "inline" else f"sweep, {executor}"
        if executor == "ray":
            label += f" (ray.init {b['ray_init_s']:.2f} s apart)"
        rows.append((label, b[executor], executor != "inline"))
    for executor, r in results.get("c", {}).items():
        rows.append((f"(c) fan-out pipeline, {executor}", r, True))
    if raw:
        rows.append(("plain spawn Pool(2), no keel", raw, False))
    for label, r, judged in rows:
        r["speedup"] = sequential / r["seconds"]
        met = ("[green]met[/]" if r["speedup"] >= SPEEDUP_TARGET else "[red]missed[/]") if judged else ""
        versus = f"{raw['seconds'] / r['seconds']:.2f}" if raw and r is not raw and judged else ""
        spread = f" ({min(r['all_seconds']):.2f}-{max(r['all_seconds']):.2f})" if len(r["all_seconds"]) > 1 else ""
        seconds = f"{r['seconds']:.2f}{spread}"
        loops, busy = f"{r['trial_seconds_mean']:.2f}", f"{r['busy_cpus']:.2f}"
        table.add_row(label, seconds, loops, f"{r['speedup']:.2f}x", versus, busy, met)
    console.print(table)
    ideal = min(args.trials, os.cpu_count() or 1)
    inline = b["inline"]
    note = (
        f"Ideal speed-up {ideal}x ({args.trials} trials on {os.cpu_count()} CPUs). 'mean trial s' is the busy loop timed inside "
        f"each trial: {inline['trial_seconds_mean']:.2f} s alone"
    )
    if raw:
        ceiling = min(ideal, 2 * inline["trial_seconds_mean"] / raw["trial_seconds_mean"])
        note += (
            f", {raw['trial_seconds_mean']:.2f} s with both CPUs busy even without keel, so this machine's ceiling is about "
            f"{ceiling:.2f}x; the plain pool reached {sequential / raw['seconds']:.2f}x"
        )
        results["b"]["ceiling"] = ceiling
    firsts = [
        f"{label.split(' (')[0]} {r['all_seconds'][0]:.2f} s" for label, r, judged in rows if judged and len(r["all_seconds"]) > 1
    ]
    if firsts:
        note += f". First (cold) runs: {', '.join(firsts)}"
    how = {"process": " (a new pool of processes each sweep)", "ray": " (its workers up by then)"}
    empties = [f"{e}{how.get(e, '')} {b[e]['empty_seconds']:.2f} s" for e in executors if "empty_seconds" in b[e]]
    if empties:
        note += f". The same sweeps of {args.trials} empty trials (keel's fixed cost): " + ", ".join(empties)
        if raw:
            note += f" (plain pool: {raw['empty_seconds']:.2f} s)"
    note += (
        f". keel's own time in the sequential sweep: {inline['seconds'] - args.trials * inline['trial_seconds_mean']:.2f} s. "
        f"Calibration run: {results['calibration_s']:.2f} s. Whole benchmark: {results['total_s']:.0f} s. 'busy CPUs': "
        f"the machine's, ours or not (/proc/stat); about 1 for the sequential row unless something else was running "
        f"(load average at start: {results['load_average']:.2f})."
    )
    console.print(note)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
