//! The worker behind a faulty network: its AWS calls go through the
//! fault-injecting proxy, the test's own calls go straight to the emulator.
//! Every run must complete exactly once and the worker must keep running,
//! up to faults on 60 % of its requests, with duplicate copies of messages
//! and a second worker killed midway.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::Background;
use lava_tests::proxy::{Fault, FaultProxy, Faults};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const JOBS: usize = 100;

/// Puts `jobs` cmd jobs and dispatches `runs` runs of them, in turn,
/// straight to the emulator (only the worker sees the faults); returns
/// (job id, run id) of each run.
async fn dispatch_runs(t: &TestRealm, jobs: usize, runs: usize) -> Vec<(String, String)> {
    let job_ids: Vec<String> = (0..jobs).map(|i| format!("flaky{i}")).collect();
    for job_id in &job_ids {
        t.put_job(json!({"job_id": job_id, "type": "cmd", "worker": "core",
                         "payload": "sh -c 'echo $LAVA_RUN_ID'", "enabled": true,
                         "owner": "tests", "description": "runs through faults"}))
            .await;
    }
    let args: Vec<&str> = (0..runs)
        .map(|i| job_ids[i % job_ids.len()].as_str())
        .collect();
    let out = lava_tests::output(t.dispatch().args(&args)).await;
    assert!(out.status.success(), "{}", lava_tests::stderr(&out));
    let run_ids: Vec<String> = lava_tests::stdout(&out)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(run_ids.len(), runs);
    args.iter().map(|j| j.to_string()).zip(run_ids).collect()
}

/// The fault schedule's seed: `LAVA_FAULT_SEED` or a fixed one.
fn seed() -> u64 {
    std::env::var("LAVA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1a7a)
}

/// A proxy in front of the emulator.
async fn proxy(faults: Faults) -> FaultProxy {
    let upstream = lava_tests::endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    FaultProxy::start(&upstream, faults).await
}

/// The worker, talking to AWS through the proxy, renewing leases every
/// `keepalive`.
fn worker(t: &TestRealm, proxy: &FaultProxy, threads: &str, keepalive: &str) -> Background {
    let mut cmd = t.worker("core");
    cmd.args(["--threads", threads, "--retries", "-1"])
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("LAVA_VISIBILITY_KEEPALIVE", keepalive);
    Background::start(cmd)
}

/// Waits until every run has finished, then checks each completed exactly
/// once, with no entry written twice and no lease left; returns how many
/// attempts were started in all.
async fn assert_each_completed_once(
    t: &TestRealm,
    runs: &[(String, String)],
    seed: u64,
    worker: &Background,
) -> usize {
    let finished = |log: &[Value]| {
        log.iter().any(|e| {
            ["complete", "failed", "rejected", "skipped"]
                .contains(&e["status"].as_str().unwrap_or_default())
        })
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let mut unfinished = Vec::new();
        for (job_id, run_id) in runs {
            let log = t.log(job_id, run_id).await;
            if !finished(&log) {
                unfinished.push((job_id, run_id, log));
            }
        }
        if unfinished.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > until {
            let log = worker.log();
            let tail: String = log
                .lines()
                .rev()
                .take(150)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "gave up after 600s waiting for {} runs to finish (seed {seed}); unfinished: {unfinished:#?}\nworker log (last lines):\n{tail}",
                runs.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Duplicates of finished runs may still come back: give them time, then look.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut attempts = 0;
    for (job_id, run_id) in runs {
        let log = t.log(job_id, run_id).await;
        let statuses: Vec<&str> = log
            .iter()
            .map(|e| e["status"].as_str().unwrap_or_default())
            .collect();
        let completes = statuses.iter().filter(|s| **s == "complete").count();
        attempts += statuses.iter().filter(|s| **s == "starting").count();
        assert_eq!(
            completes,
            1,
            "{job_id} ({run_id}) seed {seed}: {log:?}\n{}",
            worker.log()
        );
        assert_eq!(statuses.last(), Some(&"complete"), "{log:?}");
        assert!(
            !statuses.iter().any(|s| ["failed", "rejected"].contains(s)),
            "{log:?}"
        );
        let mut seen = HashSet::new();
        for entry in &log {
            let key = (entry["status"].to_string(), entry["ts_event"].to_string());
            assert!(seen.insert(key), "duplicated entry in {run_id}: {log:?}");
        }
        let item = t.events(job_id, run_id).await.unwrap_or_default();
        assert_eq!(item.get("status"), Some(&json!("complete")));
        assert!(item.get("lease").is_none(), "lease left on {run_id}");
    }
    attempts
}

#[tokio::test]
async fn aws_faults_every_run_completes_exactly_once() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 5).await;
    let runs = dispatch_runs(&t, 10, JOBS).await;
    let seed = seed();
    // LAVA_FAULT_SCALE multiplies every rate (stress runs by hand).
    let scale: f64 = std::env::var("LAVA_FAULT_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let proxy = proxy(Faults {
        seed,
        drop: 0.03 * scale,
        reset: 0.03 * scale,
        delay: 0.05 * scale,
        max_delay: Duration::from_millis(1500),
        lose_reply: 0.04 * scale,
        error_500: 0.03 * scale,
        error_503: 0.03 * scale,
        throttle: 0.04 * scale,
        // Each costs an attempt timeout: see the test below.
        hang: 0.0,
    })
    .await;
    let mut worker = worker(&t, &proxy, "4", "1s");
    let attempts = assert_each_completed_once(&t, &runs, seed, &worker).await;
    assert!(worker.running(), "the worker stopped: {}", worker.log());
    let summary = proxy.stats.summary();
    eprintln!("seed {seed}: {JOBS} runs, {attempts} attempts; proxy: {summary:?}");
    for (fault, count) in &summary {
        assert!(
            *count > 0 || *fault == Fault::Hang,
            "no {fault:?} injected: {summary:?}"
        );
    }
    assert!(proxy.stats.count(Fault::Pass) > 0);
    let status = worker.stop().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
}

