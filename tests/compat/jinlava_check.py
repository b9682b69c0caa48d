#!/usr/bin/env python3
"""
Compatibility oracle: run the ORIGINAL jinlava 8.x code for lava's Rust tests.

Run it with the venv interpreter that has jinlava installed, e.g.
/work/main/.venv/bin/python tests/compat/jinlava_check.py SUBCOMMAND ...

Nothing from jinlava is copied here: the original code is imported / executed
from the installed package and its console scripts.

Subcommands
-----------

validate-message [--realm R] [--worker W] [--job-spec JSON]
    Reads one SQS dispatch-message body on stdin and runs it through the real
    worker receive path: ``JobRunner.get_next_job()`` from jinlava's
    ``lava-worker`` console script (json.loads -> lava.lib.misc.dict_check with
    JOB_DISPATCH_REQUIRED/OPTIONAL_FIELDS -> realm / worker match ->
    lava.lavacore.get_job_spec -> lava.lavacore.augment_job_spec, which parses
    ts_dispatch with dateutil.parser.parse). Prints one JSON line:
        {"ok": true, "parsed": {...}}
        {"ok": false, "error": "<str(exception)>", "error_type": "...",
         "deleted": <bool>}
    "error" is exactly the text the original worker logs (JobRunner.run() does
    LOG.error(str(e))). "deleted" tells whether the original called job_done()
    (i.e. deleted the SQS message) before raising; False means the original
    would leave the message on the queue to be retried.
    --realm / --worker are the worker's own identity; each defaults to the value
    in the message, so the mismatch checks pass unless you pass them.
    --job-spec is a JSON object merged over the stand-in DynamoDB job record
    (useful to see how dispatch parameters/globals overlay the job's own).
    Exit status is 0 in both cases; 2 only on internal problems of this script.

dispatch --realm R --worker W --job JOB [-p N=V]... [-g N=V]...
    Runs the real ``lava-dispatcher`` console script as a subprocess
    (``lava-dispatcher -r R -w W -p N=V ... -g N=V ... JOB``; with -w given it
    makes no DynamoDB lookup) against the endpoint in AWS_ENDPOINT_URL (e.g.
    moto_server; boto3/botocore >= 1.28.57 honour that variable, the venv has
    1.43.x; AWS_REGION is copied to AWS_DEFAULT_REGION if that is unset,
    because botocore only reads the latter), then receives the message from queue lava-R-W (waits up to 5 s),
    deletes it, and writes its body to stdout exactly as received (no trailing
    newline added). The dispatcher's own stderr is relayed to our stderr.
    Exit 0 on success, 2 on any failure (dispatcher non-zero exit, no message).

run-worker --realm R --worker W [--seconds N] [--threads T]
    Runs the real ``lava-worker`` console script as a subprocess in batch mode
    against the endpoint in AWS_ENDPOINT_URL:
        lava-worker [--root] --no-colour --level info -r R -w W --batch
                    --sleep 0 --wait 1 --threads T
    It reads realm item R from ``lava.realms``, polls queue lava-R-W until a
    receive comes back empty, runs every job it got (events go to
    ``lava.R.events``, outputs to the realm's ``s3_temp``; with no realm
    ``s3_key`` uploads use SSE AES256) and exits. ``--root`` is the
    original's own flag to run as root (it refuses root otherwise); it is
    passed only when we are root. AWS_REGION is mirrored into
    AWS_DEFAULT_REGION as for ``dispatch``. The worker gets a private
    LAVA_TMPDIR (removed afterwards) so concurrent runs never share job
    directories. It is killed after --seconds (default 120). Its log lines
    (stderr and stdout) are relayed to our stderr; stdout gets one JSON
    line {"ok": true, "exit_status": 0, "seconds": <elapsed>}.
    Exit 0 when the worker exited 0, 2 otherwise (non-zero exit, timeout).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.machinery
import importlib.util
import json
import logging
import os
import subprocess
import sys
import sysconfig
from typing import Any

INTERNAL_ERROR = 2


class InternalError(Exception):
    """A problem with this script or its environment, not with the message."""


# ------------------------------------------------------------------------------
def scripts_dir() -> str:
    """Directory holding the console scripts of the running (venv) interpreter."""

    d = sysconfig.get_path('scripts')
    if d and os.path.exists(os.path.join(d, 'lava-worker')):
        return d
    d = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(d, 'lava-worker')):
        return d
    raise InternalError('Cannot find jinlava console scripts (run me with the jinlava venv python)')


# ------------------------------------------------------------------------------
def load_lava_worker_script():
    """
    Import jinlava's ``lava-worker`` console script as a module.

    The worker logic (JobRunner etc.) lives in the script itself, not in the
    lava package. Its main() is guarded by ``if __name__ == '__main__'`` so
    importing it under another name runs only imports and definitions.
    """

    path = os.path.join(scripts_dir(), 'lava-worker')
    loader = importlib.machinery.SourceFileLoader('jinlava_lava_worker', path)
    spec = importlib.util.spec_from_loader('jinlava_lava_worker', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------
def json_out(obj: Any) -> Any:
    """JSON default: datetimes as isoformat, anything else as repr."""

    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    return repr(obj)


# ------------------------------------------------------------------------------
# Stand-ins for the objects JobRunner.get_next_job() touches.


class FakeSqsMessage:
    """
    Stand-in for a boto3 sqs.Message.

    get_next_job() / job_done() read: .body, .attributes['ApproximateReceiveCount']
    and call .delete().
    """

    def __init__(self, body: str):
        self.body = body
        self.attributes = {'ApproximateReceiveCount': '1'}
        self.deleted = False

    def delete(self):
        self.deleted = True


class FakeJobQueue:
    """
    Stand-in for the worker's internal queue.Queue.

    get_next_job() calls .get(); job_done() calls .task_done().
    """

    def __init__(self, msg: FakeSqsMessage):
        self._msg = msg

    def get(self):
        return self._msg

    def task_done(self):
        pass


class FakeJobsTable:
    """
    Stand-in for the boto3 DynamoDB Table ``lava.<realm>.jobs``.

    lava.lavacore.get_job_spec() only calls .get_item(Key={'job_id': ...})['Item'].
    It returns a valid job record for ANY job_id (job existence is not checked)
    whose worker is the worker's own name, so the job-worker check passes and
    max_tries (0) never trips.
    """

    def __init__(self, item: dict[str, Any]):
        self._item = item

    def get_item(self, Key):  # noqa: N803 - boto3 signature
        item = json.loads(json.dumps(self._item))  # fresh copy per call
        item['job_id'] = Key['job_id']
        return {'Item': item}


# ------------------------------------------------------------------------------
def cmd_validate_message(args: argparse.Namespace) -> int:
    """Validate a dispatch message body read from stdin with the original code."""

    try:
        body = sys.stdin.buffer.read().decode('utf-8')
    except Exception as e:
        raise InternalError(f'Cannot read stdin: {e}')

    try:
        extra_spec = json.loads(args.job_spec) if args.job_spec else {}
        if not isinstance(extra_spec, dict):
            raise ValueError('must be a JSON object')
    except ValueError as e:
        raise InternalError(f'Bad --job-spec: {e}')

    lw = load_lava_worker_script()

    # Default the worker's own realm/worker to what the message says, so those
    # checks pass unless the caller wants to test a mismatch.
    try:
        peek = json.loads(body)
    except Exception:
        peek = None
    if not isinstance(peek, dict):
        peek = {}
    realm = args.realm if args.realm is not None else peek.get('realm', 'compat-realm')
    worker = args.worker if args.worker is not None else peek.get('worker', 'compat-worker')

    job_record = {
        'job_id': None,  # replaced by the looked-up job_id
        'type': 'cmd',
        'worker': worker,
        'payload': 'true',
        # owner/description given so get_job_spec() emits no deprecation warnings
        'owner': 'compat',
        'description': 'compat',
        'max_tries': 0,
    }
    job_record.update(extra_spec)
    job_record.setdefault('worker', worker)

    # Build a JobRunner WITHOUT running its __init__ (which would create a boto3
    # session and a DynamoDB Table resource). get_next_job()/job_done() read
    # exactly these instance attributes:
    #   self.job_queue      .get() -> message; .task_done()
    #   self._dispatch_msg  set by get_next_job itself (initialised to None)
    #   self.realm          compared with message['realm']
    #   self.worker         compared with message['worker'] and job_spec['worker']
    #   self.job_table      passed to lava.lavacore.get_job_spec()
    # (self.realm is also passed to augment_job_spec() and stamped on the spec.)
    msg = FakeSqsMessage(body)
    runner = lw.JobRunner.__new__(lw.JobRunner)
    runner.job_queue = FakeJobQueue(msg)
    runner._dispatch_msg = None
    runner.realm = realm
    runner.worker = worker
    runner.job_table = FakeJobsTable(job_record)

    try:
        job_spec = runner.get_next_job()  # <-- the original code path
    except Exception as e:
        result = {
            'ok': False,
            'error': str(e),
            'error_type': type(e).__name__,
            'deleted': msg.deleted,
        }
    else:
        parsed = {
            k: job_spec.get(k)
            for k in ('realm', 'worker', 'job_id', 'run_id', 'ts_dispatch', 'parameters', 'globals')
        }
        ts = job_spec.get('ts_dispatch')
        if isinstance(ts, _dt.datetime):
            parsed['ts_dispatch_tz_aware'] = ts.tzinfo is not None and ts.utcoffset() is not None
        result = {'ok': True, 'parsed': parsed}

    print(json.dumps(result, default=json_out))
    return 0


# ------------------------------------------------------------------------------
def cmd_dispatch(args: argparse.Namespace) -> int:
    """Dispatch with the original lava-dispatcher and fetch the queued body."""

    import boto3

    if not os.environ.get('AWS_ENDPOINT_URL'):
        raise InternalError('AWS_ENDPOINT_URL is not set (refusing to talk to real AWS)')

    # botocore reads the region from AWS_DEFAULT_REGION (it ignores AWS_REGION),
    # so mirror AWS_REGION into it for the dispatcher and for us.
    if not os.environ.get('AWS_DEFAULT_REGION') and os.environ.get('AWS_REGION'):
        os.environ['AWS_DEFAULT_REGION'] = os.environ['AWS_REGION']

    dispatcher = os.path.join(scripts_dir(), 'lava-dispatcher')
    cmd = [sys.executable, dispatcher, '--no-colour', '-r', args.realm, '-w', args.worker]
    for nv in args.param or []:
        cmd += ['-p', nv]
    for nv in args.glob or []:
        cmd += ['-g', nv]
    cmd += ['--', args.job]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    sys.stderr.write(proc.stderr)
    if proc.stdout:
        sys.stderr.write(f'[lava-dispatcher stdout] {proc.stdout}')
    if proc.returncode != 0:
        raise InternalError(f'lava-dispatcher exited with status {proc.returncode}')

    sqs = boto3.Session().client('sqs')
    queue_name = f'lava-{args.realm}-{args.worker}'
    try:
        queue_url = sqs.get_queue_url(QueueName=queue_name)['QueueUrl']
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5
        )
    except Exception as e:
        raise InternalError(f'Cannot receive from {queue_name}: {e}')

    messages = resp.get('Messages', [])
    if not messages:
        raise InternalError(f'No message arrived on {queue_name} within 5 s')

    m = messages[0]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m['ReceiptHandle'])
    sys.stdout.write(m['Body'])
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------
def cmd_run_worker(args: argparse.Namespace) -> int:
    """Run the original lava-worker in batch mode until its queue is empty."""

    import shutil
    import tempfile
    import time

    if not os.environ.get('AWS_ENDPOINT_URL'):
        raise InternalError('AWS_ENDPOINT_URL is not set (refusing to talk to real AWS)')

    env = dict(os.environ)
    if not env.get('AWS_DEFAULT_REGION') and env.get('AWS_REGION'):
        env['AWS_DEFAULT_REGION'] = env['AWS_REGION']

    worker = os.path.join(scripts_dir(), 'lava-worker')
    cmd = [sys.executable, worker]
    if os.geteuid() == 0:
        cmd.append('--root')  # the original refuses root without it
    cmd += ['--no-colour', '--level', 'info', '-r', args.realm, '-w', args.worker]
    cmd += ['--batch', '--sleep', '0', '--wait', '1', '--threads', str(args.threads)]

    tmpdir = tempfile.mkdtemp(prefix='jinlava-worker-')
    env['LAVA_TMPDIR'] = tmpdir
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding='utf-8',
            errors='replace',
            timeout=args.seconds,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        for out in (e.stdout, e.stderr):
            if out:
                sys.stderr.write(out if isinstance(out, str) else out.decode('utf-8', 'replace'))
        raise InternalError(f'lava-worker did not finish in {args.seconds} s')
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    elapsed = round(time.monotonic() - started, 3)
    sys.stderr.write(proc.stderr)
    if proc.stdout:
        sys.stderr.write(proc.stdout)
    if proc.returncode != 0:
        raise InternalError(f'lava-worker exited with status {proc.returncode}')
    print(json.dumps({'ok': True, 'exit_status': proc.returncode, 'seconds': elapsed}))
    return 0


# ------------------------------------------------------------------------------
def main() -> int:
    argp = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = argp.add_subparsers(dest='command', required=True)

    v = sub.add_parser('validate-message', help='validate a dispatch body from stdin')
    v.add_argument('--realm', help="worker's realm (default: the message's)")
    v.add_argument('--worker', help="worker's name (default: the message's)")
    v.add_argument('--job-spec', help='JSON object merged over the stand-in job record')
    v.set_defaults(func=cmd_validate_message)

    d = sub.add_parser('dispatch', help='dispatch with the original lava-dispatcher')
    d.add_argument('--realm', required=True)
    d.add_argument('--worker', required=True)
    d.add_argument('--job', required=True)
    d.add_argument('-p', '--param', action='append', metavar='N=V')
    d.add_argument('-g', '--global', dest='glob', action='append', metavar='N=V')
    d.set_defaults(func=cmd_dispatch)

    w = sub.add_parser('run-worker', help='run the original lava-worker in batch mode')
    w.add_argument('--realm', required=True)
    w.add_argument('--worker', required=True)
    w.add_argument('--seconds', type=float, default=120, help='kill it after this long')
    w.add_argument('--threads', type=int, default=1, help='worker threads (default 1)')
    w.set_defaults(func=cmd_run_worker)

    args = argp.parse_args()

    # Anything the original logs goes to stderr, never stdout.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('[jinlava %(levelname)s] %(message)s'))
    lava_log = logging.getLogger('lava')
    lava_log.addHandler(handler)
    lava_log.setLevel(logging.WARNING)
    lava_log.propagate = False

    try:
        return args.func(args)
    except InternalError as e:
        print(f'jinlava_check: {e}', file=sys.stderr)
        return INTERNAL_ERROR
    except Exception as e:
        print(f'jinlava_check: internal error: {type(e).__name__}: {e}', file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == '__main__':
    sys.exit(main())
