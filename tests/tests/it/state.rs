//! State end to end: `lava-state` run by a payload and by hand, the `state`
//! action, and jobs reading state through their `state` map — `json` and
//! `secure` items (KMS on the emulator, the realm key file on the local
//! backend) — and the inputs that must be refused.

use lava_common::store::{BackendSpec, Key, Table};
use lava_tests::{TestRealm, lava, output, stderr, stdout, suite_backend};
use serde_json::{Value, json};
use tokio::process::Command;

fn job(job_id: &str, payload: Value, extra: Value) -> Value {
    let mut item = json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": payload,
                          "enabled": true, "owner": "tests", "description": "test job"});
    if let (Some(map), Value::Object(extra)) = (item.as_object_mut(), extra) {
        map.extend(extra);
    }
    item
}

/// The realm's `sys` key, as its CloudFormation stack makes it: on the
/// emulator a KMS key with alias `alias/lava-<realm>-sys`. The local
/// backend makes its realm key file on first use.
async fn sys_key(t: &TestRealm) {
    if suite_backend() != BackendSpec::Aws {
        return;
    }
    let config = lava_common::store::aws::sdk_config(None).await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.create_key().send().await;
    let key_id = key
        .ok()
        .and_then(|k| k.key_metadata)
        .map(|m| m.key_id)
        .unwrap_or_else(|| panic!("cannot create a KMS key"));
    let alias = kms
        .create_alias()
        .alias_name(format!("alias/lava-{}-sys", t.name))
        .target_key_id(key_id)
        .send()
        .await;
    assert!(alias.is_ok(), "cannot create the alias: {alias:?}");
}

/// `lava-state` for this realm, as a person runs it (`LAVA_REALM`, and
/// `LAVA_BACKEND` on the local backend).
fn lava_state(t: &TestRealm) -> Command {
    let mut cmd = lava("lava-state");
    cmd.env("LAVA_REALM", &t.name);
    cmd
}

async fn state_item(t: &TestRealm, state_id: &str) -> lava_common::spec::Item {
    let item = t
        .backend
        .tables
        .get(&t.name, Table::State, &Key::new(state_id), true)
        .await;
    item.ok()
        .flatten()
        .unwrap_or_else(|| panic!("no state item {state_id}"))
}

async fn stdout_of(t: &TestRealm, job_id: &str, run_id: &str) -> String {
    t.object(&format!("{}/{job_id}/{run_id}/stdout", t.realm.s3_temp()))
        .await
}

