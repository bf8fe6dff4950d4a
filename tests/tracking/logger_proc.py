"""A child process for the concurrency and crash tests: logs metrics as a training loop would.

usage: python logger_proc.py MODE STORE_URI EXPERIMENT N
MODE full:     log N values as fast as possible, with params and tags, then end the run.
MODE steady:   log one value per millisecond forever (until killed), printing the run id first.
"""

from __future__ import annotations

import sys
import time

from keel.tracking.client import Client


def main() -> None:
    mode, store_uri, experiment, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(store_uri)
    run = client.create_run(experiment, capture_code=False)
    print(run.id, flush=True)
    if mode == "full":
        for i in range(n):
            client.log_metric(run.id, "loss", float(i), step=i)
            if i % 5000 == 0:
                client.log_param(run.id, f"p{i}", i)
                client.set_tag(run.id, "progress", str(i))
        client.end_run(run.id)
        client.close()
        return
    i = 0
    while True:
        client.log_metric(run.id, "loss", float(i), step=i, timestamp=time.time_ns() // 1_000_000)
        i += 1
        time.sleep(0.001)


if __name__ == "__main__":
    main()
