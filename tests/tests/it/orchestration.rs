//! The orchestration job types end to end on a real worker: `chain`, `dag`,
//! `foreach` (in-process children through the one run sequence, each with
//! its own events item under the parent's run id) and `dispatch`; their
//! bad input; and a drain in the middle of a chain, resumed on the next
//! delivery.

use std::path::Path;
use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::{Background, wait_for};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

fn job(job_id: &str, job_type: &str, payload: Value, parameters: Value) -> Value {
    json!({"job_id": job_id, "type": job_type, "worker": "core", "payload": payload,
           "enabled": true, "owner": "tests", "description": "orchestration test job",
           "parameters": parameters})
}

fn statuses(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The info of a run's last entry.
async fn last_info(t: &TestRealm, job_id: &str, run_id: &str) -> Value {
    t.log(job_id, run_id)
        .await
        .last()
        .map(|e| e["info"].clone())
        .unwrap_or_default()
}

/// The time of a run's first entry with `status`.
async fn ts_of(
    t: &TestRealm,
    job_id: &str,
    run_id: &str,
    status: &str,
) -> chrono::DateTime<chrono::FixedOffset> {
    let log = t.log(job_id, run_id).await;
    log.iter()
        .find(|e| e["status"] == json!(status))
        .and_then(|e| e["ts_event"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("no {status} for {job_id}: {log:?}"))
}

#[tokio::test]
async fn chain_with_can_fail_and_start() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("c/a", "cmd", json!("true"), json!({}))).await;
    t.put_job(job("c/b", "cmd", json!("false"), json!({})))
        .await;
    t.put_job(job(
        "c/c",
        "cmd",
        json!(
            "echo {{globals.lava.parent_job_id}}/{{globals.lava.master_job_id}}/{{globals.team}}"
        ),
        json!({}),
    ))
    .await;
    let mut chain = job(
        "permits",
        "chain",
        json!("a, b ,c"),
        json!({"job_prefix": "c/", "can_fail": ["x*", "c/[b]"]}),
    );
    chain["globals"] = json!({"team": "data"});
    t.put_job(chain).await;
    t.put_job(job(
        "strict",
        "chain",
        json!(["a", "b", "c"]),
        json!({"job_prefix": "c/"}),
    ))
    .await;
    t.put_job(job(
        "from-c",
        "chain",
        json!("a,b,c"),
        json!({"job_prefix": "c/", "start": "c"}),
    ))
    .await;
    let permits = t.dispatch_job("permits", &[]).await;
    let strict = t.dispatch_job("strict", &[]).await;
    let from_c = t.dispatch_job("from-c", &[]).await;
    t.run_worker("core", &[]).await;

    t.assert_statuses("permits", &permits, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        last_info(&t, "permits", &permits).await,
        json!({"exit_status": 0, "jobs": ["c/a", "c/c"], "failed_jobs": ["c/b"], "error": null})
    );
    // Each child has its own events item under the parent's run id, its
    // own s3tmp, and the parent's globals with the parent named.
    for child in ["c/a", "c/c"] {
        t.assert_statuses(child, &permits, &["starting", "running", "complete"])
            .await;
    }
    t.assert_statuses("c/b", &permits, &["starting", "running", "failed"])
        .await;
    let stdout = format!("{}/c/c/{permits}/stdout", t.realm.s3_temp());
    assert_eq!(t.object(&stdout).await, "permits/permits/data\n");

    t.assert_statuses("strict", &strict, &["starting", "running", "failed"])
        .await;
    let failed = last_info(&t, "strict", &strict).await;
    assert_eq!(failed["error"], json!("Job c/b: Failed with exit status 1"));
    assert_eq!(
        failed["error_data"],
        json!({"exit_status": 1, "jobs": ["c/a"], "failed_jobs": ["c/b"],
               "error": "Job c/b: Failed with exit status 1"})
    );
    assert!(t.events("c/c", &strict).await.is_none(), "c/c never ran");

    t.assert_statuses("from-c", &from_c, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        last_info(&t, "from-c", &from_c).await["jobs"],
        json!(["c/c"])
    );
    assert!(t.events("c/a", &from_c).await.is_none());
}

/// A script that records when `$1` started, waits for `$2` to have
/// started too (a barrier: only children running at the same time both
/// pass it), then records when it ended.
const BARRIER: &str = r#"date +%s.%N > "$DIR/$1.tmp" && mv "$DIR/$1.tmp" "$DIR/$1.start"
i=0
while [ ! -e "$DIR/$2.start" ]; do
  i=$((i + 1)); [ "$i" -gt 1200 ] && exit 9
  sleep 0.1
