//! The worker under stress (issue #6): payloads that fork daemons, long
//! runs, signals, crashes and misbehaving messages. Each test starts real
//! workers in the background and waits for events with generous deadlines.

use std::path::Path;
use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::{self, Background, wait_for};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// A payload script that forks every kind of descendant a job can leave
/// behind and writes their pids to `$PIDS` (7 lines in all): a background
/// child, a `nohup` one, a double-forked orphan, a `setsid` session leader
/// and an orphan in its own session (both ignore SIGTERM, so only the
/// search by `LAVA_RUN_ID` ends them), one in the group that ignores
/// SIGTERM, and itself.
/// With `$MARK` set, a second run (the mark exists) just succeeds.
const FORKER: &str = r#"#!/bin/sh
if [ -n "$MARK" ] && [ -e "$MARK" ]; then echo second attempt; exit 0; fi
[ -n "$MARK" ] && touch "$MARK"
sleep 300 & echo $! >> "$PIDS"
nohup sleep 300 >/dev/null 2>&1 & echo $! >> "$PIDS"
sh -c 'sleep 300 & echo $! >> "$PIDS"' &
setsid sh -c 'trap "" TERM; echo $$ >> "$PIDS"; exec sleep 300' >/dev/null 2>&1 &
setsid sh -c 'trap "" TERM; sleep 300 & echo $! >> "$PIDS"' >/dev/null 2>&1 &
sh -c 'trap "" TERM; exec sleep 300' & echo $! >> "$PIDS"
echo $$ >> "$PIDS"
sleep 300
"#;

const FORKER_PIDS: usize = 7;

/// Where a test keeps its script, pid file and mark.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("forker.sh"), FORKER).unwrap_or_else(|e| panic!("{e}"));
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn pids(&self) -> std::path::PathBuf {
        self.dir.path().join("pids")
    }
}

fn job(job_id: &str, payload: &str, parameters: Value) -> Value {
    json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": payload,
           "enabled": true, "owner": "tests", "description": "resilience test job",
           "parameters": parameters})
}

/// The forker job: `timeout` as given, its pid file and mark in `s`.
fn forker_job(job_id: &str, s: &Scratch, timeout: &str) -> Value {
    job(
        job_id,
        &format!("sh {}", s.path("forker.sh")),
        json!({"timeout": timeout, "env": {"PIDS": s.path("pids"), "MARK": s.path("mark")}}),
    )
}

/// A worker polling in the background.
fn start_worker(t: &TestRealm, args: &[&str], env: &[(&str, &str)]) -> Background {
    let mut cmd = t.worker("core");
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Background::start(cmd)
}

/// Waits until a run's log holds `status` (`n` times), returning the log.
async fn wait_status(
    t: &TestRealm,
    job_id: &str,
    run_id: &str,
    status: &str,
    n: usize,
) -> Vec<Value> {
    wait_for(
        &format!("{n} × {status} for {job_id} ({run_id})"),
        Duration::from_secs(120),
        || async {
            let log = t.log(job_id, run_id).await;
            let count = log.iter().filter(|e| e["status"] == json!(status)).count();
            (count >= n).then_some(log)
        },
    )
    .await
}

