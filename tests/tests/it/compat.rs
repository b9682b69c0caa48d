//! Compatibility with the original jinlava 8.x, run for real from the venv
//! that `.ci/run` installs: the original worker's receive path accepts our
//! messages, the original dispatcher's messages match ours key for key and
//! run on our worker, and the original `lava-worker` itself (oracle
//! `run-worker`: the console script in `--batch --root` mode against moto)
//! records the same events and S3 objects for the same jobs as ours.
//!
//! The original worker needs a realm `s3_key` for every `cmd`/`exe`/`pkg`
//! job: `lava.lavacore.job_environment` sets `LAVA_S3_KEY` to
//! `realm_info.get('s3_key')`, and a `None` in the child's environment makes
//! `subprocess` raise, so without a key every such run fails with "expected
//! str, bytes or os.PathLike object, not NoneType". Real realms always have
//! one (SSE-KMS); the comparison realm gets `alias/lava-compat`, which both
//! workers pass through as `SSEKMSKeyId` (moto's S3 stores it unchecked).
//! Our worker runs such realms too (`LAVA_S3_KEY` empty, SSE AES256).

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use lava_common::dispatch::DispatchMessage;
use lava_common::spec::Item;
use lava_tests::{TestRealm, output, stderr, stdout};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The venv interpreter with jinlava, and the oracle script.
fn oracle() -> Command {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("LAVA_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: .ci/run creates the venv with jinlava (or set LAVA_COMPAT_PYTHON)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(root.join("tests/compat/jinlava_check.py"));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs the original worker's message checks on a body.
async fn original_worker_reads(body: &str, realm: &str, worker: &str) -> Value {
    let mut child = oracle()
        .args(["validate-message", "--realm", realm, "--worker", worker])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the oracle: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("oracle timed out"))
        .unwrap_or_else(|e| panic!("oracle: {e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "oracle failed: {}",
        stderr(&out)
    );
    serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[tokio::test]
async fn the_original_worker_accepts_our_messages() {
    let t = TestRealm::new(&["core"]).await;
    t.put_cmd_job("etl/load-sales", "core").await;
    let out = output(t.dispatch().args([
        "etl/load-sales",
        "-p",
        "vars.region=north",
        "-p",
        "timeout=20m",
        "-g",
        "country=Ecuador",
        "-g",
        "café=naïve",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let run_id = stdout(&out).trim().to_string();
    let body = t.drain_raw("core", 1, Duration::from_secs(3)).await;
    assert_eq!(body.len(), 1);
    let verdict = original_worker_reads(&body[0], &t.name, "core").await;
    assert_eq!(verdict["ok"], json!(true), "{verdict}");
    let parsed = &verdict["parsed"];
    assert_eq!(parsed["run_id"], json!(run_id));
    assert_eq!(parsed["job_id"], json!("etl/load-sales"));
    assert_eq!(parsed["ts_dispatch_tz_aware"], json!(true));
    assert_eq!(
        parsed["parameters"],
        json!({"vars": {"region": "north"}, "timeout": "20m"})
    );
    assert_eq!(parsed["globals"]["country"], json!("Ecuador"));
    assert_eq!(parsed["globals"]["café"], json!("naïve"));

    // The oracle is a real check: it refuses what the original refuses.
    let mut bad: Value = serde_json::from_str(&body[0]).unwrap_or_default();
    bad["x-trace"] = json!(1);
    let verdict = original_worker_reads(&bad.to_string(), &t.name, "core").await;
    assert_eq!(verdict["ok"], json!(false));
    assert_eq!(
        verdict["error"],
        json!("Malformed dispatch message: Unexpected keys: x-trace")
    );
}

#[tokio::test]
async fn the_original_dispatcher_writes_what_we_write() {
    let t = TestRealm::new(&["core"]).await;
    let options = [
        "-p",
        "vars.region=north",
        "-p",
        "timeout=20m",
        "-g",
        "country=Ecuador",
        "-g",
        "a.b=c",
    ];
    let out = output(
        oracle()
            .args([
                "dispatch",
                "--realm",
                &t.name,
                "--worker",
                "core",
                "--job",
                "etl/load-sales",
            ])
            .args(options),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "original dispatcher: {}",
        stderr(&out)
    );
    let theirs = stdout(&out);

    let out = output(
        t.dispatch()
            .args(["-w", "core", "etl/load-sales"])
            .args(options),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = t.drain_raw("core", 1, Duration::from_secs(3)).await;
    assert_eq!(ours.len(), 1);

    // Our worker-side parser reads the original's message.
    let theirs_msg = DispatchMessage::parse(&theirs).unwrap_or_else(|e| panic!("{e}: {theirs}"));
    let ours_msg = DispatchMessage::parse(&ours[0]).unwrap_or_else(|e| panic!("{e}: {}", ours[0]));
    // Byte for byte once the run id and the dispatch time are aligned.
    let aligned = DispatchMessage {
        run_id: theirs_msg.run_id.clone(),
        ts_dispatch: theirs_msg.ts_dispatch.clone(),
        ..ours_msg.clone()
    };
    assert_eq!(
        aligned.to_body(),
        theirs,
        "same keys, order, separators and values"
    );
    assert_eq!(
        ours_msg.ts_dispatch.len(),
        theirs_msg.ts_dispatch.len(),
        "same timestamp form"
    );
}

/// The zone both workers run in: a half-hour offset shows the `+HH:MM` form.
const ZONE: &str = "Asia/Kolkata";
const OFFSET: &str = "+05:30";

/// Top-level attributes our worker may add to an events item, each with the
/// reason it is there. Any other difference fails the test.
const OUR_EXTRAS: &[(&str, &str)] = &[
    (
        "lease",
        "the run's lease (so a duplicate message runs once), taken at receive and removed by the final event",
    ),
    (
        "final_status",
        "the final entry's status, set with it: no lease can be taken on the run afterwards",
    ),
];

/// The default `EVENT_TTL` (2d) in seconds.
const EVENT_TTL: i64 = 2 * 86_400;

/// Runs the original `lava-worker` in batch mode until the queue is empty.
async fn original_worker_runs(realm: &str, worker: &str) -> Output {
    let out = output(
        oracle()
            .args(["run-worker", "--realm", realm, "--worker", worker])
            .args(["--seconds", "100"])
            .env("TZ", ZONE),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "original worker: {}",
        stderr(&out)
    );
    out
}

/// Runs our worker in batch mode in [`ZONE`].
async fn our_worker_runs(t: &TestRealm) -> Output {
    let out = output(t.worker("core").arg("--batch").env("TZ", ZONE)).await;
    assert!(out.status.success(), "our worker: {}", stderr(&out));
    out
}

fn cmd_job(job_id: &str, payload: &str, extra: Value) -> Value {
    let mut item = json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": payload,
                          "enabled": true, "owner": "tests", "description": "compat job"});
    if let (Some(map), Value::Object(extra)) = (item.as_object_mut(), extra) {
        map.extend(extra);
    }
    item
}

/// `ts_dispatch`/`ts_event` form: local time, whole seconds, `+HH:MM`.
fn ts(value: &Value, what: &str) -> DateTime<FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let t = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%:z")
        .unwrap_or_else(|e| panic!("{what} {text:?}: {e}"));
    assert_eq!(
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        text,
        "{what}: exact form"
    );
    t
}

/// `tu_event` form: naive UTC, whole seconds, the same instant as `ts_event`.
fn check_tu(tu: &Value, ts_event: &DateTime<FixedOffset>, what: &str) {
    let text = tu
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {tu}"));
    let t = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|e| panic!("{what} {text:?}: {e}"));
    assert_eq!(text.len(), 19, "{what}: naive, no fraction: {text}");
    assert_eq!(t, ts_event.naive_utc(), "{what} is ts_event in UTC");
}

/// The forms every events item must have, whichever worker wrote it;
/// `offset`: the worker's zone offset, when the test set one.
fn check_forms(item: &Item, who: &str, offset: Option<&str>) {
    let ts_dispatch = ts(&item["ts_dispatch"], &format!("{who} ts_dispatch"));
    let ts_event = ts(&item["ts_event"], &format!("{who} ts_event"));
    if let Some(offset) = offset {
        assert_eq!(
            &item["ts_event"].as_str().unwrap_or_default()[19..],
            offset,
            "{who}: ts_event in the worker's zone"
        );
    }
    check_tu(&item["tu_event"], &ts_event, &format!("{who} tu_event"));
    assert!(
        ts_dispatch <= ts_event,
        "{who}: dispatched before the event"
    );
    let ttl = item["ttl"]
        .as_i64()
        .unwrap_or_else(|| panic!("{who}: ttl is not an integer: {}", item["ttl"]));
    assert_eq!(
        ttl - ts_event.timestamp(),
        EVENT_TTL,
        "{who}: ttl = ts_event + EVENT_TTL"
    );
    assert_eq!(item["worker"], json!("core"), "{who}");
    assert_eq!(item["worker_id"], Value::Null, "{who}: worker_id off EC2");
    assert!(
        item["hostname"].as_str().is_some_and(|h| !h.is_empty()),
        "{who}: hostname"
    );
    let log = item["log"]
        .as_array()
        .unwrap_or_else(|| panic!("{who}: log is not a list"));
    for (n, entry) in log.iter().enumerate() {
        let what = format!("{who} log[{n}]");
        let mut keys: Vec<&str> = entry
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["info", "status", "ts_event", "tu_event"], "{what}");
        let t = ts(&entry["ts_event"], &format!("{what}.ts_event"));
        check_tu(&entry["tu_event"], &t, &format!("{what}.tu_event"));
    }
    let last = log.last().cloned().unwrap_or_default();
    assert_eq!(
        item["status"], last["status"],
        "{who}: status is the last entry's"
    );
    assert_eq!(item["ts_event"], last["ts_event"], "{who}");
    assert_eq!(item["tu_event"], last["tu_event"], "{who}");
}

/// A value with a run id replaced by `<run_id>` in every string.
fn without_run_id(value: &Value, run_id: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(run_id, "<run_id>")),
        Value::Array(list) => {
            Value::Array(list.iter().map(|v| without_run_id(v, run_id)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_run_id(v, run_id)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// JSON type of a value, for "same form" comparisons.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Compares the events items of the same job run by the original worker
/// and by ours, field by field.
fn compare_items(job_id: &str, theirs: &Item, their_run: &str, ours: &Item, our_run: &str) {
    check_forms(theirs, &format!("original {job_id}"), Some(OFFSET));
    check_forms(ours, &format!("ours {job_id}"), Some(OFFSET));

    // Same top-level keys, but for our documented extras.
    let mut their_keys: Vec<&str> = theirs.keys().map(String::as_str).collect();
    let mut our_keys: Vec<&str> = ours
        .keys()
        .map(String::as_str)
        .filter(|k| !OUR_EXTRAS.iter().any(|(extra, _)| extra == k))
        .collect();
    their_keys.sort_unstable();
    our_keys.sort_unstable();
    assert_eq!(our_keys, their_keys, "{job_id}: top-level keys");
    for key in &their_keys {
        assert_eq!(
            kind(&ours[*key]),
            kind(&theirs[*key]),
            "{job_id}: type of {key}"
        );
    }
    let final_entry = ours["log"]
        .as_array()
        .and_then(|log| log.iter().rev().find(|e| e["status"] != "action_failed"))
        .map(|e| e["status"].clone());
    assert_eq!(
        ours.get("final_status"),
        final_entry.as_ref(),
        "{job_id}: final_status"
    );
    for key in ["job_id", "status", "worker", "worker_id", "hostname"] {
        assert_eq!(ours[key], theirs[key], "{job_id}: {key}");
    }
    assert_eq!(theirs["run_id"], json!(their_run));
    assert_eq!(ours["run_id"], json!(our_run));

    // The log: same statuses, and the same info once the run ids are aligned
    // (this covers exit_status, output entries and their S3 URLs, error,
    // error_data and its types).
    let log = |item: &Item| item["log"].as_array().cloned().unwrap_or_default();
    let statuses =
        |item: &Item| -> Vec<Value> { log(item).iter().map(|e| e["status"].clone()).collect() };
    assert_eq!(statuses(ours), statuses(theirs), "{job_id}: log statuses");
    for (n, (o, t)) in log(ours).iter().zip(log(theirs).iter()).enumerate() {
        assert_eq!(
            without_run_id(&o["info"], our_run),
            without_run_id(&t["info"], their_run),
            "{job_id}: log[{n}].info ({})",
            t["status"]
        );
    }
}

/// The object keys directly under a run's `<s3_temp>/<job_id>/<run_id>/`,
/// with their text.
async fn run_objects(t: &TestRealm, job_id: &str, run_id: &str) -> Vec<(String, String)> {
    let prefix = format!("{}/{job_id}/{run_id}/", t.realm.s3_temp());
    let listed = t
        .backend
        .objects
        .list(&prefix)
        .await
        .unwrap_or_else(|e| panic!("list {prefix}: {e}"));
    let mut found = Vec::new();
    for info in listed {
        let name = info
            .url
            .strip_prefix(&prefix)
            .unwrap_or(&info.url)
            .to_string();
        found.push((name, t.object(&info.url).await));
    }
    found.sort();
    found
}

#[tokio::test]
async fn the_original_dispatchers_message_runs_on_our_worker() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(cmd_job(
        "compat/echo",
        "sh -c 'echo out; echo err >&2'",
        json!({}),
    ))
    .await;
    let out = output(
        oracle()
            .args(["dispatch", "--realm", &t.name, "--worker", "core"])
            .args([
                "--job",
                "compat/echo",
                "-p",
                "timeout=30s",
                "-g",
                "country=Ecuador",
            ]),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "original dispatcher: {}",
        stderr(&out)
    );
    // The oracle took the message off the queue: put it back as it came.
    let body = stdout(&out);
    let message: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let run_id = message["run_id"].as_str().unwrap_or_default().to_string();
    let queue = t.queue("core").await;
    t.backend
        .queue
        .send(&queue, &body, 0)
        .await
        .unwrap_or_else(|e| panic!("resend: {e}"));

    t.run_worker("core", &[]).await;

    t.assert_statuses("compat/echo", &run_id, &["starting", "running", "complete"])
        .await;
    let item = t.events("compat/echo", &run_id).await.unwrap_or_default();
    check_forms(&item, "ours", None);
    // The original re-formats the message's time with isoformat(): unchanged.
    assert_eq!(item["ts_dispatch"], message["ts_dispatch"]);
    assert!(item.get("lease").is_none(), "{}", OUR_EXTRAS[0].1);
    let s3tmp = format!("{}/compat/echo/{run_id}", t.realm.s3_temp());
    let log = t.log("compat/echo", &run_id).await;
    assert_eq!(log[0]["info"], Value::Null);
    assert_eq!(log[1]["info"], json!("Iteration 1"));
    assert_eq!(
        log[2]["info"],
        json!({"exit_status": 0, "error": null, "output": [{
            "payload": "sh -c 'echo out; echo err >&2'", "exit_status": 0,
            "stdout": format!("{s3tmp}/stdout"), "stderr": format!("{s3tmp}/stderr")}]})
    );
    assert_eq!(
        run_objects(&t, "compat/echo", &run_id).await,
        vec![
            ("stderr".to_string(), "err\n".to_string()),
            ("stdout".to_string(), "out\n".to_string())
        ]
    );
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn the_original_worker_and_ours_record_the_same_runs() {
    let t = TestRealm::with_setup(&["core"], |setup| {
        setup.s3_key = Some("alias/lava-compat".into());
    })
    .await;
    let jobs = [
        ("compat/ok", "sh -c 'echo out; echo err >&2'", json!({})),
        (
            "compat/fail",
            "sh -c 'exit 3'",
            json!({"iteration_limit": 2}),
        ),
    ];
    for (job_id, payload, extra) in &jobs {
        t.put_job(cmd_job(job_id, payload, extra.clone())).await;
    }
    let dispatch_all = || async {
        let mut ids = Vec::new();
        for (job_id, _, _) in &jobs {
            let out = output(t.dispatch().arg(job_id).env("TZ", ZONE)).await;
            assert!(out.status.success(), "dispatch: {}", stderr(&out));
            ids.push(stdout(&out).trim().to_string());
        }
        ids
    };

    // The same dispatches, run once by the original worker, then by ours.
    let theirs = dispatch_all().await;
    original_worker_runs(&t.name, "core").await;
    let ours = dispatch_all().await;
    our_worker_runs(&t).await;

    for (n, (job_id, _, _)) in jobs.iter().enumerate() {
        let their_item = t
            .events(job_id, &theirs[n])
            .await
            .unwrap_or_else(|| panic!("the original wrote no events for {job_id}"));
        let our_item = t
            .events(job_id, &ours[n])
            .await
            .unwrap_or_else(|| panic!("we wrote no events for {job_id}"));
        compare_items(job_id, &their_item, &theirs[n], &our_item, &ours[n]);
        assert_eq!(
            run_objects(&t, job_id, &ours[n]).await,
            run_objects(&t, job_id, &theirs[n]).await,
            "{job_id}: objects under the run's prefix"
        );
    }

    // What the comparison covered, spelled out.
    let s3tmp = format!("{}/compat/ok/{}", t.realm.s3_temp(), ours[0]);
    let ok = t.log("compat/ok", &ours[0]).await;
    assert_eq!(
        ok.iter().map(|e| e["status"].clone()).collect::<Vec<_>>(),
        [json!("starting"), json!("running"), json!("complete")]
    );
    assert_eq!(
        ok[2]["info"],
        json!({"exit_status": 0, "error": null, "output": [{
            "payload": "sh -c 'echo out; echo err >&2'", "exit_status": 0,
            "stdout": format!("{s3tmp}/stdout"), "stderr": format!("{s3tmp}/stderr")}]})
    );
    assert_eq!(
        run_objects(&t, "compat/ok", &theirs[0]).await,
        vec![
            ("stderr".to_string(), "err\n".to_string()),
            ("stdout".to_string(), "out\n".to_string())
        ]
    );
    let fail = t.log("compat/fail", &theirs[1]).await;
    assert_eq!(
        fail.iter().map(|e| e["status"].clone()).collect::<Vec<_>>(),
        [
            json!("starting"),
            json!("running"),
            json!("retrying"),
            json!("running"),
            json!("failed")
        ]
    );
    let failure = json!({"error": "Failed with exit status 3", "error_data": {
        "exit_status": 3, "error": null,
        "output": [{"payload": "sh -c 'exit 3'", "exit_status": 3}]}});
    assert_eq!(fail[2]["info"], failure, "original retrying");
    assert_eq!(fail[4]["info"], failure, "original failed");
    assert!(run_objects(&t, "compat/fail", &theirs[1]).await.is_empty());
}
