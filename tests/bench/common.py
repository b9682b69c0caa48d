"""Shared pieces of the benchmark scripts: a moto_server of our own on a
free loopback port, the release binaries, and per-process CPU and peak RSS
measured with wait4(2)."""

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _target_dir():
    """Cargo's target directory (`target/` unless CARGO_TARGET_DIR or a
    cargo config says otherwise)."""
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["target_directory"]


TARGET = _target_dir()
RELEASE = os.path.join(TARGET, "release")


def build_release(*packages):
    args = ["cargo", "build", "--release", "--quiet"]
    for p in packages:
        args += ["-p", p]
    subprocess.run(args, cwd=ROOT, check=True)


def bin_path(name):
    return os.path.join(RELEASE, name)


class Moto:
    """A moto_server started for the benchmark and stopped by its PID."""

    def __enter__(self):
        moto = os.environ.get("MOTO_SERVER") or os.path.join(ROOT, ".venv", "bin", "moto_server")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        os.makedirs(TARGET, exist_ok=True)
        self.log = open(os.path.join(TARGET, "bench-moto.log"), "w")
        self.proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"moto_server exited; see {TARGET}/bench-moto.log")
                time.sleep(0.1)
        os.environ.update({
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        return self

    def cpu_seconds(self):
        """CPU seconds moto has used so far (from /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def measure(argv, env=None, stdin=None):
    """Runs argv once; returns (exit status, CPU seconds, peak RSS KiB, wall seconds, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin)
    # communicate() reaped the child; rusage comes from a fresh wait4 below.
    wall = time.perf_counter() - start
    return proc.returncode, out, err, wall


def run_measured(argv, env=None):
    """Runs argv with wait4 and returns (status, cpu seconds, maxrss KiB, wall seconds, stdout bytes)."""
    start = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 2)
        os.close(r)
        try:
            os.execve(argv[0], argv, env or os.environ)
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), cpu, usage.ru_maxrss, wall, b"".join(chunks)


def summary(name, samples):
    cpu = [s[1] * 1000 for s in samples]
    rss = [s[2] / 1024 for s in samples]
    wall = [s[3] * 1000 for s in samples]
    print(f"{name}: n={len(samples)} CPU ms median {statistics.median(cpu):.1f} "
          f"(min {min(cpu):.1f}, max {max(cpu):.1f}); peak RSS MiB median {statistics.median(rss):.1f} "
          f"(max {max(rss):.1f}); wall ms median {statistics.median(wall):.1f}")
