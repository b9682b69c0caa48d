//! `lava-worker` against the emulator: the run lifecycle end to end, with
//! messages sent by the real `lava-dispatch`.

use std::time::Duration;

use lava_tests::{TestRealm, output, stderr};
use serde_json::{Value, json};

fn job(job_id: &str, job_type: &str, payload: Value, extra: Value) -> Value {
    let mut item = json!({"job_id": job_id, "type": job_type, "worker": "core", "payload": payload,
                          "enabled": true, "owner": "tests", "description": "test job"});
    if let (Some(map), Value::Object(extra)) = (item.as_object_mut(), extra) {
        map.extend(extra);
    }
    item
}

#[tokio::test]
async fn cmd_success_uploads_stdout_and_records_events() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "demo/hello",
        "cmd",
        json!("sh -c 'echo hello from $LAVA_JOB_ID; echo warn >&2'"),
        json!({}),
    ))
    .await;
    let run_id = t.dispatch_job("demo/hello", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("demo/hello", &run_id, &["starting", "running", "complete"])
        .await;
    let item = t.events("demo/hello", &run_id).await.unwrap_or_default();
    assert_eq!(item["status"], json!("complete"));
    assert_eq!(item["worker"], json!("core"));
    assert!(item["hostname"].is_string());
    assert_eq!(item["worker_id"], Value::Null);
    assert!(item.get("lease").is_none());
    assert!(
        item["ttl"]
            .as_i64()
            .is_some_and(|ttl| ttl > chrono::Utc::now().timestamp() + 86_000)
    );
    let tu = item["tu_event"].as_str().unwrap_or_default();
    assert_eq!(tu.len(), 19, "naive UTC: {tu}");
    let log = t.log("demo/hello", &run_id).await;
    assert_eq!(log[0]["info"], Value::Null);
    assert_eq!(log[1]["info"], json!("Iteration 1"));
    let s3tmp = format!("{}/demo/hello/{run_id}", t.realm.s3_temp());
    assert_eq!(
        log[2]["info"],
        json!({"exit_status": 0, "error": null, "output": [{"payload": "sh -c 'echo hello from $LAVA_JOB_ID; echo warn >&2'",
               "exit_status": 0, "stdout": format!("{s3tmp}/stdout"), "stderr": format!("{s3tmp}/stderr")}]})
    );
    assert_eq!(
        t.object(&format!("{s3tmp}/stdout")).await,
        "hello from demo/hello\n"
    );
    assert_eq!(t.object(&format!("{s3tmp}/stderr")).await, "warn\n");
    // The message is gone.
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn failure_retries_and_runs_actions() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "demo/fail",
        "cmd",
        json!("sh -c 'echo broken >&2; exit 3'"),
        json!({"iteration_limit": 3, "iteration_delay": "1s",
               "on_retry": [{"action": "log", "message": "RETRY-{{ job.job_id }}"}],
               "on_fail": [{"action": "log", "message": "FAILED-{{ result.error }}"},
                           {"action": "state", "state_id": "fail_note", "value": "{{ result.error_data.exit_status }}", "type": "raw"}]}),
    ))
    .await;
    let run_id = t.dispatch_job("demo/fail", &[]).await;
    let out = t.run_worker("core", &[]).await;
    t.assert_statuses(
        "demo/fail",
        &run_id,
        &[
            "starting", "running", "retrying", "running", "retrying", "running", "failed",
        ],
    )
    .await;
    let log = t.log("demo/fail", &run_id).await;
    let failed = &log[6]["info"];
    assert_eq!(failed["error"], json!("Failed with exit status 3"));
    assert_eq!(failed["error_data"]["exit_status"], json!(3));
    assert_eq!(failed["error_data"]["error"], json!("broken"));
    assert_eq!(log[2]["info"]["error"], json!("Failed with exit status 3"));
    let err = stderr(&out);
    assert_eq!(err.matches("RETRY-demo/fail").count(), 2, "{err}");
    assert_eq!(
        err.matches("FAILED-Failed with exit status 3").count(),
        1,
        "{err}"
    );
    let state = t
        .backend
        .tables
        .get(
            &t.name,
            lava_common::store::Table::State,
            &lava_common::store::Key::new("fail_note"),
            true,
        )
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert_eq!(state.get("value"), Some(&json!("3")));
    assert_eq!(state.get("publisher"), Some(&json!("demo/fail")));
}