fn statuses(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every descendant is gone, and the worker (a subreaper) left no zombies.
async fn assert_gone(pids: &[i32], worker: Option<i32>) {
    procs::wait_all_dead("the payload's descendants to die", pids).await;
    if let Some(worker) = worker {
        wait_for(
            "the worker to reap its orphans",
            Duration::from_secs(30),
            || async { procs::zombie_children(worker).is_empty().then_some(()) },
        )
        .await;
    }
}

// 1. Process groups --------------------------------------------------------

#[tokio::test]
async fn timeout_kills_every_descendant_even_setsid_ones() {
    let t = TestRealm::new(&["core"]).await;
    let s = Scratch::new();
    t.put_job(job(
        "forker",
        &format!("sh {}", s.path("forker.sh")),
        json!({"timeout": "3s", "env": {"PIDS": s.path("pids")}}),
    ))
    .await;
    let run_id = t.dispatch_job("forker", &[]).await;
    let mut worker = start_worker(&t, &[], &[("LAVA_KILL_GRACE", "1s")]);
    let pids = procs::read_pids(&s.pids(), FORKER_PIDS).await;
    let log = wait_status(&t, "forker", &run_id, "failed", 1).await;
    assert_eq!(statuses(&log), vec!["starting", "running", "failed"]);
    assert_eq!(
        log[2]["info"]["error"],
        json!("Timed out after 3.0 seconds"),
        "{log:?}"
    );
    assert_eq!(log[2]["info"]["error_data"]["exit_status"], json!(28));
    assert_gone(&pids, Some(worker.pid)).await;
    assert!(worker.running(), "the worker goes on: {}", worker.log());
    assert!(worker.stop().await.success(), "{}", worker.log());
}

#[tokio::test]
async fn drain_deadline_kills_every_descendant_and_hands_the_run_on() {
    let t = TestRealm::new(&["core"]).await;
    let s = Scratch::new();
    t.put_job(forker_job("forker", &s, "10m")).await;
    let run_id = t.dispatch_job("forker", &[]).await;
    let mut worker = start_worker(&t, &["--drain-timeout", "2s"], &[("LAVA_KILL_GRACE", "1s")]);
    let pids = procs::read_pids(&s.pids(), FORKER_PIDS).await;
    wait_status(&t, "forker", &run_id, "running", 1).await;
    worker.signal(Signal::SIGTERM);
    let status = worker.wait().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
    let log = t.log("forker", &run_id).await;
    assert_eq!(statuses(&log), vec!["starting", "running", "retrying"]);
    assert_eq!(log[2]["info"], json!("Interrupted by worker shutdown"));
    assert_gone(&pids, None).await;
    // The message was made visible again: another worker runs it to the end.
    let out = t.run_worker("core", &[]).await;
    let log = t.log("forker", &run_id).await;
    assert_eq!(
        statuses(&log),
        vec![
            "starting", "running", "retrying", "starting", "running", "complete"
        ],
        "{}",
        lava_tests::stderr(&out)
    );
    assert!(Path::new(&s.path("mark")).exists());
}

// 2. Visibility keep-alive and leases ----------------------------------------

#[tokio::test]
async fn keepalive_keeps_a_long_run_invisible() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 5).await;
    t.put_job(job("long", "sleep 15", json!({}))).await;
    let run_id = t.dispatch_job("long", &[]).await;
    let env = [("LAVA_VISIBILITY_KEEPALIVE", "1s")];
    let mut first = start_worker(&t, &[], &env);
    wait_status(&t, "long", &run_id, "running", 1).await;
    // A second worker polls the same queue all along, and so does the test.
    let mut second = start_worker(&t, &[], &env);
    let queue = t.queue("core").await;
    let mut polls = 0;
    while !t
        .statuses("long", &run_id)
        .await
        .contains(&"complete".to_string())
    {
        let got = t
            .backend
            .queue
            .receive(&queue, 10, 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            got.is_empty(),
            "the message came back during its run: {got:?}"
        );
        polls += 1;
        assert!(polls < 300, "the run did not end");
    }
    t.assert_statuses("long", &run_id, &["starting", "running", "complete"])
        .await;
    assert!(first.stop().await.success(), "{}", first.log());
    assert!(second.stop().await.success(), "{}", second.log());
    assert!(
        !second.log().contains(&run_id),
        "the second worker saw the run: {}",
        second.log()
    );
    assert!(
        t.events("long", &run_id)
            .await
            .is_some_and(|i| i.get("lease").is_none())
    );
}

// 2 and 4. Crash safety ---------------------------------------------------------

/// A worker is SIGKILLed mid-run; another takes the run over once the
/// lease and the message's visibility have run out.
async fn takeover(visibility_secs: u32, keepalive: &str) {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = visibility_secs).await;
    let s = Scratch::new();
    t.put_job(forker_job("crash", &s, "10m")).await;
    let run_id = t.dispatch_job("crash", &[]).await;
    let env = [("LAVA_VISIBILITY_KEEPALIVE", keepalive)];
    let mut first = start_worker(&t, &[], &env);
    let pids = procs::read_pids(&s.pids(), FORKER_PIDS).await;
    wait_status(&t, "crash", &run_id, "running", 1).await;
    first.signal(Signal::SIGKILL);
    first.wait().await;
    // The heartbeat stops; after the lease and the visibility run out the
    // message comes back, and another worker runs it again.
    let mut second = start_worker(&t, &[], &env);
    let log = wait_status(&t, "crash", &run_id, "complete", 1).await;
    assert_eq!(
        statuses(&log),
        vec!["starting", "running", "starting", "running", "complete"],
        "{}",
        second.log()
    );
    // The dead worker's payload was left running; the new attempt's end
    // killed it by its LAVA_RUN_ID.
    assert_gone(&pids, None).await;
    assert!(second.stop().await.success(), "{}", second.log());
}

#[tokio::test]
async fn killed_worker_run_is_taken_over_by_another() {
    takeover(5, "1s").await;
}

/// With a queue timeout shorter than the lease (3 × keep-alive), copies come
/// back while the dead worker's lease holds and are left alone for a queue
/// timeout each; the run is still taken over once the lease has expired.
#[tokio::test]
async fn takeover_when_the_queue_timeout_is_shorter_than_the_lease() {
    takeover(2, "2s").await;
}

