#!/usr/bin/env python3
"""AWS requests and CPU per trivial run, ours beside the original, in one
sitting on one moto_server. Run with the venv interpreter (it has boto3
and the original jinlava):

    .venv/bin/python tests/bench/requests.py [-n RUNS] [--only ours|original]

A counting proxy sits between each worker and moto and counts the
worker's requests by operation (DynamoDB and SQS by `X-Amz-Target`, the
query protocols by `Action`, S3 by method and sub-resource). Setup and
dispatch talk to moto directly, so only the worker's requests are counted.
Every request is billed on AWS, so the count per run is a cost.

Per worker it prints the requests per run by operation (the receives are
shared by up to 10 messages, so they are a fraction), the worker's own CPU
per run (payload excluded) and moto's CPU serving it."""

import argparse
import http.client
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter

import boto3

from common import ROOT, Moto, bin_path, build_release


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def operation(method, path, headers, body):
    """The AWS operation a request asks for."""
    target = headers.get("X-Amz-Target")
    if target:
        service, _, op = target.rpartition(".")
        return f"{service.split('_')[0]}.{op}"
    if body and headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return f"query.{form['Action'][0]}"
    query = urllib.parse.urlsplit(path).query
    sub = [k for k in urllib.parse.parse_qs(query, keep_blank_values=True)
           if k in ("uploads", "uploadId", "partNumber", "list-type", "tagging", "acl")]
    return f"S3.{method}{'?' + '&'.join(sorted(sub)) if sub else ''}"


class Counting:
    """A counting HTTP/1.1 proxy to moto on a free loopback port."""

    def __init__(self, upstream):
        self.counts = Counter()
        self.lock = threading.Lock()
        host, port = urllib.parse.urlsplit(upstream).netloc.split(":")
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self):
                body = self._read_body()
                with outer.lock:
                    outer.counts[operation(self.command, self.path, self.headers, body)] += 1
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "content-length", "connection")}
                conn = http.client.HTTPConnection(host, int(port), timeout=120)
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                self.send_response(reply.status, reply.reason)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a worker stopped mid-request (a long poll): not ours to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts

    def close(self):
        self.server.shutdown()


