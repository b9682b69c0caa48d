#!/usr/bin/env python3
"""Benchmark of building the crontab (issue #5): CPU seconds and peak RSS of
the release `lava-crontab show --jobs-file FILE` (job items from a file
instead of a table) on 1,000, 10,000 and 100,000 generated scheduled jobs
with mixed schedule forms (strings, month/day names, nicknames, from/to
windows, lists). The crontab
program is a stand-in that prints an empty crontab, so only the build is
measured; no emulator is needed.

    python3 tests/bench/crontab.py [-n RUNS] [--sizes 1000,10000,100000]

Target: 100,000 jobs in < 3 s CPU and < 200 MiB peak RSS. The original
lavasched takes 7.4 s CPU and 249 MiB for 100,000 (measured on it)."""

import argparse
import json
import os
import random
import stat
import tempfile

from common import bin_path, build_release, run_measured, summary

STRINGS = ["*/5 * * * *", "0 12 * * mon-fri", "30 2 * * *", "0 0 1 jan,jul *",
           "15,45 8-18 * * 1-5", "@daily", "@hourly", "0 6 * * sun", "0-59/15 * * * *"]


def schedule(i, rng):
    """One job's schedule; the forms rotate so every size has each."""
    form = i % 6
    s = rng.choice(STRINGS)
    if form <= 2:
        return s
    if form == 3:
        return {"crontab": s, "from": "2024-01-01T00:00:00", "to": "2099-12-31"}
    if form == 4:
        # An exclusion window (from > to), active now: now >= from.
        return {"crontab": s, "from": "2024-01-01T00:00:00", "to": "2023-06-01T00:00:00+10:00"}
    return [s, {"crontab": rng.choice(STRINGS), "from": "2024-01-01"}, "@weekly"]


def write_jobs(path, n, rng):
    """JSON lines of job items; returns the number of schedule lines expected."""
    lines = 0
    with open(path, "w") as f:
        for i in range(n):
            sched = schedule(i, rng)
            lines += len(sched) if isinstance(sched, list) else 1
            f.write(json.dumps({
                "job_id": f"bench/group{i % 97}/job{i:06d}", "type": "cmd", "worker": "core",
                "payload": "true", "enabled": True, "owner": "bench", "description": "bench job",
                "dispatcher": "main", "schedule": sched,
            }) + "\n")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3, help="runs per size")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--no-build", action="store_true", help="use the release binary as it is")
    args = ap.parse_args()
    if not args.no_build:
        build_release("lava-dispatcher")
    tool = bin_path("lava-crontab")
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        stand_in = os.path.join(tmp, "crontab")
        with open(stand_in, "w") as f:
            f.write("#!/bin/sh\n# An empty crontab for -l; installs are not benchmarked.\nexit 0\n")
        os.chmod(stand_in, stat.S_IRWXU)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAVA_")}
        env.update({"LAVA_CRONTAB_CMD": stand_in, "LAVA_DISPATCHER": "/usr/bin/lava-dispatch",
                    "TZ": "UTC"})
        for n in (int(s) for s in args.sizes.split(",")):
            jobs = os.path.join(tmp, f"jobs-{n}.jsonl")
            want = write_jobs(jobs, n, rng)
            argv = [tool, "show", "--realm", "bench", "--dispatcher", "main",
                    "--jobs-file", jobs, "--level", "warning"]
            samples = []
            for _ in range(args.n):
                status, cpu, rss, wall, out = run_measured(argv, env)
                if status != 0:
                    raise SystemExit(f"{n} jobs: exit {status}")
                got = len(out.splitlines()) - 3  # markers and LAVA_REALM
                if got != want:
                    raise SystemExit(f"{n} jobs: {got} schedule lines, expected {want}")
                samples.append((status, cpu, rss, wall))
            size = os.path.getsize(jobs) / 2**20
            summary(f"{n} jobs ({want} lines, {size:.1f} MiB of JSON lines, crontab "
                    f"{len(out) / 2**20:.1f} MiB)", samples)


if __name__ == "__main__":
    main()