/// Two copies of one message (a retried SendMessage), polled by two
/// workers: one run; the other copy is left alone, then deleted.
#[tokio::test]
async fn duplicate_copies_of_a_message_run_once() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 3).await;
    t.put_job(job("dup", "sleep 4", json!({}))).await;
    let run_id = t.dispatch_job("dup", &[]).await;
    let bodies = t.drain_raw("core", 1, Duration::from_secs(10)).await;
    assert_eq!(bodies.len(), 1);
    let queue = t.queue("core").await;
    for _ in 0..2 {
        t.backend
            .queue
            .send(&queue, &bodies[0], 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let env = [("LAVA_VISIBILITY_KEEPALIVE", "1s")];
    let mut a = start_worker(&t, &[], &env);
    let mut b = start_worker(&t, &[], &env);
    wait_status(&t, "dup", &run_id, "complete", 1).await;
    wait_for(
        "the second copy to be deleted",
        Duration::from_secs(60),
        || {
            let logs = a.log() + &b.log();
            async move {
                logs.contains("already finished - duplicate deleted")
                    .then_some(())
            }
        },
    )
    .await;
    assert!(a.stop().await.success(), "{}", a.log());
    assert!(b.stop().await.success(), "{}", b.log());
    assert_eq!(
        t.statuses("dup", &run_id).await,
        vec!["starting", "running", "complete"],
        "{}\n{}",
        a.log(),
        b.log()
    );
    assert!(t.drain("core", 1, Duration::from_secs(5)).await.is_empty());
}

/// Runs workers one after another on a job whose payload SIGKILLs its
/// worker, until the run has a final entry; returns the log.
async fn kill_workers_until_final(
    t: &TestRealm,
    job_id: &str,
    run_id: &str,
    args: &[&str],
) -> Vec<Value> {
    let env = [("LAVA_VISIBILITY_KEEPALIVE", "1s")];
    for _ in 0..8 {
        let mut worker = start_worker(t, args, &env);
        wait_for(
            "the worker to die or the run to end",
            Duration::from_secs(60),
            || {
                let running = worker.running();
                async move {
                    let log = t.log(job_id, run_id).await;
                    let done = log.last().is_some_and(|e| {
                        ["rejected", "complete", "failed"]
                            .contains(&e["status"].as_str().unwrap_or_default())
                    });
                    (done || !running).then_some(())
                }
            },
        )
        .await;
        let log = t.log(job_id, run_id).await;
        if log.last().is_some_and(|e| e["status"] == json!("rejected")) {
            if worker.running() {
                assert!(worker.stop().await.success(), "{}", worker.log());
            }
            return log;
        }
        worker.wait().await;
    }
    panic!("the run never ended: {:?}", t.log(job_id, run_id).await);
}

#[tokio::test]
async fn max_tries_discards_a_message_that_keeps_killing_workers() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 3).await;
    let mut killer = job("killer", "sh -c 'kill -9 $PPID; sleep 5'", json!({}));
    killer["max_tries"] = json!(2);
    t.put_job(killer).await;
    let run_id = t.dispatch_job("killer", &[]).await;
    let log = kill_workers_until_final(&t, "killer", &run_id, &["--retries", "-1"]).await;
    let last = log.last().cloned().unwrap_or_default();
    assert_eq!(
        last["info"],
        json!(format!("Job killer ({run_id}): max_tries exceeded")),
        "{log:?}"
    );
    let starts = statuses(&log).iter().filter(|s| *s == "starting").count();
    assert!((1..=2).contains(&starts), "{log:?}");
    assert!(!statuses(&log).contains(&"complete".to_string()));
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn retries_flag_discards_a_message_that_keeps_killing_workers() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 3).await;
    t.put_job(job("killer", "sh -c 'kill -9 $PPID; sleep 5'", json!({})))
        .await;
    let run_id = t.dispatch_job("killer", &[]).await;
    let log = kill_workers_until_final(&t, "killer", &run_id, &["--retries", "1"]).await;
    let last = log.last().cloned().unwrap_or_default();
    let info = last["info"].as_str().unwrap_or_default();
    assert!(
        info.starts_with(&format!(
            "Job killer ({run_id}): Retry limit exceeded - deleted on cycle "
        )),
        "{log:?}"
    );
    let starts = statuses(&log).iter().filter(|s| *s == "starting").count();
    assert!((1..=2).contains(&starts), "{log:?}");
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
}

// 3. Shutdown ---------------------------------------------------------------

