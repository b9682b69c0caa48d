//! Planned retries (`iteration_limit`) on a worker daemon: a failed attempt
//! with iterations left records `retrying` and returns its message to the
//! queue for the iteration delay, so its job slot runs other work
//! meanwhile; the delivery due next goes on with the same run.

use std::time::Duration;

use chrono::DateTime;
use lava_tests::TestRealm;
use lava_tests::procs::{Background, wait_for};
use serde_json::{Value, json};

fn job(job_id: &str, payload: &str, extra: Value) -> Value {
    let mut item = json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": payload,
                          "enabled": true, "owner": "tests", "description": "retries later"});
    if let (Some(map), Value::Object(extra)) = (item.as_object_mut(), extra) {
        map.extend(extra);
    }
    item
}

fn daemon(t: &TestRealm, threads: &str, env: &[(&str, &str)]) -> Background {
    let mut cmd = t.worker("core");
    cmd.args(["--threads", threads]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Background::start(cmd)
}

fn status(entry: &Value) -> &str {
    entry["status"].as_str().unwrap_or_default()
}

/// Waits until the run's log ends with `last`; returns the log.
async fn wait_last(t: &TestRealm, job_id: &str, run_id: &str, last: &str) -> Vec<Value> {
    wait_for(
        &format!("{job_id} to end with {last}"),
        Duration::from_secs(120),
        || async move {
            let log = t.log(job_id, run_id).await;
            log.last().is_some_and(|e| status(e) == last).then_some(log)
        },
    )
    .await
}

fn time(entry: &Value) -> DateTime<chrono::FixedOffset> {
    entry["ts_event"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("no ts_event in {entry}"))
}

/// The run goes on at its next iteration, from its first start, when its
/// delay is over and not before, even when a copy of its message comes
/// back early; another run takes the one job slot meanwhile.
#[tokio::test]
async fn a_planned_retry_waits_in_the_queue_and_the_run_goes_on() {
    let t = TestRealm::new(&["core"]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let record = dir.path().join("iterations");
    let payload = format!(
        "sh -c 'echo {{{{ globals.lava.iteration }}}} >> {}; test {{{{ globals.lava.iteration }}}} -ge 2'",
        record.display()
    );
    t.put_job(job(
        "retry/later",
        &payload,
        json!({"iteration_limit": 3, "iteration_delay": "8s", "max_run_delay": "1h",
               "on_retry": [{"action": "log", "message": "RETRY-{{ job.job_id }}"}]}),
    ))
    .await;
    t.put_job(job("retry/quick", "echo quick", json!({}))).await;
    let run_id = t.dispatch_job("retry/later", &[]).await;
    // A copy of the message, sent again once the retry is planned.
    let body = t
        .drain_raw("core", 1, Duration::from_secs(10))
        .await
        .pop()
        .unwrap_or_else(|| panic!("no dispatch message"));
    let queue = t.queue("core").await;
    let send = |delay: u32| {
        let (t, queue, body) = (&t, &queue, &body);
        async move {
            t.backend
                .queue
                .send(queue, body, delay)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    send(0).await;
    let mut worker = daemon(&t, "1", &[]);
    let log = wait_last(&t, "retry/later", &run_id, "retrying").await;
    send(0).await;
    let quick = t.dispatch_job("retry/quick", &[]).await;
    let quick_log = wait_last(&t, "retry/quick", &quick, "complete").await;
    let done = wait_last(&t, "retry/later", &run_id, "complete").await;
    // The early copy was put back, then deleted once the run was over.
    wait_for("the copy to be deleted", Duration::from_secs(60), || {
        let log = worker.log();
        async move {
            log.contains("already finished - duplicate deleted")
                .then_some(())
        }
    })
    .await;
    assert!(
        worker.log().contains("iteration 2 is due in"),
        "{}",
        worker.log()
    );
    assert!(worker.stop().await.success(), "{}", worker.log());

    let statuses: Vec<&str> = done.iter().map(status).collect();
    assert_eq!(
        statuses,
        vec!["starting", "running", "retrying", "running", "complete"],
        "{}",
        worker.log()
    );
    assert_eq!(done[1]["info"], json!("Iteration 1"));
    assert_eq!(done[3]["info"], json!("Iteration 2"));
    assert_eq!(done[2]["info"]["error"], json!("Failed with exit status 1"));
    assert_eq!(
        std::fs::read_to_string(&record).unwrap_or_default(),
        "1\n2\n"
    );
    // Not before its delay (times are whole seconds), the early copy notwithstanding.
    let retried = time(&log[2]);
    assert!(
        time(&done[3]) >= retried + chrono::Duration::seconds(7),
        "iteration 2 ran before its delay: {done:?}"
    );
    // The one slot ran the other job while the retry waited.
    assert!(
        time(&quick_log[2]) <= time(&done[3]),
        "the slot was held by the waiting retry: {quick_log:?} {done:?}"
    );
    assert_eq!(worker.log().matches("RETRY-retry/later").count(), 1);
    assert!(t.drain("core", 1, Duration::from_secs(2)).await.is_empty());
}

/// Twenty runs waiting a minute for their next try take no job slot: a
/// worker with two keeps running other work meanwhile.
#[tokio::test]
async fn waiting_retries_leave_the_slots_to_other_work() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "retry/slow",
        "sh -c 'exit 1'",
        json!({"iteration_limit": 2, "iteration_delay": "60s"}),
    ))
    .await;
    t.put_job(job("retry/other", "echo other", json!({}))).await;
    let mut worker = daemon(&t, "2", &[]);
    let mut waiting = Vec::new();
    for _ in 0..20 {
        waiting.push(t.dispatch_job("retry/slow", &[]).await);
    }
    for run_id in &waiting {
        wait_last(&t, "retry/slow", run_id, "retrying").await;
    }
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(t.dispatch_job("retry/other", &[]).await);
    }
    for run_id in &others {
        wait_last(&t, "retry/other", run_id, "complete").await;
    }
    for run_id in &waiting {
        assert_eq!(
            t.statuses("retry/slow", run_id).await,
            vec!["starting", "running", "retrying"],
            "{}",
            worker.log()
        );
    }
    assert!(worker.stop().await.success(), "{}", worker.log());
}

/// `RETRY_MODE=inline` keeps the original's way: the attempt waits in its
/// slot, and the run still ends in one delivery.
#[tokio::test]
async fn inline_retry_mode_waits_in_the_slot() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "retry/inline",
        "sh -c 'exit 1'",
        json!({"iteration_limit": 2, "iteration_delay": "1s"}),
    ))
    .await;
    let run_id = t.dispatch_job("retry/inline", &[]).await;
    let mut worker = daemon(&t, "1", &[("LAVA_RETRY_MODE", "inline")]);
    wait_last(&t, "retry/inline", &run_id, "failed").await;
    assert!(worker.stop().await.success(), "{}", worker.log());
    assert!(
        !worker.log().contains("message returned to the queue"),
        "{}",
        worker.log()
    );
    assert_eq!(
        t.statuses("retry/inline", &run_id).await,
        vec!["starting", "running", "retrying", "running", "failed"]
    );
}