#[tokio::test]
async fn disabled_jobs_are_skipped() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("off", "cmd", json!("true"), json!({"enabled": false})))
        .await;
    t.put_job(job(
        "jinja-off",
        "cmd",
        json!("true"),
        json!({"enabled": "{{ globals.go }}", "globals": {"go": "no"}}),
    ))
    .await;
    t.put_job(job(
        "jinja-on",
        "cmd",
        json!("true"),
        json!({"enabled": "{{ globals.go }}", "globals": {"go": " TRUE "}}),
    ))
    .await;
    let off = t.dispatch_job("off", &[]).await;
    let jinja_off = t.dispatch_job("jinja-off", &[]).await;
    let jinja_on = t.dispatch_job("jinja-on", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("off", &off, &["skipped"]).await;
    assert_eq!(
        t.log("off", &off).await[0]["info"],
        json!("Job not enabled (static)")
    );
    t.assert_statuses("jinja-off", &jinja_off, &["starting", "skipped"])
        .await;
    assert_eq!(
        t.log("jinja-off", &jinja_off).await[1]["info"],
        json!("Job not enabled (enabled=\"no\")")
    );
    t.assert_statuses("jinja-on", &jinja_on, &["starting", "running", "complete"])
        .await;
}

/// The `skipped` info quotes the rendered `enabled` trimmed and lower-cased,
/// as the original does.
#[tokio::test]
async fn jinja_enabled_is_quoted_as_compared() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "compare",
        "cmd",
        json!("true"),
        json!({"enabled": "{{ 1 == 2 }}"}),
    ))
    .await;
    t.put_job(job(
        "spaced",
        "cmd",
        json!("true"),
        json!({"enabled": "  No  "}),
    ))
    .await;
    let compare = t.dispatch_job("compare", &[]).await;
    let spaced = t.dispatch_job("spaced", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("compare", &compare, &["starting", "skipped"])
        .await;
    assert_eq!(
        t.log("compare", &compare).await[1]["info"],
        json!("Job not enabled (enabled=\"false\")")
    );
    assert_eq!(
        t.log("spaced", &spaced).await[1]["info"],
        json!("Job not enabled (enabled=\"no\")")
    );
}

/// A timeout too long to be a deadline fails its run with a clear error;
/// the worker goes on and runs the next message.
#[tokio::test]
async fn a_huge_timeout_fails_the_run_not_the_worker() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("huge", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job("after", "cmd", json!("echo after"), json!({})))
        .await;
    let huge = t.dispatch_job("huge", &["-p", "timeout=1e20"]).await;
    let fine = t.dispatch_job("huge", &["-p", "timeout=1e9"]).await;
    let after = t.dispatch_job("after", &[]).await;
    let out = t.run_worker("core", &["--threads", "1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    t.assert_statuses("huge", &huge, &["starting", "running", "failed"])
        .await;
    let log = t.log("huge", &huge).await;
    assert_eq!(
        log[2]["info"]["error"],
        json!("Bad timeout: duration too long: 1e20 (at most 100 years)")
    );
    t.assert_statuses("huge", &fine, &["starting", "running", "complete"])
        .await;
    t.assert_statuses("after", &after, &["starting", "running", "complete"])
        .await;
}

/// A type of the original that this worker does not run yet is told apart
/// from a misspelt one.
#[tokio::test]
async fn unbuilt_job_types_say_so() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("query", "sqlv", json!("select 1"), json!({})))
        .await;
    let run_id = t.dispatch_job("query", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("query", &run_id, &["starting", "failed"])
        .await;
    assert_eq!(
        t.log("query", &run_id).await[1]["info"],
        json!("sqlv: job type not supported by this worker yet")
    );
}