/// A stop signal lets the running job finish, takes no new message, exit 0.
async fn drain_on(signal: Signal) {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("short", "sleep 3", json!({}))).await;
    t.put_job(job("later", "true", json!({}))).await;
    let run_id = t.dispatch_job("short", &[]).await;
    let mut worker = start_worker(&t, &[], &[]);
    wait_status(&t, "short", &run_id, "running", 1).await;
    worker.signal(signal);
    // Sent while the poll in flight may still be waiting: if that poll
    // takes it, the worker must hand it back, not run it nor lose it.
    let later = t.dispatch_job("later", &[]).await;
    let status = worker.wait().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
    t.assert_statuses("short", &run_id, &["starting", "running", "complete"])
        .await;
    assert!(
        t.statuses("later", &later).await.is_empty(),
        "polling stopped"
    );
    assert_eq!(t.drain("core", 1, Duration::from_secs(10)).await.len(), 1);
}

#[tokio::test]
async fn sigterm_drains() {
    drain_on(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_drains() {
    drain_on(Signal::SIGINT).await;
}

#[tokio::test]
async fn sighup_drains() {
    drain_on(Signal::SIGHUP).await;
}

#[tokio::test]
async fn second_signal_kills_at_once_and_exits_128_plus_n() {
    let t = TestRealm::new(&["core"]).await;
    // Ignores SIGTERM; with a ten-minute grace only SIGKILL ends it soon.
    t.put_job(job(
        "stubborn",
        "sh -c 'trap \"\" TERM; sleep 300'",
        json!({}),
    ))
    .await;
    let run_id = t.dispatch_job("stubborn", &[]).await;
    let mut worker = start_worker(&t, &[], &[("LAVA_KILL_GRACE", "10m")]);
    wait_status(&t, "stubborn", &run_id, "running", 1).await;
    worker.signal(Signal::SIGTERM);
    wait_for("the drain to start", Duration::from_secs(30), || {
        let log = worker.log();
        async move { log.contains("draining").then_some(()) }
    })
    .await;
    worker.signal(Signal::SIGINT);
    let status = worker.wait().await;
    assert_eq!(status.code(), Some(130), "{}", worker.log());
    let log = t.log("stubborn", &run_id).await;
    assert_eq!(statuses(&log), vec!["starting", "running", "retrying"]);
    assert_eq!(log[2]["info"], json!("Interrupted by worker shutdown"));
    // Released: visible again at once, not after the hour of visibility.
    let back = t.drain("core", 1, Duration::from_secs(10)).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["run_id"], json!(run_id));
}

#[tokio::test]
async fn batch_exits_zero_on_an_empty_queue() {
    let t = TestRealm::new(&["core"]).await;
    let out = lava_tests::output(t.worker("core").arg("--batch")).await;
    assert_eq!(out.status.code(), Some(0), "{}", lava_tests::stderr(&out));
}

/// A run whose lease was taken over while its payload ran cannot write its
/// final entry: it ends with no outcome, and its post-job actions do not
/// run (they would run a second time when the run is run again).
#[tokio::test]
async fn a_run_that_cannot_record_its_end_runs_no_actions() {
    use lava_common::store::{Key, Table};
    let t = TestRealm::new(&["core"]).await;
    let s = Scratch::new();
    let (started, go) = (s.path("started"), s.path("go"));
    let mut stolen = job(
        "stolen",
        &format!("sh -c 'touch {started}; while [ ! -e {go} ]; do sleep 0.1; done'"),
        json!({}),
    );
    stolen["on_success"] = json!([{"action": "log", "message": "SUCCESS-ACTION-RAN"}]);
    stolen["on_fail"] = json!([{"action": "log", "message": "FAIL-ACTION-RAN"}]);
    t.put_job(stolen).await;
    let run_id = t.dispatch_job("stolen", &[]).await;
    // No renewal during the run: only the final write finds the thief.
    let mut worker = start_worker(&t, &[], &[("LAVA_VISIBILITY_KEEPALIVE", "60s")]);
    wait_for("the payload to start", Duration::from_secs(60), || {
        let there = Path::new(&started).exists();
        async move { there.then_some(()) }
    })
    .await;
    let key = Key::with_sort("stolen", run_id.as_str());
    let mut item = t
        .backend
        .tables
        .get(&t.name, Table::Events, &key, true)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no events item for the running run"));
    let expires = chrono::Utc::now().timestamp() + 3600;
    item.insert(
        "lease".into(),
        json!({"owner": "thief", "expires": expires}),
    );
    t.backend
        .tables
        .put(&t.name, Table::Events, &item)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    std::fs::write(&go, "").unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the worker to find its lease gone",
        Duration::from_secs(60),
        || {
            let log = worker.log();
            async move { log.contains("lease was lost").then_some(()) }
        },
    )
    .await;
    assert!(worker.stop().await.success(), "{}", worker.log());
    let log = worker.log();
    assert!(
        !log.contains("SUCCESS-ACTION-RAN") && !log.contains("FAIL-ACTION-RAN"),
        "an action ran for a run whose end was not recorded:\n{log}"
    );
    assert_eq!(
        statuses(&t.log("stolen", &run_id).await),
        vec!["starting", "running"],
        "{log}"
    );
}
