//! A runaway template fails its own run, quickly and by name, and starves
//! nothing else: renders spend at most `RENDER_FUEL` and run off the
//! worker's async threads, so another run on the same worker keeps its
//! lease and completes.

use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::{Background, wait_for};
use serde_json::{Value, json};

/// Ten billion loop turns: hours of CPU without a fuel limit.
const RUNAWAY: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

fn job(job_id: &str, payload: &str, parameters: Value) -> Value {
    json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": payload,
           "enabled": true, "owner": "tests", "description": "runaway test job",
           "parameters": parameters})
}

/// Waits until a run's log holds `status`, returning the log.
async fn wait_status(t: &TestRealm, job_id: &str, run_id: &str, status: &str) -> Vec<Value> {
    wait_for(
        &format!("{status} for {job_id} ({run_id})"),
        Duration::from_secs(120),
        || async {
            let log = t.log(job_id, run_id).await;
            log.iter()
                .any(|e| e["status"] == json!(status))
                .then_some(log)
        },
    )
    .await
}

#[tokio::test]
async fn a_runaway_template_fails_its_run_while_another_keeps_its_lease() {
    let t = TestRealm::with_setup(&["core"], |s| s.visibility_secs = 5).await;
    t.put_job(job("steady", "sleep 10", json!({}))).await;
    t.put_job(job("runaway", "true", json!({"env": {"LOOP": RUNAWAY}})))
        .await;
    let steady = t.dispatch_job("steady", &[]).await;
    let mut cmd = t.worker("core");
    cmd.args(["--threads", "2"])
        .env("LAVA_VISIBILITY_KEEPALIVE", "1s");
    let mut worker = Background::start(cmd);
    wait_status(&t, "steady", &steady, "running").await;

    // One after another in the second slot while `steady` runs; each must
    // fail on its own, naming its job and its field.
    for _ in 0..3 {
        let run_id = t.dispatch_job("runaway", &[]).await;
        let log = wait_status(&t, "runaway", &run_id, "failed").await;
        t.assert_statuses("runaway", &run_id, &["starting", "running", "failed"])
            .await;
        let error = log[2]["info"]["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(
                "Bad environment variable: LOOP: Jinja render ran out of fuel in job runaway \
                 (RENDER_FUEL is "
            ),
            "{log:?}"
        );
    }

    wait_status(&t, "steady", &steady, "complete").await;
    t.assert_statuses("steady", &steady, &["starting", "running", "complete"])
        .await;
    assert!(
        t.events("steady", &steady)
            .await
            .is_some_and(|i| i.get("lease").is_none()),
        "the lease is released at the end"
    );
    assert!(worker.running(), "the worker goes on: {}", worker.log());
    assert!(worker.stop().await.success(), "{}", worker.log());
    let log = worker.log();
    for trouble in [
        "lost the run's lease",
        "cannot renew the run's lease",
        "cannot extend the message's visibility",
    ] {
        assert!(!log.contains(trouble), "{trouble}: {log}");
    }
}
