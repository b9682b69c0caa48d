#!/usr/bin/env python3
"""Benchmark of lava-worker (issue #3), release build, against a moto_server
of its own. Run with the venv interpreter (it uses boto3 to watch the queue):

    .venv/bin/python tests/bench/worker.py [-n RUNS]

Reports: idle RSS of a waiting worker; worker CPU per trivial `cmd` run
(/bin/true), the worker process only (payload CPU excluded: /proc utime and
stime, not cutime/cstime); runs per second through one worker with
--threads 8. Targets: idle RSS <= 30 MiB, <= 10 ms worker CPU per run.
The original, measured: 160 MiB idle, 21-22 ms CPU per run, 14 jobs/s."""

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time

import boto3

from common import Moto, bin_path, build_release


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200, help="runs to push through the worker")
    args = ap.parse_args()
    build_release("lava-dispatcher", "lava-worker")
    with Moto() as moto:
        realm = "bench"
        subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                       check=True, stdout=subprocess.DEVNULL)
        job = {"job_id": "bench/true", "type": "cmd", "worker": "core", "payload": "/bin/true",
               "enabled": True, "owner": "bench", "description": "bench"}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump([job], f)
        subprocess.run([bin_path("lava-realm"), "import", "-r", realm, f.name], check=True)
        os.unlink(f.name)
        sqs = boto3.client("sqs", endpoint_url=moto.url)
        url = sqs.get_queue_url(QueueName=f"lava-{realm}-core")["QueueUrl"]

        env = dict(os.environ, LAVA_TMPDIR=tempfile.mkdtemp(prefix="lava-bench-"))
        worker = subprocess.Popen(
            [bin_path("lava-worker"), "-r", realm, "-w", "core", "--root", "--threads", "8",
             "--sleep", "0", "--wait", "20", "--level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)
            idle_rss = proc_status(worker.pid, "VmRSS")
            idle_cpu = proc_cpu(worker.pid)
            time.sleep(10)
            idle_cpu_10s = proc_cpu(worker.pid) - idle_cpu
            ids = ["bench/true"] * args.n
            for i in range(0, len(ids), 100):
                subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level", "warning"]
                               + ids[i:i + 100], check=True, stdout=subprocess.DEVNULL)
            cpu_before = proc_cpu(worker.pid)
            moto_before = moto.cpu_seconds()
            start = time.perf_counter()
            while True:
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                if int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - start
            cpu = proc_cpu(worker.pid) - cpu_before
            peak = proc_status(worker.pid, "VmHWM")
            moto_cpu = moto.cpu_seconds() - moto_before
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        print(f"idle worker: RSS {idle_rss:.1f} MiB, CPU over 10 s idle {idle_cpu_10s*1000:.0f} ms")
        print(f"{args.n} trivial cmd runs, --threads 8: {wall:.1f} s wall = {args.n/wall:.1f} runs/s; "
              f"worker CPU {cpu*1000/args.n:.1f} ms per run (payload excluded); peak RSS {peak:.1f} MiB")
        print(f"moto CPU during the runs: {moto_cpu*1000/args.n:.0f} ms per run (the emulator, not us)")


if __name__ == "__main__":
    main()
