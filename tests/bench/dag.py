#!/usr/bin/env python3
"""Benchmark of the `dag` job type on the local backend: one dag of 100
trivial `cmd` children (`true`), run in-process by one worker, each child
through the whole run sequence with its own events item.

    python3 tests/bench/dag.py [--nodes 100] [--workers 8] [--debug]

The graph is layered: 10 jobs per layer, each depending on two jobs of the
layer before. Reports the wall time from dispatch to the dag's final event
and the worker's own CPU (payloads excluded) per child."""

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time

import common
from common import build_release


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--debug", action="store_true", help="use the debug build")
    args = ap.parse_args()
    if args.debug:
        subprocess.run(["cargo", "build", "--quiet", "-p", "lava-worker", "-p", "lava-dispatcher"],
                       cwd=common.ROOT, check=True)
        bindir = os.path.join(common.TARGET, "debug")
    else:
        build_release("lava-dispatcher", "lava-worker")
        bindir = common.RELEASE
    bin_path = lambda name: os.path.join(bindir, name)  # noqa: E731
    root = tempfile.mkdtemp(prefix="lava-dag-bench-")
    env = dict(os.environ, LAVA_BACKEND=f"local:{root}/store", LAVA_TMPDIR=f"{root}/work")
    realm = "bench"
    subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    base = {"type": "cmd", "worker": "core", "enabled": True, "owner": "bench",
            "description": "bench", "payload": "true"}
    jobs = [dict(base, job_id=f"n{i}") for i in range(args.nodes)]
    graph = {}
    for i in range(args.nodes):
        layer = i // 10
        graph[f"n{i}"] = [] if layer == 0 else [f"n{(layer - 1) * 10 + (i + k) % 10}" for k in (0, 1)]
    jobs.append({"job_id": "bench/dag", "type": "dag", "worker": "core", "enabled": True,
                 "owner": "bench", "description": "bench", "payload": graph,
                 "parameters": {"workers": args.workers}})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(jobs, f)
    subprocess.run([bin_path("lava-realm"), "import", "-r", realm, "--level", "warning", f.name],
                   check=True, env=env)
    worker = subprocess.Popen(
        [bin_path("lava-worker"), "-r", realm, "-w", "core", "--root", "--sleep", "0",
         "--wait", "1", "--level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        cpu_before = proc_cpu(worker.pid)
        start = time.time()
        run_id = subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level",
                                 "warning", "bench/dag"], check=True, capture_output=True,
                                env=env, text=True).stdout.strip()
        status = None
        while time.time() - start < 600:
            out = subprocess.run([bin_path("lava-realm"), "events", "-r", realm, "--job",
                                  "bench/dag", "--run", run_id], capture_output=True, env=env,
                                 text=True).stdout
            status = next((s for s in ("complete", "failed") if f'"status": "{s}"' in out), None)
            if status:
                break
            time.sleep(0.05)
        wall = time.time() - start
        cpu = proc_cpu(worker.pid) - cpu_before
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    if status != "complete":
        raise SystemExit(f"the dag did not complete: {status}")
    build = "debug" if args.debug else "release"
    print(f"dag of {args.nodes} trivial cmd children, workers {args.workers}, local backend, "
          f"{build} build: wall {wall:.2f} s ({wall * 1000 / args.nodes:.1f} ms per child); "
          f"worker CPU {cpu * 1000 / args.nodes:.1f} ms per child (payloads excluded)")
    subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