#[tokio::test]
async fn max_run_delay_rejects_stale_dispatches() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "stale",
        "cmd",
        json!("true"),
        json!({"max_run_delay": "1s"}),
    ))
    .await;
    t.put_job(job(
        "fresh",
        "cmd",
        json!("true"),
        json!({"max_run_delay": "1h"}),
    ))
    .await;
    let stale = t.dispatch_job("stale", &[]).await;
    let fresh = t.dispatch_job("fresh", &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("stale", &stale, &["starting", "rejected"])
        .await;
    assert_eq!(
        t.log("stale", &stale).await[1]["info"],
        json!("dispatch is more than 1s old")
    );
    t.assert_statuses("fresh", &fresh, &["starting", "running", "complete"])
        .await;
}

#[tokio::test]
async fn dispatch_parameters_and_globals_reach_the_payload() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "params",
        "cmd",
        json!("sh -c 'echo \"$MSG\" {{ job.parameters.vars.x }} {{ globals.g }} {{ vars.x }}'"),
        json!({"parameters": {"vars": {"x": "job"}, "env": {"MSG": "env-{{ globals.g }}"}}, "globals": {"g": "job"}}),
    ))
    .await;
    let run_id = t
        .dispatch_job("params", &["-p", "vars.x=disp", "-g", "g=glob"])
        .await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("params", &run_id, &["starting", "running", "complete"])
        .await;
    let stdout = t
        .object(&format!("{}/params/{run_id}/stdout", t.realm.s3_temp()))
        .await;
    assert_eq!(stdout, "env-glob disp glob disp\n");
}

#[tokio::test]
async fn exe_payload_comes_from_the_payload_area() {
    let t = TestRealm::new(&["core"]).await;
    t.put_payload(
        "bin/greet.sh",
        b"#!/bin/sh\necho \"greet $1 $LAVA_S3_PAYLOAD\"\n".to_vec(),
    )
    .await;
    t.put_payload(
        "bin/greet.sh.2",
        b"#!/bin/sh\necho second \"$@\"\n".to_vec(),
    )
    .await;
    t.put_job(job(
        "exe",
        "exe",
        json!("bin/greet.sh {{globals.who}}"),
        json!({"globals": {"who": "world"}}),
    ))
    .await;
    let run_id = t.dispatch_job("exe", &[]).await;
    t.run_worker("core", &["--retries", "0"]).await;
    let log = t.log("exe", &run_id).await;
    assert_eq!(
        t.statuses("exe", &run_id).await,
        vec!["starting", "running", "complete"],
        "{log:?}"
    );
    let s3tmp = format!("{}/exe/{run_id}", t.realm.s3_temp());
    let output = log[2]["info"]["output"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        output.len(),
        2,
        "string-prefix listing runs both: {output:?}"
    );
    assert_eq!(output[0]["payload"], json!("greet.sh"));
    assert_eq!(
        output[0]["stdout"],
        json!(format!("{s3tmp}/greet.sh.stdout"))
    );
    assert_eq!(
        t.object(&format!("{s3tmp}/greet.sh.stdout")).await,
        format!("greet world {}/bin/greet.sh\n", t.realm.s3_payloads())
    );
    assert_eq!(
        t.object(&format!("{s3tmp}/greet.sh.2.stdout")).await,
        "second world\n"
    );

    t.put_job(job(
        "exe-missing",
        "exe",
        json!("bin/nothing.sh"),
        json!({}),
    ))
    .await;
    let run_id = t.dispatch_job("exe-missing", &[]).await;
    t.run_worker("core", &[]).await;
    let log = t.log("exe-missing", &run_id).await;
    assert_eq!(
        log.last().map(|e| e["status"].clone()),
        Some(json!("failed"))
    );
    assert_eq!(
        log.last().map(|e| e["info"]["error"].clone()),
        Some(json!(
            "No payload files downloaded from S3 for payload: bin/nothing.sh"
        ))
    );
}

