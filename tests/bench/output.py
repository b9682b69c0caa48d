#!/usr/bin/env python3
"""Worker memory with a large payload output, release build: one `cmd` run
whose stdout is SIZE MB, on the local backend and on moto (S3, multipart
upload above 64 MiB). Reports the worker's peak RSS (wait4) beside the
output size. Outputs and payloads are streamed between files and the
object store, so the peak must stay near the idle worker's, whatever SIZE.

    python3 tests/bench/output.py [--mb 600] [--backend local|moto|both]

The original worker reads a whole output into memory to upload it (its
peak grows with the output)."""

import argparse
import json
import os
import subprocess
import tempfile
import time

import common
from common import Moto, build_release

BIN = common.bin_path


def bin_path(name):
    return BIN(name)


def run_once(env, realm, mb):
    job = {"job_id": "bench/big", "type": "cmd", "worker": "core", "enabled": True,
           "owner": "bench", "description": "bench",
           "payload": f"sh -c 'head -c {mb}000000 /dev/zero'"}
    subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core", "--level", "warning"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([job], f)
    subprocess.run([bin_path("lava-realm"), "import", "-r", realm, "--level", "warning", f.name],
                   check=True, env=env)
    subprocess.run([bin_path("lava-dispatch"), "-r", realm, "--level", "warning", "bench/big"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    start = time.perf_counter()
    proc = subprocess.Popen([bin_path("lava-worker"), "-r", realm, "-w", "core", "--root",
                             "--batch", "--wait", "1", "--level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"worker failed ({status}): {err}")
    return usage.ru_maxrss / 1024, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=600, help="stdout size in MB")
    ap.add_argument("--backend", choices=["local", "moto", "both"], default="both")
    ap.add_argument("--debug", action="store_true",
                    help="use the debug build in target/debug (quick look; figures are for release)")
    args = ap.parse_args()
    global BIN
    if args.debug:
        BIN = lambda name: os.path.join(common.ROOT, "target", "debug", name)  # noqa: E731
    else:
        build_release("lava-dispatcher", "lava-worker")
    print(f"one cmd run writing {args.mb} MB to stdout")
    print(f"{'backend':8} {'worker peak RSS':>16} {'wall':>8}")
    if args.backend in ("local", "both"):
        root = tempfile.mkdtemp(prefix="lava-output-bench-")
        env = dict(os.environ, LAVA_BACKEND=f"local:{root}/store", LAVA_TMPDIR=f"{root}/work")
        rss, wall = run_once(env, "bench", args.mb)
        print(f"{'local':8} {rss:13.1f} MiB {wall:7.1f}s")
        subprocess.run(["rm", "-rf", root], check=False)
    if args.backend in ("moto", "both"):
        with Moto():
            root = tempfile.mkdtemp(prefix="lava-output-bench-")
            env = dict(os.environ, LAVA_BACKEND="aws", LAVA_TMPDIR=f"{root}/work")
            rss, wall = run_once(env, "bench", args.mb)
            print(f"{'moto':8} {rss:13.1f} MiB {wall:7.1f}s")
            subprocess.run(["rm", "-rf", root], check=False)


if __name__ == "__main__":
    main()