done
date +%s.%N > "$DIR/$1.end"
"#;

/// A time a payload wrote (seconds since the epoch).
fn mark(dir: &Path, name: &str) -> f64 {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no time in {name}"))
}

#[tokio::test]
async fn diamond_dag_runs_siblings_in_parallel() {
    let t = TestRealm::new(&["core"]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = dir.path().join("barrier.sh");
    std::fs::write(&script, BARRIER).unwrap_or_else(|e| panic!("{e}"));
    let env = json!({"env": {"DIR": dir.path().display().to_string()}});
    let sh = |a: &str, b: &str| json!(format!("sh {} {a} {b}", script.display()));
    t.put_job(job("d/top", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job("d/left", "cmd", sh("left", "right"), env.clone()))
        .await;
    t.put_job(job("d/right", "cmd", sh("right", "left"), env.clone()))
        .await;
    t.put_job(job("d/bottom", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job(
        "diamond",
        "dag",
        json!({"left": "top", "right": ["top"], "bottom": ["left", "right"], "top": null}),
        json!({"job_prefix": "d/", "workers": 2}),
    ))
    .await;
    let run_id = t.dispatch_job("diamond", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("diamond", &run_id, &["starting", "running", "complete"])
        .await;
    let result = last_info(&t, "diamond", &run_id).await;
    assert_eq!(result["failed_jobs"], json!([]));
    let jobs: Vec<&str> = result["jobs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(jobs.len(), 4, "{result}");
    assert_eq!(jobs[0], "d/top");
    assert_eq!(jobs[3], "d/bottom");
    // The siblings ran at the same time: each started before the other ended.
    let d = dir.path();
    let (l_start, l_end) = (mark(d, "left.start"), mark(d, "left.end"));
    let (r_start, r_end) = (mark(d, "right.start"), mark(d, "right.end"));
    assert!(
        l_start < r_end && r_start < l_end,
        "{l_start}..{l_end} vs {r_start}..{r_end}"
    );
    // Events (whole seconds) keep the order: top before both, bottom after.
    let (l_run, r_run) = (
        ts_of(&t, "d/left", &run_id, "running").await,
        ts_of(&t, "d/right", &run_id, "running").await,
    );
    let (l_done, r_done) = (
        ts_of(&t, "d/left", &run_id, "complete").await,
        ts_of(&t, "d/right", &run_id, "complete").await,
    );
    assert!(ts_of(&t, "d/top", &run_id, "complete").await <= l_run.min(r_run));
    assert!(ts_of(&t, "d/bottom", &run_id, "starting").await >= l_done.max(r_done));
}

#[tokio::test]
async fn chain_inside_a_dag_and_a_cycle() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "n/x",
        "cmd",
        json!("echo {{globals.lava.parent_job_id}} {{globals.lava.master_job_id}}"),
        json!({}),
    ))
    .await;
    // A disabled child counts as a success.
    let mut disabled = job("n/y", "cmd", json!("false"), json!({}));
    disabled["enabled"] = json!(false);
    t.put_job(disabled).await;
    t.put_job(job("n/after", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job("n/inner", "chain", json!("n/x,n/y"), json!({})))
        .await;
    t.put_job(job(
        "outer",
        "dag",
        json!({"n/after": "n/inner"}),
        json!({}),
    ))
    .await;
    t.put_job(job(
        "loop",
        "dag",
        json!({"a": "b", "b": "c", "c": "a", "z": null}),
        json!({}),
    ))
    .await;
    let outer = t.dispatch_job("outer", &[]).await;
    let cycle = t.dispatch_job("loop", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("outer", &outer, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        last_info(&t, "outer", &outer).await["jobs"],
        json!(["n/inner", "n/after"])
    );
    t.assert_statuses("n/inner", &outer, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        last_info(&t, "n/inner", &outer).await["jobs"],
        json!(["n/x", "n/y"])
    );
    t.assert_statuses("n/y", &outer, &["skipped"]).await;
    let stdout = format!("{}/n/x/{outer}/stdout", t.realm.s3_temp());
    assert_eq!(t.object(&stdout).await, "n/inner outer\n");

    t.assert_statuses("loop", &cycle, &["starting", "running", "failed"])
        .await;
    assert_eq!(
        last_info(&t, "loop", &cycle).await["error"],
        json!("Jobs are in a cycle: a, c, b, a")
    );
}

#[tokio::test]
async fn foreach_with_a_failing_index() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "fe/child",
        "cmd",
        json!("sh -c \"test {{globals.n}} != 2\""),
        json!({}),
    ))
    .await;
    let values = json!({"type": "inline", "values": [{"n": 1}, {"n": 2}, {"n": 3}]});
    t.put_job(job(
        "fe/strict",
        "foreach",
        json!("fe/child"),
        json!({"foreach": values}),
    ))
    .await;
    t.put_job(job(
        "fe/lenient",
        "foreach",
        json!("fe/child"),
        json!({"foreach": values, "can_fail": true}),
    ))
    .await;
    let strict = t.dispatch_job("fe/strict", &[]).await;
    let lenient = t.dispatch_job("fe/lenient", &[]).await;
    t.run_worker("core", &[]).await;

    // Each finished index is recorded in the parent's log.
    t.assert_statuses(
        "fe/strict",
        &strict,
        &["starting", "running", "logging", "logging", "failed"],
    )
    .await;
    let failed = last_info(&t, "fe/strict", &strict).await;
    assert_eq!(
        failed["error"],
        json!("Job fe/child: Index 1: Failed with exit status 1")
    );
    assert_eq!(
        failed["error_data"],
        json!({"exit_status": 1, "limit": 10, "foreach_len": 3, "jobs_completed": 1,
               "failed_indexes": [1], "error": "Job fe/child: Index 1: Failed with exit status 1"})
    );
    // Iterations share the child's events item.
    t.assert_statuses(
        "fe/child",
        &strict,
        &[
            "starting", "running", "complete", "starting", "running", "failed",
        ],
    )
    .await;

    let log = t.log("fe/lenient", &lenient).await;
    assert_eq!(
        statuses(&log),
        [
            "starting", "running", "logging", "logging", "logging", "complete"
        ]
    );
    assert_eq!(
        log[2..5]
            .iter()
            .map(|e| e["info"].clone())
            .collect::<Vec<_>>(),
        vec![
            json!({"foreach_index": 0, "outcome": "complete"}),
            json!({"foreach_index": 1, "outcome": "failed"}),
            json!({"foreach_index": 2, "outcome": "complete"}),
        ]
    );
    assert_eq!(
        log[5]["info"],
        json!({"exit_status": 0, "limit": 10, "foreach_len": 3, "jobs_completed": 2,
               "failed_indexes": [1], "error": null})
    );
    assert_eq!(
        t.statuses("fe/child", &lenient).await.len(),
        9,
        "three iterations in one item"
    );
}

/// The bucket name and key prefix of an object URL on either backend.
fn bucket_and_key(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.split_once("/objects/").map(|(_, r)| r))
        .unwrap_or(url);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (bucket.to_string(), key.to_string())
}