/// Builds a bundle with the system's tar or zip.
fn bundle(kind: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        src.join("bin/run.sh"),
        "#!/bin/sh\necho \"pkg $1 from $(pwd | sed 's/.*\\.pkg$/unpacked/')\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join(format!("bundle.{kind}"));
    let status = if kind == "zip" {
        std::process::Command::new("zip")
            .arg("-qr")
            .arg(&file)
            .arg("bin")
            .current_dir(&src)
            .status()
    } else {
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&file)
            .arg("-C")
            .arg(&src)
            .arg("bin")
            .status()
    };
    assert!(
        status.is_ok_and(|s| s.success()),
        "cannot build the {kind} bundle"
    );
    std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn pkg_bundles_are_unpacked_and_run() {
    let t = TestRealm::new(&["core"]).await;
    for kind in ["tar.gz", "zip"] {
        let name = format!("pkgs/app.{kind}");
        t.put_payload(&name, bundle(kind)).await;
        let job_id = format!("pkg-{}", kind.replace('.', "-"));
        t.put_job(job(
            &job_id,
            "pkg",
            json!(name),
            json!({"parameters": {"command": "bin/run.sh {{globals.day}}"},
                                                            "globals": {"day": "monday"}}),
        ))
        .await;
        let run_id = t.dispatch_job(&job_id, &[]).await;
        t.run_worker("core", &[]).await;
        let log = t.log(&job_id, &run_id).await;
        assert_eq!(
            t.statuses(&job_id, &run_id).await,
            vec!["starting", "running", "complete"],
            "{log:?}"
        );
        let stdout = t
            .object(&format!(
                "{}/{job_id}/{run_id}/app.{kind}.stdout",
                t.realm.s3_temp()
            ))
            .await;
        assert_eq!(stdout, "pkg monday from unpacked\n");
    }
}

#[tokio::test]
async fn event_log_and_state_are_rendered() {
    let t = TestRealm::new(&["core"]).await;
    let state = json!({"state_id": "last_ok", "type": "json", "value": "\"2024-05-01\"",
                       "timestamp": "2024-05-01T12:00:07+10:00", "ttl": chrono::Utc::now().timestamp() + 3600});
    let item = state.as_object().cloned().unwrap_or_default();
    t.backend
        .tables
        .put(&t.name, lava_common::store::Table::State, &item)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    t.put_job(job(
        "stateful",
        "cmd",
        json!("echo since={{state.last_ok}} other={{state.missing}}"),
        json!({"state": {"last_ok": "never", "missing": "default"},
               "event_log": {"note": "run of {{ job.job_id }}", "n": 5}}),
    ))
    .await;
    let run_id = t.dispatch_job("stateful", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses(
        "stateful",
        &run_id,
        &["starting", "logging", "running", "complete"],
    )
    .await;
    assert_eq!(
        t.log("stateful", &run_id).await[1]["info"],
        json!({"note": "run of stateful", "n": 5})
    );
    let stdout = t
        .object(&format!("{}/stateful/{run_id}/stdout", t.realm.s3_temp()))
        .await;
    assert_eq!(stdout, "since=2024-05-01 other=default\n");
}

#[tokio::test]
async fn dispatch_action_starts_a_child_with_parent_globals() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("parent", "cmd", json!("true"),
        json!({"globals": {"team": "data"},
               "on_success": [{"action": "dispatch", "job_id": "child", "parameters": {"vars": {"from": "{{ job.job_id }}"}}}]})))
        .await;
    t.put_job(job("child", "log", Value::Null, json!({}))).await;
    let parent_run = t.dispatch_job("parent", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("parent", &parent_run, &["starting", "running", "complete"])
        .await;
    // The child's run: find it in the events table.
    let children: Vec<_> = t
        .backend
        .tables
        .scan(&t.name, lava_common::store::Table::Events)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.get("job_id") == Some(&json!("child")))
        .collect();
    assert_eq!(children.len(), 1, "one child run");
    let child_run = children[0]["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(child_run, parent_run);
    t.assert_statuses("child", &child_run, &["starting", "running", "complete"])
        .await;
    let out = t.run_worker("core", &[]).await;
    let _ = out;
}