def queue_empty(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0


def final_statuses(ddb, realm, run_ids):
    """The final status of each run that has one."""
    found = Counter()
    for run_id in run_ids:
        item = ddb.get_item(TableName=f"lava.{realm}.events", ConsistentRead=True,
                            Key={"job_id": {"S": "bench/true"}, "run_id": {"S": run_id}}).get("Item", {})
        for entry in item.get("log", {}).get("L", []):
            status = entry["M"]["status"]["S"]
            if status in ("complete", "failed", "rejected", "skipped"):
                found[status] += 1
    return found


def recorded(ddb, realm, run_ids):
    """How many of the runs have their final `complete` entry."""
    return final_statuses(ddb, realm, run_ids)["complete"]


def measure(name, argv, env, moto, sqs, url, proxy, n, realm):
    """Starts a worker, lets it settle, dispatches n trivial runs, waits for
    the queue to drain and every run's `complete` entry (the original
    writes its events after deleting the message); returns the figures."""
    ddb = boto3.client("dynamodb", endpoint_url=moto.url)
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        proxy.take()
        cpu_before, moto_before = proc_cpu(worker.pid), moto.cpu_seconds()
        run_ids = []
        for i in range(0, n, 100):
            out = subprocess.run([bin_path("lava-dispatch"), "-r", realm, "-w", "core", "--level", "warning"]
                                 + ["bench/true"] * min(100, n - i), check=True, stdout=subprocess.PIPE,
                                 text=True).stdout
            run_ids += [line.split()[-1] for line in out.splitlines() if line.strip()]
        start = time.perf_counter()
        while not queue_empty(sqs, url):
            time.sleep(0.1)
        # The original writes its events from a queue after the messages
        # are gone: wait (at most a minute) until the last run is recorded.
        deadline = time.monotonic() + 60
        while recorded(ddb, realm, run_ids[-1:]) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        wall = time.perf_counter() - start
        cpu = proc_cpu(worker.pid) - cpu_before
        moto_cpu = moto.cpu_seconds() - moto_before
        counts = proxy.take()
        missing = n - recorded(ddb, realm, run_ids)
        if missing:
            print(f"{name}: {missing} of {n} runs have no complete entry; final entries: "
                  f"{dict(final_statuses(ddb, realm, run_ids))}", file=sys.stderr)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return {"name": name, "wall": wall, "cpu": cpu, "moto_cpu": moto_cpu, "counts": counts}


def report(r, n):
    total = sum(r["counts"].values())
    print(f"\n{r['name']}: {n} trivial runs in {r['wall']:.1f} s; "
          f"worker CPU {r['cpu'] * 1000 / n:.1f} ms/run (payload excluded); "
          f"moto CPU {r['moto_cpu'] * 1000 / n:.0f} ms/run; "
          f"{total / n:.2f} AWS requests/run")
    for op, count in sorted(r["counts"].items(), key=lambda kv: -kv[1]):
        print(f"  {op:42} {count / n:6.2f}/run  ({count})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100, help="runs per worker")
    ap.add_argument("--only", choices=["ours", "original"])
    args = ap.parse_args()
    build_release("lava-dispatcher", "lava-worker")
    original = os.path.join(ROOT, ".venv", "bin", "lava-worker")
    with Moto() as moto:
        realm = "bench"
        subprocess.run([bin_path("lava-realm"), "create", "-r", realm, "-w", "core"],
                       check=True, stdout=subprocess.DEVNULL)
        # The realm's KMS key for uploads, as a deployed realm has: the
        # original fails every cmd run of a realm item without `s3_key`
        # (it puts None in the payload's environment as LAVA_S3_KEY).
        kms = boto3.client("kms", endpoint_url=moto.url)
        key_id = kms.create_key(Description=f"lava {realm} user")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/lava-{realm}-user", TargetKeyId=key_id)
        boto3.client("dynamodb", endpoint_url=moto.url).update_item(
            TableName="lava.realms", Key={"realm": {"S": realm}},
            UpdateExpression="SET s3_key = :k",
            ExpressionAttributeValues={":k": {"S": f"alias/lava-{realm}-user"}})
        job = {"job_id": "bench/true", "type": "cmd", "worker": "core", "payload": "/bin/true",
               "enabled": True, "owner": "bench", "description": "bench"}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump([job], f)
        subprocess.run([bin_path("lava-realm"), "import", "-r", realm, f.name], check=True)
        os.unlink(f.name)
        sqs = boto3.client("sqs", endpoint_url=moto.url)
        url = sqs.get_queue_url(QueueName=f"lava-{realm}-core")["QueueUrl"]
        proxy = Counting(moto.url)
        env = dict(os.environ, AWS_ENDPOINT_URL=proxy.url,
                   LAVA_TMPDIR=tempfile.mkdtemp(prefix="lava-bench-"))
        results = []
        try:
            if args.only != "original":
                results.append(measure(
                    "ours", [bin_path("lava-worker"), "-r", realm, "-w", "core", "--root",
                             "--threads", "8", "--sleep", "0", "--wait", "20", "--level", "warning"],
                    env, moto, sqs, url, proxy, args.n, realm))
            if args.only != "ours":
                if not os.path.exists(original):
                    sys.exit(f"the original worker is not at {original}: run .ci/run once")
                results.append(measure(
                    "original", [sys.executable, original, "--root", "--no-colour", "--level", "warning",
                                 "-r", realm, "-w", "core", "--threads", "8", "--sleep", "0",
                                 "--wait", "20"],
                    env, moto, sqs, url, proxy, args.n, realm))
        finally:
            proxy.close()
    for r in results:
        report(r, args.n)


if __name__ == "__main__":
    main()