#[tokio::test]
async fn foreach_generators() {
    let t = TestRealm::new(&["core"]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "name,size\nsmall,1\n\"big, very\",2\n").unwrap_or_else(|e| panic!("{e}"));
    t.put_payload(
        "fe/lines.jsonl",
        b"{\"name\": \"one\"}\n{\"name\": \"two\"}\n".to_vec(),
    )
    .await;
    for key in ["list/a.csv", "list/sub/b.csv", "list/c.txt"] {
        t.put_payload(key, b"x".to_vec()).await;
    }
    let (bucket, prefix) = bucket_and_key(t.realm.s3_payloads());
    // Each iteration appends its index and value to a file named for the run.
    let child = |id: &str, value: &str| {
        job(
            id,
            "cmd",
            json!(format!(
                "sh -c \"echo {{{{globals.lava.foreach_index}}}}={{{{{value}}}}} >> {{{{globals.dir}}}}/{{{{job.run_id}}}}\""
            )),
            json!({}),
        )
    };
    t.put_job(child("g/n", "globals.n")).await;
    t.put_job(child("g/name", "globals.name")).await;
    t.put_job(child("g/key", "globals.s3obj.Key")).await;
    let generators = [
        (
            "g/range",
            "g/n",
            json!({"type": "range", "start": 1, "stop": 7, "step": 3, "name": "n"}),
        ),
        (
            "g/jsonl",
            "g/name",
            json!({"type": "jsonl", "filename": format!("{}/fe/lines.jsonl", t.realm.s3_payloads())}),
        ),
        (
            "g/csv",
            "g/name",
            json!({"type": "csv", "filename": "{{ globals.dir }}/rows.csv"}),
        ),
        (
            "g/s3list",
            "g/key",
            json!({"type": "s3list", "bucket": bucket, "prefix": format!("{prefix}/list/"), "glob": "*.csv"}),
        ),
    ];
    let mut runs = Vec::new();
    for (id, child, generator) in &generators {
        let mut fe = job(id, "foreach", json!(child), json!({"foreach": generator}));
        fe["globals"] = json!({"dir": dir.path().display().to_string()});
        t.put_job(fe).await;
        runs.push(t.dispatch_job(id, &[]).await);
    }
    t.run_worker("core", &[]).await;
    let want = [
        "0=1\n1=4\n".to_string(),
        "0=one\n1=two\n".to_string(),
        "0=small\n1=big, very\n".to_string(),
        format!("0={prefix}/list/a.csv\n1={prefix}/list/sub/b.csv\n"),
    ];
    for (((id, _, _), run_id), want) in generators.iter().zip(&runs).zip(want) {
        let result = last_info(&t, id, run_id).await;
        assert_eq!(result["jobs_completed"], json!(2), "{id}: {result}");
        let out = std::fs::read_to_string(dir.path().join(run_id)).unwrap_or_default();
        assert_eq!(out, want, "{id}");
    }
}