/// Seed 001: one job counts the lines of a file and publishes the count
/// with `lava-state put sid -p lines=$(wc -l < f)`; another reads it through
/// its `state` map. The payload finds the realm in `LAVA_REALM`, the
/// publisher in `LAVA_JOB_ID`, and the backend in `LAVA_BACKEND`, which it
/// inherits from the worker's environment.
#[tokio::test]
async fn a_payload_publishes_state_that_another_job_reads() {
    let t = TestRealm::new(&["core"]).await;
    let program = lava_tests::bin("lava-state");
    let script = format!(
        "printf 'one\\ntwo\\nthree\\n' > f && '{}' put sid -p lines=$(wc -l < f)",
        program.display()
    );
    t.put_job(job(
        "demo/line-counter",
        json!("/bin/sh -c"),
        json!({"parameters": {"args": [script]}}),
    ))
    .await;
    t.put_job(job(
        "demo/line-reporter",
        json!("echo The file contained {{state.sid.lines}} lines"),
        json!({"state": {"sid": "-- default value to be replaced at run-time --"}}),
    ))
    .await;
    let counter = t.dispatch_job("demo/line-counter", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses(
        "demo/line-counter",
        &counter,
        &["starting", "running", "complete"],
    )
    .await;
    let item = state_item(&t, "sid").await;
    let keys: Vec<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["publisher", "state_id", "timestamp", "ttl", "type", "value"]
    );
    assert_eq!(item["publisher"], json!("demo/line-counter"));
    assert_eq!(item["type"], json!("json"));
    assert_eq!(item["value"], json!(r#"{"lines": "3"}"#));
    let ttl = item["ttl"].as_i64().unwrap_or_default();
    let week = chrono::Utc::now().timestamp() + 7 * 86_400;
    assert!((week - 60..=week).contains(&ttl), "STATE_TTL: {ttl}");

    let reporter = t.dispatch_job("demo/line-reporter", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses(
        "demo/line-reporter",
        &reporter,
        &["starting", "running", "complete"],
    )
    .await;
    assert_eq!(
        stdout_of(&t, "demo/line-reporter", &reporter).await,
        "The file contained 3 lines\n"
    );
    // And from a shell.
    let out = output(lava_state(&t).args(["get", "sid", "{{ s.lines }} {{ state }}"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3 {'lines': '3'}\n");
}

/// Secure values: `lava-state put --type secure` and the `state` action
/// store ciphertext in a binary `value`; `lava-state get` and a job's
/// `state` map give the plaintext back.
#[tokio::test]
async fn secure_state_round_trips() {
    let t = TestRealm::new(&["core"]).await;
    sys_key(&t).await;
    let put =
        output(lava_state(&t).args(["put", "dbpass", "-v", "Big Secret", "--type", "secure"]))
            .await;
    assert!(put.status.success(), "{}", stderr(&put));
    let item = state_item(&t, "dbpass").await;
    assert_eq!(item["type"], json!("secure"));
    assert_eq!(item["publisher"], json!("lava-state CLI"));
    let blob = item["value"]["$binary"].as_str().unwrap_or_default();
    assert!(!blob.is_empty(), "binary value: {item:?}");
    let get = output(lava_state(&t).args(["get", "dbpass"])).await;
    assert!(get.status.success(), "{}", stderr(&get));
    assert_eq!(stdout(&get), "Big Secret\n");

    // The action writes one, a job reads both.
    t.put_job(job(
        "writer",
        json!("true"),
        json!({"on_success": [{"action": "state", "state_id": "run_secret", "type": "secure",
                               "value": {"run": "{{ job.run_id }}", "n": 7}}]}),
    ))
    .await;
    t.put_job(job(
        "reader",
        // A `cmd` payload is split into words before each is rendered.
        json!("echo {{state.dbpass}} / {{state.run_secret.run}} {{state.run_secret.n}}"),
        json!({"state": {"dbpass": "none", "run_secret": {"run": "none", "n": 0}}}),
    ))
    .await;
    let writer = t.dispatch_job("writer", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("writer", &writer, &["starting", "running", "complete"])
        .await;
    let item = state_item(&t, "run_secret").await;
    assert_eq!(item["type"], json!("secure"));
    assert_eq!(item["publisher"], json!("writer"));
    assert!(!item["value"].to_string().contains(&writer), "encrypted");
    let reader = t.dispatch_job("reader", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("reader", &reader, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        stdout_of(&t, "reader", &reader).await,
        format!("Big Secret / {writer} 7\n")
    );
}

/// A secure item that cannot be decrypted fails the run that reads it,
/// naming the item and its field; the worker goes on to the next run.
#[tokio::test]
async fn an_undecryptable_secure_item_fails_the_run_not_the_worker() {
    let t = TestRealm::new(&["core"]).await;
    sys_key(&t).await;
    let forged = json!({"state_id": "forged", "type": "secure", "value": {"$binary": "AAECAwQFBgcICQ=="},
                        "timestamp": "2024-05-01T12:00:07+10:00",
                        "ttl": chrono::Utc::now().timestamp() + 3600});
    let forged = forged.as_object().cloned().unwrap_or_default();
    let put = t.backend.tables.put(&t.name, Table::State, &forged).await;
    assert!(put.is_ok(), "{put:?}");
    t.put_job(job(
        "uses-forged",
        json!("echo {{ state.forged }}"),
        json!({"state": {"forged": "default"}}),
    ))
    .await;
    t.put_job(job("fine", json!("echo fine"), json!({}))).await;
    let bad = t.dispatch_job("uses-forged", &[]).await;
    let fine = t.dispatch_job("fine", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("uses-forged", &bad, &["starting", "failed"])
        .await;
    let info = t.log("uses-forged", &bad).await[1]["info"].clone();
    let info = info.as_str().unwrap_or_default().to_string();
    assert!(
        info.starts_with("State: forged: value: Cannot decrypt secure state item: "),
        "{info}"
    );
    t.assert_statuses("fine", &fine, &["starting", "running", "complete"])
        .await;
    let get = output(lava_state(&t).args(["get", "forged"])).await;
    assert_eq!(get.status.code(), Some(1));
    assert!(
        stderr(&get).starts_with("lava-state: forged: value: Cannot decrypt secure state item: "),
        "{}",
        stderr(&get)
    );
}

/// The refusals of `lava-state`, the `state` action's `ttl: 0` (the
/// default, not "expire now") and its reserved ids.
#[tokio::test]
async fn state_refusals_and_defaults() {
    let t = TestRealm::new(&["core"]).await;
    for args in [
        &["put", "lava-tick", "-v", "1"][..],
        &["put", "LAVA", "-p", "a=1"],
        &["get", "Lava.x"],
    ] {
        let out = output(lava_state(&t).args(args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Values beginning with \"lava\" are reserved"),
            "{}",
            stderr(&out)
        );
    }
    let missing = output(lava_state(&t).args(["get", "nothing"])).await;
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), "lava-state: nothing: No such state_id\n");
    let ignored = output(lava_state(&t).args(["get", "-i", "nothing"])).await;
    assert!(ignored.status.success(), "{}", stderr(&ignored));
    assert_eq!(stdout(&ignored), "\n");
    let no_realm = output(lava("lava-state").args(["put", "x", "-v", "1"])).await;
    assert_eq!(no_realm.status.code(), Some(2), "{}", stderr(&no_realm));

    t.put_job(job(
        "ttl0",
        json!("true"),
        json!({"on_success": [{"action": "state", "state_id": "kept", "value": "v", "ttl": 0},
                              {"action": "state", "state_id": "lavaX", "value": "v"}]}),
    ))
    .await;
    let run = t.dispatch_job("ttl0", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses(
        "ttl0",
        &run,
        &["starting", "running", "complete", "action_failed"],
    )
    .await;
    let failed = t.log("ttl0", &run).await[3]["info"].clone();
    assert_eq!(
        failed,
        json!(
            "on_success action: state: Bad state_id: Values beginning with \"lava\" are reserved"
        )
    );
    let item = state_item(&t, "kept").await;
    let ttl = item["ttl"].as_i64().unwrap_or_default();
    let week = chrono::Utc::now().timestamp() + 7 * 86_400;
    assert!(
        (week - 60..=week).contains(&ttl),
        "ttl 0 is STATE_TTL: {ttl}"
    );
    let get = output(lava_state(&t).args(["get", "kept"])).await;
    assert_eq!(stdout(&get), "v\n", "{}", stderr(&get));
}

/// The original `lava-state` (jinlava, from the venv `.ci/run` makes) and
/// ours read each other's `json` and `secure` items, and a job on our
/// worker reads the original's secure item through its `state` map. KMS
/// exists only on the emulator, hence `aws` in the name.
#[tokio::test]
async fn items_are_shared_with_the_original_lava_state_on_aws() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let original = root.join(".venv/bin/lava-state");
    assert!(
        original.exists(),
        "{} not found: .ci/run creates the venv with jinlava",
        original.display()
    );
    let t = TestRealm::new(&["core"]).await;
    sys_key(&t).await;
    let theirs = |args: &[&str]| {
        let mut cmd = Command::new(&original);
        cmd.env("LAVA_REALM", &t.name)
            .env_remove("LAVA_JOB_ID")
            .args(args);
        cmd.kill_on_drop(true);
        cmd
    };
    for args in [
        &["put", "py_secret", "-v", "from python", "--type", "secure"][..],
        &["put", "py_json", "-p", "a=1", "-p", "b=two"],
    ] {
        let out = output(&mut theirs(args)).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for (args, want) in [
        (&["get", "py_secret"][..], "from python\n"),
        (&["get", "py_json"], "{'a': '1', 'b': 'two'}\n"),
    ] {
        let out = output(lava_state(&t).args(args)).await;
        assert_eq!(stdout(&out), want, "{args:?}: {}", stderr(&out));
    }
    for args in [
        &[
            "put",
            "rs_secret",
            "-p",
            "k=v",
            "--type",
            "secure",
            "--ttl",
            "2d",
        ][..],
        &["put", "rs_json", "-v", "plain"],
    ] {
        let out = output(lava_state(&t).args(args)).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for (args, want) in [
        (&["get", "rs_secret", "{{ s.k }}"][..], "v\n"),
        (&["get", "rs_json"], "plain\n"),
    ] {
        let out = output(&mut theirs(args)).await;
        assert_eq!(stdout(&out), want, "{args:?}: {}", stderr(&out));
    }
    t.put_job(job(
        "reads-python",
        json!("echo {{state.py_secret}}"),
        json!({"state": {"py_secret": "none"}}),
    ))
    .await;
    let run = t.dispatch_job("reads-python", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("reads-python", &run, &["starting", "running", "complete"])
        .await;
    assert_eq!(stdout_of(&t, "reads-python", &run).await, "from python\n");
}