/// A DynamoDB call whose reply never comes, on a connection that stays
/// open, is abandoned when its attempt times out and tried again: no run
/// waits for ever on a silent socket.
#[tokio::test]
async fn aws_silent_connections_are_abandoned_and_retried() {
    let t = TestRealm::new(&["core"]).await;
    let runs = dispatch_runs(&t, 2, 6).await;
    let seed = seed();
    let proxy = proxy(Faults {
        hang: 0.15,
        ..Faults::none(seed)
    })
    .await;
    // A lease (3 × the keep-alive) outlasting the period plus a hung
    // call's 10 s attempt limit: one hung renewal does not lose it.
    let mut worker = worker(&t, &proxy, "3", "10s");
    assert_each_completed_once(&t, &runs, seed, &worker).await;
    assert!(worker.running(), "the worker stopped: {}", worker.log());
    let hangs = proxy.stats.count(Fault::Hang);
    eprintln!("seed {seed}: {hangs} hanging calls");
    assert!(
        hangs > 0,
        "no call was left hanging: {:?}",
        proxy.stats.summary()
    );
    let status = worker.stop().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
}

/// Faults on 60 % of the worker's requests, of every kind but hangs.
fn chaos(seed: u64) -> Faults {
    Faults {
        seed,
        drop: 0.08,
        reset: 0.08,
        delay: 0.10,
        max_delay: Duration::from_millis(1500),
        lose_reply: 0.10,
        error_500: 0.08,
        error_503: 0.08,
        throttle: 0.08,
        hang: 0.0,
    }
}