#[tokio::test]
async fn dispatch_job_sends_delayed_messages() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job("target", "log", Value::Null, json!({})))
        .await;
    t.put_job(job(
        "disp",
        "dispatch",
        json!("target"),
        json!({"delay": "20s", "parameters": {"from": "{{ job.job_id }}"}}),
    ))
    .await;
    let run_id = t.dispatch_job("disp", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("disp", &run_id, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        last_info(&t, "disp", &run_id).await,
        json!({"exit_status": 0, "jobs": ["target"], "error": null})
    );
    // Delayed: not visible yet, then there.
    assert!(t.drain("core", 1, Duration::from_secs(1)).await.is_empty());
    let messages = t.drain("core", 1, Duration::from_secs(90)).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["job_id"], json!("target"));
    assert_eq!(m["parameters"], json!({"from": "disp"}));
    assert_eq!(m["globals"]["lava"]["parent_job_id"], json!("disp"));
    assert_eq!(m["globals"]["lava"]["master_job_id"], json!("disp"));
    assert_ne!(m["run_id"], json!(run_id));
}

#[tokio::test]
async fn bad_input_fails_the_run_never_the_worker() {
    let t = TestRealm::new(&["core", "other"]).await;
    t.put_job(job("ok", "cmd", json!("true"), json!({}))).await;
    let mut elsewhere = job("elsewhere", "cmd", json!("true"), json!({}));
    elsewhere["worker"] = json!("other");
    t.put_job(elsewhere).await;
    let inline3 = json!({"type": "inline", "values": [{"a": 1}, {"a": 2}, {"a": 3}]});
    let cases = [
        (
            job("b/1", "chain", json!({"a": 1}), json!({})),
            "Bad payload: must be string or list",
        ),
        (
            job("b/2", "chain", json!([]), json!({})),
            "Job chain is empty",
        ),
        (
            job(
                "b/3",
                "chain",
                json!("ok"),
                json!({"job_prefix": "p/", "start": "zz"}),
            ),
            "Requested start job p/zz is not present in the chain",
        ),
        (
            job("b/4", "chain", json!("ok,nosuch"), json!({})),
            "nosuch: No such job",
        ),
        (
            job("b/5", "chain", json!("elsewhere"), json!({})),
            "Job elsewhere: Worker mismatch: Expected core but got other",
        ),
        (
            job("b/6", "dag", json!("ok"), json!({})),
            "payload must be a map",
        ),
        (
            job("b/7", "dag", json!({"ok": null}), json!({"workers": 0})),
            "max_workers must be greater than 0",
        ),
        (
            job("b/8", "dag", json!({"ok": "nosuch"}), json!({})),
            "nosuch: No such job",
        ),
        (
            job(
                "b/9",
                "foreach",
                json!("ok"),
                json!({"foreach": inline3, "limit": 2}),
            ),
            "foreach value list exceeds limit of 2",
        ),
        (
            job(
                "b/10",
                "foreach",
                json!("ok"),
                json!({"foreach": {"type": "bogus"}}),
            ),
            "No foreach handler for type bogus",
        ),
        (
            job(
                "b/11",
                "foreach",
                json!("ok"),
                json!({"foreach": inline3, "limit": 30}),
            ),
            "foreach limit of 30 exceeds realm limit of 25",
        ),
        (
            job(
                "b/12",
                "foreach",
                json!("ok"),
                json!({"foreach": {"type": "inline", "values": [{"LAVA_x": 1}]}}),
            ),
            "foreach field names may not start with \"lava\"",
        ),
        (
            job(
                "b/13",
                "foreach",
                json!("ok"),
                json!({"foreach": {"type": "query", "conn_id": "db", "query": "select 1"}}),
            ),
            "foreach query: needs the SQL job types, not supported by this worker yet",
        ),
        (
            job(
                "b/14",
                "foreach",
                json!(["ok"]),
                json!({"foreach": inline3}),
            ),
            "Bad payload: must be string",
        ),
        (
            job(
                "b/15",
                "foreach",
                json!("nosuch"),
                json!({"foreach": inline3}),
            ),
            "Job nosuch: No such job",
        ),
        (
            job("b/16", "dispatch", json!("ok,b/16"), json!({"delay": "1s"})),
            "b/16: Circular dispatch not permitted",
        ),
        (
            job("b/17", "dispatch", json!("ok"), json!({"delay": "20m"})),
            "Bad delay: 20m: must be between 0 and 15 minutes",
        ),
        (
            job("b/18", "dispatch", json!({"a": 1}), json!({})),
            "Payload must be comma separated list or real list of job IDs",
        ),
        (
            job("b/19", "chain", json!("ok"), json!({"timeout": "1m"})),
            "Bad job parameters: Unexpected keys: timeout",
        ),
    ];
    let mut runs = Vec::new();
    for (item, _) in &cases {
        t.put_job(item.clone()).await;
        runs.push(
            t.dispatch_job(item["job_id"].as_str().unwrap_or_default(), &[])
                .await,
        );
    }
    t.run_worker("core", &[]).await;
    for ((item, text), run_id) in cases.iter().zip(&runs) {
        let id = item["job_id"].as_str().unwrap_or_default();
        let log = t.log(id, run_id).await;
        assert_eq!(
            statuses(&log),
            ["starting", "running", "failed"],
            "{id}: {log:?}"
        );
        assert_eq!(log[2]["info"]["error"], json!(text), "{id}");
    }
}