#[tokio::test]
async fn bad_input_never_stops_the_worker() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("weird", "teleport", json!("x"), json!({})))
        .await;
    t.put_job(job(
        "badparams",
        "cmd",
        json!("true"),
        json!({"parameters": {"colour": "red"}}),
    ))
    .await;
    // Words are split before rendering, as the original does: `{{ x }}` breaks.
    t.put_job(job(
        "badjinja",
        "cmd",
        json!("echo {{ job.job_id }}"),
        json!({}),
    ))
    .await;
    t.put_job(job(
        "elsewhere",
        "cmd",
        json!("true"),
        json!({"worker": "other"}),
    ))
    .await;
    t.put_job(json!({"job_id": "broken", "type": "cmd"})).await;
    let weird = t.dispatch_job("weird", &[]).await;
    let badparams = t.dispatch_job("badparams", &[]).await;
    let badjinja = t.dispatch_job("badjinja", &[]).await;
    let elsewhere = t.dispatch_job("elsewhere", &["-w", "core"]).await;
    let broken = t.dispatch_job("broken", &["-w", "core"]).await;
    let ghost = t.dispatch_job("ghost", &["-w", "core"]).await;
    let queue = t.queue("core").await;
    for body in [
        "not json",
        "[1, 2]",
        r#"{"job_id": "x", "run_id": "not-a-uuid"}"#,
    ] {
        t.backend
            .queue
            .send(&queue, body, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    t.run_worker("core", &[]).await;
    let last = |log: Vec<Value>| log.last().cloned().unwrap_or_default();
    let e = last(t.log("weird", &weird).await);
    assert_eq!(
        (e["status"].clone(), e["info"].clone()),
        (json!("failed"), json!("teleport: Unknown job type"))
    );
    let e = last(t.log("badparams", &badparams).await);
    assert_eq!(
        e["info"]["error"],
        json!("Bad job parameters: Unexpected keys: colour")
    );
    let e = last(t.log("badjinja", &badjinja).await);
    assert_eq!(e["status"], json!("failed"));
    assert!(
        e["info"]["error"]
            .as_str()
            .is_some_and(|m| m.starts_with("Bad payload:")),
        "{e}"
    );
    let e = last(t.log("elsewhere", &elsewhere).await);
    assert_eq!(e["status"], json!("rejected"));
    assert_eq!(
        e["info"],
        json!(format!(
            "Job elsewhere ({elsewhere}): Worker mismatch: Expected core but got other"
        ))
    );
    let e = last(t.log("broken", &broken).await);
    assert_eq!(
        e["info"],
        json!(format!(
            "Job broken ({broken}): Bad job record: Missing keys: payload, worker"
        ))
    );
    let e = last(t.log("ghost", &ghost).await);
    assert_eq!(
        e["info"],
        json!(format!("Job ghost ({ghost}): No such job"))
    );
    assert!(
        t.drain("core", 1, Duration::from_secs(1)).await.is_empty(),
        "every message was deleted"
    );
}

#[tokio::test]
async fn refuses_root_without_the_flag_and_bad_usage() {
    let t = TestRealm::new(&["core"]).await;
    let out =
        output(lava_tests::lava("lava-worker").args(["-r", &t.name, "-w", "core", "--batch"]))
            .await;
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let out = output(t.worker("core").args(["--batch", "--heartbeat", "5"])).await;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let out = output(
        t.worker("nofleet")
            .arg("--batch")
            .env("LAVA_STARTUP_RETRY", "0"),
    )
    .await;
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("queue lava-{}-nofleet not found", t.name)),
        "{}",
        stderr(&out)
    );
    // A setting too long to be a duration refuses start-up, naming it.
    for (name, value) in [
        ("LAVA_CMD_TIMEOUT", "1e300s"),
        ("LAVA_STARTUP_RETRY", "1e20"),
    ] {
        let out = output(t.worker("core").arg("--batch").env(name, value)).await;
        assert_eq!(out.status.code(), Some(78), "{name}: {}", stderr(&out));
        let setting = name.trim_start_matches("LAVA_");
        assert!(
            stderr(&out).contains(&format!("config item {setting}")),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn twenty_jobs_four_threads_each_once() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "par",
        "cmd",
        json!("sh -c 'sleep 0.3; echo $LAVA_RUN_ID'"),
        json!({}),
    ))
    .await;
    let ids: Vec<String> = (0..20).map(|i| format!("par{i}")).collect();
    for id in &ids {
        t.put_job(job(
            id,
            "cmd",
            json!("sh -c 'sleep 0.3; echo $LAVA_RUN_ID'"),
            json!({}),
        ))
        .await;
    }
    let args: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = output(t.dispatch().args(&args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<String> = lava_tests::stdout(&out)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(runs.len(), 20);
    t.run_worker("core", &["--threads", "4"]).await;
    for (job_id, run_id) in ids.iter().zip(&runs) {
        assert_eq!(
            t.statuses(job_id, run_id).await,
            vec!["starting", "running", "complete"],
            "{job_id}"
        );
        let stdout = t
            .object(&format!("{}/{job_id}/{run_id}/stdout", t.realm.s3_temp()))
            .await;
        assert_eq!(stdout.trim(), run_id);
    }
}

#[tokio::test]
async fn renders_as_python_jinja_does() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "py",
        "cmd",
        json!("echo {{globals.flag}} {{globals.n}} {{globals.m}} {{start.year>2000}} {{(ustart-start).total_seconds()|int}}"),
        json!({"enabled": "{{ True }}", "globals": {"flag": true, "n": 5, "m": {"k": "v"}},
               "on_success": [{"action": "state", "state_id": "last_ok", "value": "{{ ustart.isoformat() }}"}]}),
    ))
    .await;
    let run_id = t.dispatch_job("py", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("py", &run_id, &["starting", "running", "complete"])
        .await;
    let stdout = t
        .object(&format!("{}/py/{run_id}/stdout", t.realm.s3_temp()))
        .await;
    assert_eq!(stdout, "True 5 {'k': 'v'} True 0\n");
    let log = t.log("py", &run_id).await;
    let start = log[0]["ts_event"].as_str().unwrap_or_default().to_string();
    let state = t
        .backend
        .tables
        .get(
            &t.name,
            lava_common::store::Table::State,
            &lava_common::store::Key::new("last_ok"),
            true,
        )
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let stored: String = state
        .get("value")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let start = chrono::DateTime::parse_from_rfc3339(&start).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stored,
        lava_common::timestamp::utc_isoformat(&start),
        "ustart.isoformat() in UTC"
    );
}