/// Puts ten cmd jobs whose payload appends "<run id> <worker pid>" to
/// `record` and then sleeps `pause` seconds, dispatches 100 runs of them,
/// takes the messages off the queue and sends them back with a second copy
/// of every tenth (as a retried send would). Returns (job id, run id) of
/// each run.
async fn chaos_runs(t: &TestRealm, record: &Path, pause: &str) -> Vec<(String, String)> {
    let payload = format!(
        "sh -c 'echo \"$LAVA_RUN_ID $PPID\" >> {}; sleep {pause}'",
        record.display()
    );
    let job_ids: Vec<String> = (0..10).map(|i| format!("chaos{i}")).collect();
    for job_id in &job_ids {
        t.put_job(json!({"job_id": job_id, "type": "cmd", "worker": "core",
                         "payload": payload, "enabled": true,
                         "owner": "tests", "description": "runs through chaos"}))
            .await;
    }
    let args: Vec<&str> = (0..JOBS).map(|i| job_ids[i % 10].as_str()).collect();
    let out = lava_tests::output(t.dispatch().args(&args)).await;
    assert!(out.status.success(), "{}", lava_tests::stderr(&out));
    let run_ids: Vec<String> = lava_tests::stdout(&out)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(run_ids.len(), JOBS);
    let bodies = t.drain_raw("core", JOBS, Duration::from_secs(30)).await;
    assert_eq!(bodies.len(), JOBS);
    let queue = t.queue("core").await;
    for (i, body) in bodies.iter().enumerate() {
        let copies = if i % 10 == 0 { 2 } else { 1 };
        for _ in 0..copies {
            t.backend
                .queue
                .send(&queue, body, 0)
                .await
                .unwrap_or_else(|e| panic!("resend: {e}"));
        }
    }
    args.iter().map(|j| j.to_string()).zip(run_ids).collect()
}

/// The scene of a chaos test: a realm whose queue has a 10 s visibility,
/// the 100 runs of [`chaos_runs`] waiting on it, their payloads' record,
/// and the proxy at a 60 % fault rate.
struct Chaos {
    t: TestRealm,
    _scratch: tempfile::TempDir,
    record: std::path::PathBuf,
    runs: Vec<(String, String)>,
    seed: u64,
    proxy: FaultProxy,
}

impl Chaos {
    /// Sets it up with payloads that sleep `pause` seconds.
    async fn start(pause: &str) -> Self {
        let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 10).await;
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let record = scratch.path().join("ran");
        let runs = chaos_runs(&t, &record, pause).await;
        let seed = seed();
        let proxy = proxy(chaos(seed)).await;
        Self {
            t,
            _scratch: scratch,
            record,
            runs,
            seed,
            proxy,
        }
    }
}

/// Each run's payload executions, as the pids of the workers that ran them.
fn executions(record: &Path) -> HashMap<String, Vec<i32>> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut runs: HashMap<String, Vec<i32>> = HashMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(run_id), Some(pid)) = (words.next(), words.next()) {
            let pid = pid.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            runs.entry(run_id.to_string()).or_default().push(pid);
        }
    }
    runs
}

/// A worker for the chaos tests: through the proxy, ten slots (under
/// these faults a run spends seconds waiting for AWS), a 2 s keep-alive (an
/// 8 s lease) under the queue's 10 s visibility.
fn chaos_worker(t: &TestRealm, proxy: &FaultProxy) -> Background {
    let mut cmd = t.worker("core");
    cmd.args(["--threads", "10", "--retries", "2"])
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("LAVA_VISIBILITY_KEEPALIVE", "2s")
        .env("RUST_BACKTRACE", "1");
    Background::start(cmd)
}

