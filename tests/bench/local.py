#!/usr/bin/env python3
"""Benchmark of the embedded local backend (issue #4), release build:
dispatch-to-start latency (from starting `lava-dispatch` to the payload's
first instruction, measured by the payload itself) with an idle worker, and
runs per second through one local worker with --threads 8.

    python3 tests/bench/local.py [-n RUNS]

The original's pick-up latency with default flags is ~2.5 s mean, up to
~10 s (it sleeps between polls); its throughput 14 jobs/s (measured on it)."""

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

from common import bin_path, build_release


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(paths, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(os.path.exists(p) for p in paths):
            return True
        time.sleep(0.005)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200, help="runs for the throughput figure")
    ap.add_argument("--latency-runs", type=int, default=20)
    args = ap.parse_args()
    build_release("lava-dispatcher", "lava-worker")
    root = tempfile.mkdtemp(prefix="lava-local-bench-")
    marks = os.path.join(root, "marks")
    os.mkdir(marks)
    env = dict(os.environ, LAVA_BACKEND=f"local:{root}/store", LAVA_TMPDIR=f"{root}/work")
    realm = "bench"
    subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    job = {"job_id": "bench/mark", "type": "cmd", "worker": "core", "enabled": True,
           "owner": "bench", "description": "bench",
           "payload": f"sh -c 'date +%s.%N > {marks}/$LAVA_RUN_ID.tmp && mv {marks}/$LAVA_RUN_ID.tmp {marks}/$LAVA_RUN_ID'"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([job], f)
    subprocess.run([bin_path("lava-realm"), "import", "-r", realm, "--level", "warning", f.name],
                   check=True, env=env)
    worker = subprocess.Popen(
        [bin_path("lava-worker"), "-r", realm, "-w", "core", "--root", "--threads", "8",
         "--sleep", "0", "--wait", "20", "--level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        latencies = []
        for _ in range(args.latency_runs):
            time.sleep(1.5)  # let the worker's long poll back off, as an idle worker's would
            start = time.time()
            out = subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level", "warning",
                                  "bench/mark"], check=True, capture_output=True, env=env, text=True)
            mark = os.path.join(marks, out.stdout.strip())
            if not wait_for([mark]):
                raise SystemExit("run did not start")
            with open(mark) as f:
                latencies.append(float(f.read()) - start)
        ids = []
        cpu_before = proc_cpu(worker.pid)
        start = time.time()
        for i in range(0, args.n, 100):
            out = subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level", "warning"]
                                 + ["bench/mark"] * min(100, args.n - i),
                                 check=True, capture_output=True, env=env, text=True)
            ids += out.stdout.split()
        # A run is done when its events item is complete; the payload's mark
        # comes just before, so wait for the marks and then for the queue.
        if not wait_for([os.path.join(marks, r) for r in ids], timeout=600):
            raise SystemExit("runs did not finish")
        wall = time.time() - start
        cpu = proc_cpu(worker.pid) - cpu_before
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    lat_ms = sorted(x * 1000 for x in latencies)
    print(f"dispatch-to-start latency, idle worker: mean {statistics.mean(lat_ms):.0f} ms, "
          f"median {statistics.median(lat_ms):.0f} ms, max {lat_ms[-1]:.0f} ms (n={len(lat_ms)})")
    print(f"{args.n} trivial cmd runs, --threads 8: {wall:.1f} s = {args.n / wall:.1f} runs/s; "
          f"worker CPU {cpu * 1000 / args.n:.1f} ms per run (payload excluded)")
    subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
