//! The worker behind a faulty network (issue #6 §5): its AWS calls go
//! through the fault-injecting proxy, the test's own calls go straight to
//! the emulator. Every run must complete exactly once and the worker must
//! keep running.

use std::collections::HashSet;
use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::Background;
use lava_tests::proxy::{Fault, FaultProxy, Faults};
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

/// The worker, talking to AWS through the proxy.
fn worker(t: &TestRealm, proxy: &FaultProxy, threads: &str) -> Background {
    let mut cmd = t.worker("core");
    cmd.args(["--threads", threads, "--retries", "-1"])
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("LAVA_VISIBILITY_KEEPALIVE", "1s");
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
    let mut worker = worker(&t, &proxy, "4");
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
    let mut worker = worker(&t, &proxy, "3");
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