/// Waits until every run has a final entry (10 minutes at most), then for
/// longer than the queue's visibility, so that copies left invisible come
/// back and are dealt with; returns each run's log.
async fn await_final(
    t: &TestRealm,
    runs: &[(String, String)],
    seed: u64,
    workers: &[&Background],
) -> Vec<Vec<Value>> {
    let until = tokio::time::Instant::now() + Duration::from_secs(600);
    // Only the runs not yet final are read again: the emulator serves the
    // worker too.
    let mut unfinished: Vec<&(String, String)> = runs.iter().collect();
    loop {
        let mut still = Vec::new();
        for run in unfinished {
            let log = t.log(&run.0, &run.1).await;
            if !log.iter().any(is_final) {
                still.push(run);
            }
        }
        unfinished = still;
        if unfinished.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > until {
            let logs: Vec<String> = workers.iter().map(|w| tail(&w.log(), 100)).collect();
            panic!(
                "gave up after 600 s (seed {seed}); unfinished: {unfinished:?}\nworker logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut logs = Vec::with_capacity(runs.len());
    for (job_id, run_id) in runs {
        logs.push(t.log(job_id, run_id).await);
    }
    logs
}

fn is_final(entry: &Value) -> bool {
    ["complete", "failed", "rejected", "skipped"]
        .contains(&entry["status"].as_str().unwrap_or_default())
}

/// The lines of a worker log that name a run or report a panic; the whole
/// log is kept in the target directory, named in the last line.
fn lines_about(log: &str, run_id: &str) -> String {
    let kept = lava_tests::target_dir().join(format!("worker-{run_id}.log"));
    let saved = match std::fs::write(&kept, log) {
        Ok(()) => format!("whole log: {}", kept.display()),
        Err(e) => format!("cannot keep the whole log at {}: {e}", kept.display()),
    };
    log.lines()
        .filter(|l| l.contains(run_id) || l.contains("panicked"))
        .chain(std::iter::once(saved.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One run's log has exactly one final entry, `complete`, and nothing
/// rejected or failed.
fn assert_completed_once(run_id: &str, log: &[Value], seed: u64) {
    let statuses: Vec<&str> = log
        .iter()
        .map(|e| e["status"].as_str().unwrap_or_default())
        .collect();
    let finals: Vec<&&str> = statuses
        .iter()
        .filter(|s| is_final(&json!({"status": s})))
        .collect();
    assert_eq!(
        finals,
        [&"complete"],
        "{run_id} (seed {seed}): {statuses:?}"
    );
}

/// 60 % of the worker's AWS requests fail in one way or another, and every
/// tenth message comes twice: every payload runs exactly once, every run
/// has exactly one final entry, and none is rejected.
#[tokio::test]
async fn aws_chaos_every_payload_runs_exactly_once() {
    let Chaos {
        t,
        _scratch,
        record,
        runs,
        seed,
        proxy,
    } = Chaos::start("0").await;
    let mut worker = chaos_worker(&t, &proxy);
    let logs = await_final(&t, &runs, seed, &[&worker]).await;
    let ran = executions(&record);
    for ((_, run_id), log) in runs.iter().zip(&logs) {
        assert_completed_once(run_id, log, seed);
        assert_eq!(
            ran.get(run_id).map(Vec::len),
            Some(1),
            "{run_id} (seed {seed}) ran {:?}: {log:?}\nworker log:\n{}",
            ran.get(run_id),
            lines_about(&worker.log(), run_id)
        );
    }
    assert!(worker.running(), "the worker stopped: {}", worker.log());
    let summary = proxy.stats.summary();
    let passed = proxy.stats.count(Fault::Pass) as f64;
    let total: f64 = summary.iter().map(|(_, n)| *n as f64).sum();
    eprintln!("seed {seed}: proxy {summary:?}");
    assert!(
        passed / total < 0.5,
        "the proxy passed {passed} of {total} requests: {summary:?}"
    );
    let status = worker.stop().await;
    assert_eq!(status.code(), Some(0), "{}", tail(&worker.log(), 100));
}

/// The same chaos with two workers, one of them SIGKILLed while it runs a
/// payload: a run whose payload was running there runs again on the other
/// (at least once), with both attempts in its log; every other run runs
/// exactly once; every run ends with exactly one final entry.
#[tokio::test]
async fn aws_chaos_with_a_worker_killed_midway() {
    let Chaos {
        t,
        _scratch,
        record,
        runs,
        seed,
        proxy,
    } = Chaos::start("1").await;
    let mut doomed = chaos_worker(&t, &proxy);
    let mut survivor = chaos_worker(&t, &proxy);
    // Killed once a fifth of the runs have started, while it runs a payload.
    lava_tests::procs::wait_for(
        "the first worker to run a payload after 20 runs",
        Duration::from_secs(300),
        || {
            let ran = executions(&record);
            let started = ran.values().map(Vec::len).sum::<usize>();
            let busy = started >= 20
                && ran.values().flatten().any(|p| *p == doomed.pid)
                && !lava_tests::procs::children(doomed.pid).is_empty();
            async move { busy.then_some(()) }
        },
    )
    .await;
    doomed.signal(nix::sys::signal::Signal::SIGKILL);
    let killed = doomed.pid;
    let _ = doomed.wait().await;
    let logs = await_final(&t, &runs, seed, &[&survivor]).await;
    let ran = executions(&record);
    let mut again = 0;
    for ((_, run_id), log) in runs.iter().zip(&logs) {
        assert_completed_once(run_id, log, seed);
        // A payload the killed worker started as it died reads as its
        // parent whoever adopted it: any parent but the survivor is the
        // killed worker.
        let pids: Vec<i32> = ran
            .get(run_id)
            .map(|pids| {
                pids.iter()
                    .map(|p| if *p == survivor.pid { *p } else { killed })
                    .collect()
            })
            .unwrap_or_default();
        let runnings = log.iter().filter(|e| e["status"] == "running").count();
        match pids.as_slice() {
            [_] => {}
            [first, second] if *first == killed && *second != killed => {
                again += 1;
                assert!(
                    runnings >= 2,
                    "{run_id} (seed {seed}) ran twice, one attempt logged: {log:?}"
                );
            }
            other => panic!(
                "{run_id} (seed {seed}) ran on {other:?} (killed: {killed}): {log:?}\nworker log:\n{}",
                lines_about(&survivor.log(), run_id)
            ),
        }
    }
    assert!(again > 0, "no run was cut short by the kill (seed {seed})");
    assert!(survivor.running(), "the worker stopped: {}", survivor.log());
    let status = survivor.stop().await;
    assert_eq!(status.code(), Some(0), "{}", tail(&survivor.log(), 100));
}

/// A payload that exited before the drain deadline is recorded as it
/// ended, even when the deadline passes while its output is being stored:
/// the deadline stops payloads, never the recording of one that is over.
#[tokio::test]
async fn aws_payload_over_before_the_drain_deadline_is_recorded_as_it_ended() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(json!({"job_id": "drained", "type": "cmd", "worker": "core",
                     "payload": "echo done", "enabled": true, "owner": "tests",
                     "description": "ends before the drain deadline"}))
        .await;
    let proxy = proxy(Faults::none(seed())).await;
    proxy.hold_uploads();
    let mut cmd = t.worker("core");
    cmd.args(["--threads", "1", "--drain-timeout", "1s"])
        .env("AWS_ENDPOINT_URL", proxy.url());
    let mut worker = Background::start(cmd);
    let run_id = t.dispatch_job("drained", &[]).await;
    // Its stdout upload is held: the payload is over.
    lava_tests::procs::wait_for("the output upload", Duration::from_secs(60), || {
        let held = proxy.held_uploads();
        async move { (held > 0).then_some(()) }
    })
    .await;
    worker.signal(Signal::SIGTERM);
    lava_tests::procs::wait_for("the drain deadline", Duration::from_secs(30), || {
        let log = worker.log();
        async move { log.contains("drain deadline reached").then_some(()) }
    })
    .await;
    proxy.release_uploads();
    let status = worker.wait().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
    assert_eq!(
        t.statuses("drained", &run_id).await,
        vec!["starting", "running", "complete"],
        "{}",
        worker.log()
    );
    assert!(t.drain("core", 1, Duration::from_secs(2)).await.is_empty());
}
