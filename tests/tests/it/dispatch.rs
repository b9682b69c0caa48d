//! `lava-dispatch` against the emulator: every flag, every error case, and
//! the message on the queue checked field by field.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lava_tests::{TestRealm, lava, output, stderr, stdout};
use serde_json::{Value, json};

const SHORT: Duration = Duration::from_secs(3);

/// Checks the dispatch message's layout (the original's) key for key.
fn check_message(msg: &Value, realm: &str, worker: &str, job_id: &str, run_id: &str) {
    let map = msg
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {msg}"));
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    let mut want = vec!["realm", "worker", "job_id", "run_id", "ts_dispatch"];
    want.extend(
        ["parameters", "globals"]
            .into_iter()
            .filter(|k| map.contains_key(*k)),
    );
    assert_eq!(keys, want, "keys in wire order");
    assert_eq!(msg["realm"], json!(realm));
    assert_eq!(msg["worker"], json!(worker));
    assert_eq!(msg["job_id"], json!(job_id));
    assert_eq!(msg["run_id"], json!(run_id));
    let uuid = uuid::Uuid::parse_str(run_id).unwrap_or_else(|e| panic!("run id {run_id}: {e}"));
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(
        run_id,
        uuid.hyphenated().to_string(),
        "canonical lower-case form"
    );
    let ts = msg["ts_dispatch"].as_str().unwrap_or_default();
    assert_eq!(ts.len(), 25, "whole seconds with a +HH:MM offset: {ts}");
    assert!(!ts.ends_with('Z'), "numeric offset, never Z: {ts}");
    let t = DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("ts_dispatch {ts}: {e}"));
    let age = Utc::now().signed_duration_since(t);
    assert!(
        age.num_seconds() >= 0 && age.num_seconds() < 120,
        "ts_dispatch {ts} is now"
    );
    for key in ["parameters", "globals"] {
        if let Some(v) = map.get(key) {
            assert!(
                v.as_object().is_some_and(|m| !m.is_empty()),
                "{key} is a non-empty map"
            );
        }
    }
}