/// A child that, the first time, marks itself started and waits to be
/// stopped; later it succeeds at once.
const STOPPABLE: &str = r#"if [ -e "$DIR/second" ]; then exit 0; fi
touch "$DIR/second"
touch "$DIR/started"
sleep 300
"#;

#[tokio::test]
async fn drain_during_a_chain_resumes_after_completed_children() {
    let t = TestRealm::new(&["core"]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = dir.path().join("stoppable.sh");
    std::fs::write(&script, STOPPABLE).unwrap_or_else(|e| panic!("{e}"));
    let env = json!({"env": {"DIR": dir.path().display().to_string()}});
    t.put_job(job("r/one", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job(
        "r/two",
        "cmd",
        json!(format!("sh {}", script.display())),
        env,
    ))
    .await;
    t.put_job(job("r/three", "cmd", json!("true"), json!({})))
        .await;
    t.put_job(job(
        "resumable",
        "chain",
        json!("r/one,r/two,r/three"),
        json!({}),
    ))
    .await;
    let run_id = t.dispatch_job("resumable", &[]).await;
    let mut cmd = t.worker("core");
    cmd.args(["--drain-timeout", "1s"])
        .env("LAVA_KILL_GRACE", "1s");
    let mut worker = Background::start(cmd);
    let started = dir.path().join("started");
    wait_for("r/two to start", Duration::from_secs(120), || async {
        Path::new(&started).exists().then_some(())
    })
    .await;
    worker.signal(Signal::SIGTERM);
    let status = worker.wait().await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
    let interrupted = json!("Interrupted by worker shutdown");
    let log = t.log("resumable", &run_id).await;
    assert_eq!(
        statuses(&log),
        ["starting", "running", "retrying"],
        "{}",
        worker.log()
    );
    assert_eq!(log[2]["info"], interrupted);
    let log = t.log("r/two", &run_id).await;
    assert_eq!(statuses(&log), ["starting", "running", "retrying"]);
    assert_eq!(log[2]["info"], interrupted);

    // The next delivery resumes the run: r/one is not run again.
    let out = t.run_worker("core", &[]).await;
    let log = t.log("resumable", &run_id).await;
    assert_eq!(
        statuses(&log),
        [
            "starting", "running", "retrying", "starting", "running", "complete"
        ],
        "{}",
        lava_tests::stderr(&out)
    );
    assert_eq!(log[5]["info"]["jobs"], json!(["r/one", "r/two", "r/three"]));
    t.assert_statuses("r/one", &run_id, &["starting", "running", "complete"])
        .await;
    t.assert_statuses(
        "r/two",
        &run_id,
        &[
            "starting", "running", "retrying", "starting", "running", "complete",
        ],
    )
    .await;
    t.assert_statuses("r/three", &run_id, &["starting", "running", "complete"])
        .await;
}
