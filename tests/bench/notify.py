#!/usr/bin/env python3
"""Benchmark of the notification actions (issue 15), on moto: the wall time
that `sns`, `sqs`, `email` (bare SES) and `slack` (to a webhook server on
loopback) on `on_success` add to a run. Two batches of N trivial `cmd`
runs go through `lava-worker --batch`, one job without actions and one
with the four; the difference of the batches' wall times, divided by N, is
the time the actions add per run.

    .venv/bin/python tests/bench/notify.py [-n RUNS] [--debug]
"""

import argparse
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time

import boto3

import common
from common import Moto, build_release


class Hook(http.server.BaseHTTPRequestHandler):
    posts = 0

    def do_POST(self):
        Hook.posts += 1
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--debug", action="store_true",
                    help="use the debug build (quick look; figures are for release)")
    args = ap.parse_args()
    if args.debug:
        subprocess.run(["cargo", "build", "--quiet", "-p", "lava-dispatcher", "-p", "lava-worker"],
                       cwd=common.ROOT, check=True)
        bin_path = lambda name: os.path.join(common.TARGET, "debug", name)  # noqa: E731
    else:
        build_release("lava-dispatcher", "lava-worker")
        bin_path = common.bin_path
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with Moto():
        realm = "bench"
        work = tempfile.mkdtemp(prefix="lava-notify-bench-")
        env = dict(os.environ, LAVA_TMPDIR=work)
        subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="lava-bench-notices")["TopicArn"]
        sqs = boto3.client("sqs")
        sqs.create_queue(QueueName="lava-bench-notes")
        boto3.client("ses").verify_email_identity(EmailAddress="bench@example.com")
        base = {"type": "cmd", "worker": "core", "payload": "true", "enabled": True,
                "owner": "bench", "description": "bench"}
        actions = [
            {"action": "sns", "topic": topic, "subject": "{{ job.job_id }}", "message": "done"},
            {"action": "sqs", "queue": "lava-bench-notes", "message": {"run": "{{ job.run_id }}"}},
            {"action": "email", "to": "ops@example.com", "from": "bench@example.com",
             "subject": "{{ job.job_id }}", "message": "done"},
            {"action": "slack", "slack_conn": "chat", "message": "done {{ job.job_id }}"},
        ]
        items = [dict(base, job_id="bench/plain"),
                 dict(base, job_id="bench/notify", on_success=actions)]
        conn = {"conn_id": "chat", "type": "slack", "enabled": True,
                "webhook_url": f"http://127.0.0.1:{server.server_port}/hook"}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(items + [conn], f)
        subprocess.run([bin_path("lava-realm"), "import", "-r", realm, "--level", "warning", f.name],
                       check=True, env=env)
        walls = {}
        for job in ("bench/plain", "bench/notify"):
            subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level", "warning"]
                           + [job] * args.n, check=True, stdout=subprocess.DEVNULL, env=env)
            start = time.perf_counter()
            subprocess.run([bin_path("lava-worker"), "-r", realm, "-w", "core", "--root", "--batch",
                            "--sleep", "0", "--wait", "1", "--level", "warning"],
                           check=True, env=env)
            walls[job] = time.perf_counter() - start
        # Every run's actions ran to the end: the last one, slack, posted.
        if Hook.posts != args.n:
            raise SystemExit(f"{Hook.posts} webhook posts for {args.n} runs: actions failed")
        added = (walls["bench/notify"] - walls["bench/plain"]) / args.n
        print(f"{args.n} runs without actions: {walls['bench/plain']:.2f} s; with sns, sqs, "
              f"email (SES) and slack on on_success: {walls['bench/notify']:.2f} s; "
              f"added per run: {added * 1000:.0f} ms"
              + (" (debug build)" if args.debug else ""))
        subprocess.run(["rm", "-rf", work])
    server.shutdown()


if __name__ == "__main__":
    main()
