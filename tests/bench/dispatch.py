#!/usr/bin/env python3
"""Benchmark of lava-dispatch (issue #2): CPU seconds and peak RSS per
invocation, release build, against a moto_server of its own.

    python3 tests/bench/dispatch.py [-n RUNS]

Target: <= 20 ms CPU and <= 15 MiB peak RSS per invocation of the form cron
runs (one job id, --worker given). The original Python lava-dispatcher costs
386 ms CPU and 57 MiB (measured on it)."""

import argparse
import json
import os
import subprocess
import tempfile

from common import Moto, bin_path, build_release, run_measured, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50, help="invocations per form")
    args = ap.parse_args()
    build_release("lava-dispatcher")
    with Moto() as moto:
        realm = "bench"
        subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                       check=True, stdout=subprocess.DEVNULL)
        jobs = [{"job_id": f"bench/job{i}", "type": "cmd", "worker": "core", "payload": "true",
                 "owner": "bench", "description": "bench"} for i in range(100)]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(jobs, f)
        subprocess.run([bin_path("lava-realm"), "import", "-r", realm, f.name], check=True)
        os.unlink(f.name)
        dispatch = bin_path("lava-dispatch")
        forms = {
            "cron form (-r R --worker core --check-dispatch --level warning JOB)":
                [dispatch, "-r", realm, "--worker", "core", "--check-dispatch", "--level", "warning", "bench/job0"],
            "lookup form (-r R JOB: reads the jobs table)":
                [dispatch, "-r", realm, "bench/job0"],
        }
        moto_before = moto.cpu_seconds()
        for name, argv in forms.items():
            samples = []
            for _ in range(args.n):
                status, cpu, rss, wall, out = run_measured(argv)
                if status != 0:
                    raise SystemExit(f"{name}: exit {status}")
                samples.append((status, cpu, rss, wall))
            summary(name, samples)
        many = [dispatch, "-r", realm, "--level", "warning"] + [j["job_id"] for j in jobs]
        status, cpu, rss, wall, out = run_measured(many)
        if status != 0 or len(out.splitlines()) != 100:
            raise SystemExit(f"100 ids: exit {status}")
        print(f"100 job ids in one call (lookup form): CPU {cpu*1000:.0f} ms, peak RSS {rss/1024:.1f} MiB, wall {wall*1000:.0f} ms")
        print(f"moto CPU over the run: {moto.cpu_seconds() - moto_before:.1f} s (the emulator, not us)")


if __name__ == "__main__":
    main()