fn run_ids(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

#[tokio::test]
async fn looks_the_worker_up_and_sends_the_message() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("etl/load-sales", "core").await;
    let out = output(t.dispatch().arg("etl/load-sales")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = run_ids(&out);
    assert_eq!(ids.len(), 1, "one run id on stdout: {ids:?}");
    assert!(
        stderr(&out).contains(&format!(
            "etl/load-sales@{} dispatched ({})",
            t.name, ids[0]
        )),
        "{}",
        stderr(&out)
    );
    let raw = t.drain_raw("core", 1, SHORT).await;
    assert_eq!(raw.len(), 1);
    assert!(
        raw[0].starts_with(r#"{"realm": ""#),
        "Python separators: {}",
        raw[0]
    );
    let msg: Value = serde_json::from_str(&raw[0]).unwrap_or_default();
    check_message(&msg, &t.name, "core", "etl/load-sales", &ids[0]);
    assert!(
        msg.get("parameters").is_none() && msg.get("globals").is_none(),
        "empty maps omitted"
    );
}

#[tokio::test]
async fn realm_comes_from_lava_realm() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let out = output(lava("lava-dispatch").env("LAVA_REALM", &t.name).arg("j")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = t.drain("core", 1, SHORT).await;
    assert_eq!(msgs.len(), 1);
    check_message(&msgs[0], &t.name, "core", "j", &run_ids(&out)[0]);
}

#[tokio::test]
async fn worker_flag_skips_the_lookup() {
    let t = TestRealm::new(&["core", "other"]).await;
    // No such job: with -w nothing reads the jobs table.
    let out = output(t.dispatch().args(["-w", "other", "ghost"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = t.drain("other", 1, SHORT).await;
    assert_eq!(msgs.len(), 1);
    check_message(&msgs[0], &t.name, "other", "ghost", &run_ids(&out)[0]);
}

#[tokio::test]
async fn queue_flag_overrides_the_queue() {
    let t = TestRealm::new(&["core", "spare"]).await;
    t.put_cmd_job("j", "core").await;
    let spare = lava_common::names::queue_name(&t.name, "spare");
    let out = output(t.dispatch().args(["-q", &spare, "j"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = t.drain("spare", 1, SHORT).await;
    assert_eq!(msgs.len(), 1);
    // The message still names the job's worker.
    check_message(&msgs[0], &t.name, "core", "j", &run_ids(&out)[0]);
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn params_and_globals_build_maps() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let out = output(t.dispatch().args([
        "j",
        "-p",
        "vars.location=Isabela",
        "--param",
        "vars.name=Sierra Negra",
        "-p",
        "timeout=1h",
        "-p",
        "timeout=2h",
        "-g",
        "country=Ecuador",
        "--global",
        "lava.master_job_id=boss",
        "-g",
        "expr=a=b",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = t.drain("core", 1, SHORT).await;
    assert_eq!(msgs.len(), 1);
    let msg = &msgs[0];
    check_message(msg, &t.name, "core", "j", &run_ids(&out)[0]);
    assert_eq!(
        msg["parameters"],
        json!({"vars": {"location": "Isabela", "name": "Sierra Negra"}, "timeout": "2h"})
    );
    assert_eq!(
        msg["globals"],
        json!({"country": "Ecuador", "lava": {"master_job_id": "boss"}, "expr": "a=b"})
    );
}

#[tokio::test]
async fn bad_params_are_usage_errors() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let cases: [(&[&str], &str); 4] = [
        (&["-p", "a=1", "-p", "a.b=2"], "Path conflict: a.b"),
        (&["-g", "a=1", "-g", "a.b.c=2"], "Path conflict: a.b.c"),
        (&["-p", "novalue"], "\"novalue\": expected NAME=VALUE"),
        (&["-g", "x"], "Bad -g, --global"),
    ];
    for (args, want) in cases {
        let out = output(t.dispatch().arg("j").args(args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    assert!(
        t.drain("core", 1, Duration::from_secs(1)).await.is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn delay_holds_the_message_back() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let out = output(t.dispatch().args(["-d", "4s", "j"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        t.drain("core", 1, Duration::from_secs(1)).await.is_empty(),
        "invisible during the delay"
    );
    let msgs = t.drain("core", 1, Duration::from_secs(15)).await;
    assert_eq!(msgs.len(), 1, "visible after the delay");
    check_message(&msgs[0], &t.name, "core", "j", &run_ids(&out)[0]);
}

#[tokio::test]
async fn delay_out_of_range_is_a_usage_error() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    for bad in ["16m", "-1", "soon", "901"] {
        let out = output(t.dispatch().arg(format!("--delay={bad}")).arg("j")).await;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains(&format!("Bad -d, --delay value: {bad}")),
            "{}",
            stderr(&out)
        );
    }
    // The limit follows LAVA_SQS_MAX_DELAY_MINS.
    let out = output(
        t.dispatch()
            .env("LAVA_SQS_MAX_DELAY_MINS", "1")
            .args(["-d", "2m", "j"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = output(t.dispatch().args(["-d", "15m", "j"])).await;
    assert!(
        out.status.success(),
        "the maximum is allowed: {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn check_dispatch_honours_the_suppression_file() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("__nodispatch__");
    std::fs::write(&file, "").unwrap_or_else(|e| panic!("write: {e}"));
    let out = output(t.dispatch().env("LAVA_NO_DISPATCH", &file).args([
        "--check-dispatch",
        "--check-dispatch",
        "j",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains(&format!(
            "Dispatch suppressed by presence of {}",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());

    // Without --check-dispatch the file is ignored.
    let out = output(t.dispatch().env("LAVA_NO_DISPATCH", &file).arg("j")).await;
    assert!(out.status.success());
    assert_eq!(t.drain("core", 1, SHORT).await.len(), 1);

    // With the flag and no file, dispatch goes ahead.
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("rm: {e}"));
    let out = output(
        t.dispatch()
            .env("LAVA_NO_DISPATCH", &file)
            .args(["--check-dispatch", "j"]),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.drain("core", 1, SHORT).await.len(), 1);
}

#[tokio::test]
async fn several_jobs_each_get_a_run() {
    let t = TestRealm::new(&["core", "batch"]).await;
    t.put_cmd_job("a", "core").await;
    t.put_cmd_job("b", "batch").await;
    t.put_cmd_job("c", "core").await;
    let out = output(t.dispatch().args(["a", "b", "c", "-p", "x=1"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = run_ids(&out);
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    let mut core = t.drain("core", 2, SHORT).await;
    core.sort_by_key(|m| m["job_id"].as_str().unwrap_or_default().to_string());
    assert_eq!(core.len(), 2);
    check_message(&core[0], &t.name, "core", "a", &ids[0]);
    check_message(&core[1], &t.name, "core", "c", &ids[2]);
    let batch = t.drain("batch", 1, SHORT).await;
    assert_eq!(batch.len(), 1);
    check_message(&batch[0], &t.name, "batch", "b", &ids[1]);
    assert_eq!(batch[0]["parameters"], json!({"x": "1"}));
}

#[tokio::test]
async fn one_bad_job_fails_the_call_but_not_the_others() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("good", "core").await;
    let out = output(t.dispatch().args(["good", "missing/job"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let ids = run_ids(&out);
    assert_eq!(ids.len(), 1, "only the good job has a run id");
    assert!(
        stderr(&out).contains(&format!(
            "missing/job@{} dispatch failed - No such job",
            t.name
        )),
        "{}",
        stderr(&out)
    );
    let msgs = t.drain("core", 1, SHORT).await;
    assert_eq!(msgs.len(), 1);
    check_message(&msgs[0], &t.name, "core", "good", &ids[0]);
}

#[tokio::test]
async fn invalid_job_records_name_the_problem() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(json!({"job_id": "nopayload", "type": "cmd"}))
        .await;
    t.put_job(
        json!({"job_id": "reserved", "type": "cmd", "worker": "core", "payload": "x",
                     "globals": {"LavaX": 1}}),
    )
    .await;
    let out = output(t.dispatch().arg("nopayload")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nopayload@")
            && stderr(&out).contains("Bad job record: Missing keys: payload, worker"),
        "{}",
        stderr(&out)
    );
    let out = output(t.dispatch().arg("reserved")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Reserved global: LavaX"),
        "{}",
        stderr(&out)
    );
    // A disabled job is still dispatched: enabled is the worker's check.
    t.put_job(
        json!({"job_id": "off", "type": "cmd", "worker": "core", "payload": "x", "enabled": false}),
    )
    .await;
    let out = output(t.dispatch().arg("off")).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn unknown_realm_and_missing_queue() {
    let t = TestRealm::new(&["core"]).await;
    let ghost = lava_tests::unique("ghost");
    let out = output(lava("lava-dispatch").args(["-r", &ghost, "j"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "j@{ghost} dispatch failed - No such realm: {ghost} (table lava.{ghost}.jobs not found)"
        )),
        "{}",
        stderr(&out)
    );
    let out = output(lava("lava-dispatch").args(["-r", &ghost, "-w", "core", "j"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("queue lava-{ghost}-core not found")),
        "{}",
        stderr(&out)
    );
    // A job whose worker has no queue.
    t.put_cmd_job("orphan", "nofleet").await;
    let out = output(t.dispatch().arg("orphan")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "orphan@{} dispatch failed - queue lava-{}-nofleet not found",
            t.name, t.name
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn usage_errors() {
    // No realm at all.
    let out = output(lava("lava-dispatch").arg("j")).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Lava realm must be specified"),
        "{}",
        stderr(&out)
    );
    // Bad names.
    let out = output(lava("lava-dispatch").args(["-r", "bad.realm", "j"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad realm name \"bad.realm\""),
        "{}",
        stderr(&out)
    );
    let out = output(lava("lava-dispatch").args(["-r", "r", "-w", "a b", "j"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad worker name \"a b\""),
        "{}",
        stderr(&out)
    );
    // No job id.
    let out = output(lava("lava-dispatch").args(["-r", "r"])).await;
    assert_eq!(out.status.code(), Some(2));
    // Unknown backend, unknown level.
    let out = output(lava("lava-dispatch").args(["-r", "r", "--backend", "gcp", "j"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown backend \"gcp\""),
        "{}",
        stderr(&out)
    );
    let out = output(lava("lava-dispatch").args(["-r", "r", "--level", "loud", "j"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad log level \"loud\""),
        "{}",
        stderr(&out)
    );
    // A local backend directory that cannot be created is a usage error naming it.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    let bad = format!("local:{}/sub", file.display());
    let out = output(lava("lava-dispatch").args(["-r", "r", "--backend", &bad, "j"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}/sub", file.display())),
        "{}",
        stderr(&out)
    );
    // -v prints the version.
    let out = output(lava("lava-dispatch").arg("-v")).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains(lava_common::VERSION));
}

#[tokio::test]
async fn aws_unreachable_endpoint_fails_naming_the_job() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let out = output(
        lava("lava-dispatch")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .args(["-r", "prod", "-w", "core", "etl/x"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etl/x@prod dispatch failed - service unavailable"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn aws_missing_credentials_fail_naming_the_job() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = output(
        lava("lava-dispatch")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["-r", "prod", "etl/x"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etl/x@prod dispatch failed - service unavailable"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("credentials"), "{err}");
}

#[tokio::test]
async fn log_level_and_json() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("j", "core").await;
    let out = output(t.dispatch().args(["--level", "warning", "j"])).await;
    assert!(out.status.success());
    assert!(
        stderr(&out).is_empty(),
        "info lines hidden: {}",
        stderr(&out)
    );
    assert_eq!(run_ids(&out).len(), 1, "the run id is still printed");

    let out = output(t.dispatch().args(["--log-json", "--tag", "mytag", "j"])).await;
    assert!(out.status.success());
    let line = stderr(&out);
    let record: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(record["level"], json!("INFO"));
    assert_eq!(record["tag"], json!("mytag"));
    assert_eq!(record["event_type"], json!("dispatch"));
    assert_eq!(record["job_id"], json!("j"));
    assert_eq!(record["run_id"], json!(run_ids(&out)[0]));
    assert!(
        record["message"]
            .as_str()
            .is_some_and(|m| m.contains("dispatched"))
    );
    assert_eq!(t.drain("core", 2, SHORT).await.len(), 2);
}