/// Events put by the `event` action: EventBridge (a rule with an SQS
/// target) on AWS, `<DIR>/events.jsonl` on the local backend.
async fn bus_events(t: &TestRealm, expect: usize) -> Vec<Value> {
    match lava_tests::suite_backend() {
        lava_common::store::BackendSpec::Local(dir) => {
            let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["source"].as_str().is_some_and(|s| s.contains(&t.name)))
                .collect()
        }
        lava_common::store::BackendSpec::Aws => {
            t.drain("tap", expect, Duration::from_secs(5)).await
        }
    }
}

#[tokio::test]
async fn event_action_puts_events() {
    let t = TestRealm::new(&["core", "tap"]).await;
    if lava_tests::suite_backend() == lava_common::store::BackendSpec::Aws {
        let config = lava_common::store::aws::sdk_config(None).await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let rule = format!("lava.{}.tap", t.name);
        let pattern = json!({"source": [{"prefix": format!("lava.{}", t.name)}]}).to_string();
        events
            .put_rule()
            .name(&rule)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:lava-{}-tap", t.name);
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("tap")
            .arn(arn)
            .build();
        let target = target.unwrap_or_else(|e| panic!("{e}"));
        events
            .put_targets()
            .rule(&rule)
            .targets(target)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
    t.put_job(job(
        "ev",
        "cmd",
        json!("sh -c 'exit 4'"),
        json!({"on_fail": [
            {"action": "event"},
            {"action": "event", "source": "lava.{{ realm.realm }}.custom", "detail_type": "Custom",
             "detail": {"job": "{{ job.job_id }}", "error": "{{ result.error }}"}}]}),
    ))
    .await;
    let run_id = t.dispatch_job("ev", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("ev", &run_id, &["starting", "running", "failed"])
        .await;
    let mut events = bus_events(&t, 2).await;
    events.sort_by_key(|e| e["detail-type"].as_str().unwrap_or_default().to_string());
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["detail-type"], json!("Custom"));
    assert_eq!(
        events[0]["source"],
        json!(format!("lava.{}.custom", t.name))
    );
    assert_eq!(
        events[0]["detail"],
        json!({"job": "ev", "error": "Failed with exit status 4"})
    );
    assert_eq!(events[1]["detail-type"], json!("Lava Job Action"));
    assert_eq!(events[1]["source"], json!(format!("lava.{}", t.name)));
    assert_eq!(
        events[1]["detail"],
        json!({"realm": t.name, "worker": "core", "job_id": "ev", "run_id": run_id, "exit_status": 4}),
        "exit_status from error_data"
    );
}

/// An events item never passes DynamoDB's 400 KB limit: an entry that
/// would take it past 350 KB is shrunk, the whole entry kept in the run's
/// temp area as `event-<n>.json`; the final status is always written. One oversized entry here: moto counts an updated
/// attribute's old and new values together against the limit, so growth
/// over several entries is tested on the local backend
/// (`worker/src/events.rs`).
#[tokio::test]
async fn an_oversized_event_is_shrunk_and_kept_whole() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "big",
        "cmd",
        json!("sh -c 'echo started; yes 0123456789abcdef | head -c 600000 >&2; exit 3'"),
        json!({}),
    ))
    .await;
    let run_id = t.dispatch_job("big", &[]).await;
    // The failure's event asks for 500 kB of stderr.
    let out = output(
        t.worker("core")
            .arg("--batch")
            .env("LAVA_STDERR_SIZE", "500000"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    t.assert_statuses("big", &run_id, &["starting", "running", "failed"])
        .await;
    let item = t.events("big", &run_id).await.unwrap_or_default();
    let size = serde_json::to_vec(&item).map_or(0, |v| v.len());
    assert!(size < 360_000, "events item of {size} bytes");
    assert_eq!(item["status"], json!("failed"));

    let log = t.log("big", &run_id).await;
    let s3tmp = format!("{}/big/{run_id}", t.realm.s3_temp());
    let info = &log[2]["info"];
    assert_eq!(info["truncated"], json!(true));
    assert_eq!(info["record"], json!(format!("{s3tmp}/event-2.json")));
    assert_eq!(info["error"], json!("Failed with exit status 3"));
    // The stderr excerpt, the largest field, is what was cut.
    let excerpt = info["error_data"]["error"].as_str().unwrap_or_default();
    assert!(
        excerpt.len() > 300_000 && excerpt.len() < 350_000 && excerpt.ends_with('…'),
        "{} bytes",
        excerpt.len()
    );
    assert_eq!(
        info["error_data"]["output"][0]["stdout"],
        json!(format!("{s3tmp}/stdout"))
    );
    let whole: Value =
        serde_json::from_str(&t.object(&format!("{s3tmp}/event-2.json")).await).unwrap_or_default();
    assert_eq!(whole["status"], json!("failed"));
    assert_eq!(whole["ts_event"], log[2]["ts_event"]);
    let full = whole["info"]["error_data"]["error"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(full.len(), 500_000, "the whole excerpt");
    assert!(
        stderr(&out).contains("info shrunk to"),
        "no warning about the shrink:\n{}",
        stderr(&out)
    );
}
