//! The `lavasched` job type and worker jump-start (`-j`) against the
//! emulator, with the file-backed crontab stand-in
//! (`tests/fixtures/fake-crontab`): lavasched jobs are sent
//! by the real `lava-dispatch` (or by jump-start) and run by `lava-worker`.

use std::path::{Path, PathBuf};
use std::process::Output;

use lava_common::store::Table;
use lava_tests::{TestRealm, output, stderr};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

const START: &str = "#### Lava Schedules Start ####";
const END: &str = "#### Lava Schedules End ####";
const CALL: &str = "/usr/bin/lava-dispatch --worker core --check-dispatch --level warning";

/// A crontab file of its own for the stand-in.
struct Crontab {
    dir: TempDir,
}

impl Crontab {
    fn new() -> Self {
        match tempfile::tempdir() {
            Ok(dir) => Self { dir },
            Err(e) => panic!("cannot make a temporary directory: {e}"),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("crontab")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }

    fn installs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("crontab.installs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// `lava-worker --batch` for `core`, with the stand-in as crontab(1),
    /// `/usr/bin/lava-dispatch` as the dispatcher path and the host zone UTC.
    fn worker(&self, t: &TestRealm) -> Command {
        let mut cmd = t.worker("core");
        cmd.arg("--batch")
            .env("LAVA_CRONTAB_CMD", fixture("fake-crontab"))
            .env("FAKE_CRONTAB_FILE", self.file())
            .env("LAVA_DISPATCHER", "/usr/bin/lava-dispatch")
            .env("TZ", "UTC");
        cmd
    }

    async fn run_worker(&self, t: &TestRealm, extra: &[&str]) -> Output {
        let out = output(self.worker(t).args(extra)).await;
        assert!(
            out.status.success(),
            "worker failed ({:?}): {}",
            out.status,
            stderr(&out)
        );
        out
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A scheduled `cmd` job of dispatcher `main`.
fn scheduled(job_id: &str, schedule: Value) -> Value {
    json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": "true",
           "enabled": true, "owner": "tests", "description": "scheduled", "dispatcher": "main",
           "schedule": schedule})
}

/// A `lavasched` job for worker `worker`.
fn lavasched(job_id: &str, worker: &str, enabled: Value, parameters: Value) -> Value {
    json!({"job_id": job_id, "type": "lavasched", "worker": worker, "payload": null,
           "enabled": enabled, "owner": "tests", "description": "crontab builder",
           "parameters": parameters})
}

/// A lava block; on a non-aws suite backend the block also names it
/// (`LAVA_BACKEND=…`), among the env lines sorted by name.
fn block(env: &[String], lines: &[String]) -> String {
    let mut env = env.to_vec();
    if let spec @ lava_common::store::BackendSpec::Local(_) = lava_tests::suite_backend() {
        env.push(format!("LAVA_BACKEND={spec}"));
    }
    env.sort_by(|a, b| a.split('=').next().cmp(&b.split('=').next()));
    let mut text = format!("{START}\n");
    for line in env.iter().chain(lines) {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    text
}

fn line(schedule: &str, job_id: &str) -> String {
    format!("{schedule} {CALL} -- {job_id} >/dev/null")
}

/// The runs of a job recorded in the events table: (run id, statuses).
async fn runs_of(t: &TestRealm, job_id: &str) -> Vec<(String, Vec<String>)> {
    let items = match t.backend.tables.scan(&t.name, Table::Events).await {
        Ok(items) => items,
        Err(e) => panic!("cannot scan events: {e}"),
    };
    items
        .iter()
        .filter(|i| i.get("job_id").and_then(Value::as_str) == Some(job_id))
        .map(|i| {
            let run_id = i["run_id"].as_str().unwrap_or_default().to_string();
            let statuses = i
                .get("log")
                .and_then(Value::as_array)
                .map(|log| {
                    log.iter()
                        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            (run_id, statuses)
        })
        .collect()
}

#[tokio::test]
async fn lavasched_installs_the_block_and_keeps_the_rest() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(scheduled("etl/b", json!("30 2 * * *"))).await;
    t.put_job(scheduled(
        "etl/a",
        json!(["0 12 * * mon-fri", {"crontab": "0 14 * * 0,6", "from": "2024-01-01T00:00:00"}]),
    ))
    .await;
    t.put_job(scheduled("x/empty", json!(""))).await;
    let mut other = scheduled("x/other", json!("@daily"));
    other["dispatcher"] = json!("other");
    t.put_job(other).await;
    t.put_job(lavasched(
        "lava/sched",
        "core",
        json!(true),
        json!({"dispatcher": "main", "env": {"PATH": "/usr/bin:/bin", "CRON_TZ": "UTC"},
               "args": ["--check-dispatch"]}),
    ))
    .await;
    let c = Crontab::new();
    std::fs::write(c.file(), "MAILTO=ops\n0 1 * * * backup\n").unwrap_or_default();

    let run_id = t.dispatch_job("lava/sched", &[]).await;
    let out = c.run_worker(&t, &[]).await;
    assert_eq!(
        t.statuses("lava/sched", &run_id).await,
        ["starting", "running", "complete"],
        "{:#?}\n{}",
        t.log("lava/sched", &run_id).await,
        stderr(&out)
    );
    let realm = format!("LAVA_REALM={}", t.name);
    let want_block = block(
        &["CRON_TZ=UTC".into(), realm, "PATH=/usr/bin:/bin".into()],
        &[
            line("0 12 * * mon-fri", "etl/a"),
            line("0 14 * * 0,6", "etl/a"),
            line("30 2 * * *", "etl/b"),
        ],
    );
    let old = "MAILTO=ops\n0 1 * * * backup\n";
    assert_eq!(c.text(), format!("{old}{want_block}"));
    assert_eq!(c.installs(), 1);

    let info = &t.log("lava/sched", &run_id).await[2]["info"];
    let s3tmp = format!("{}/lava/sched/{run_id}", t.realm.s3_temp());
    assert_eq!(info["exit_status"], json!(0));
    assert_eq!(info["crontab.old"], json!(format!("{s3tmp}/crontab.old")));
    assert_eq!(info["crontab.new"], json!(format!("{s3tmp}/crontab.new")));
    assert_eq!(t.object(&format!("{s3tmp}/crontab.old")).await, old);
    assert_eq!(t.object(&format!("{s3tmp}/crontab.new")).await, c.text());
    let diff: Vec<&str> = info["crontab.diff"]
        .as_array()
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // One line of context, then the lines of the block: eight, plus the
    // LAVA_BACKEND line on a non-aws backend.
    let block_lines = c.text().lines().count() - 2;
    let hunk = format!("@@ -2 +2,{} @@\n", block_lines + 1);
    assert_eq!(
        diff[..5],
        [
            "--- Old\n",
            "+++ New\n",
            hunk.as_str(),
            " 0 1 * * * backup",
            "+#### Lava Schedules Start ####"
        ]
    );
    assert_eq!(diff.len(), 4 + block_lines, "{diff:?}");
    assert!(diff[3..].iter().all(|l| !l.ends_with('\n')), "{diff:?}");

    // Nothing changed: nothing installed, nothing uploaded.
    let again = t.dispatch_job("lava/sched", &[]).await;
    c.run_worker(&t, &[]).await;
    t.assert_statuses("lava/sched", &again, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        t.log("lava/sched", &again).await[2]["info"],
        json!({"exit_status": 0, "error": null})
    );
    assert_eq!(c.installs(), 1);

    // No crontab before: no crontab.old.
    let fresh = Crontab::new();
    let first = t.dispatch_job("lava/sched", &[]).await;
    fresh.run_worker(&t, &[]).await;
    let info = &t.log("lava/sched", &first).await[2]["info"];
    assert!(info.get("crontab.old").is_none(), "{info}");
    assert!(info["crontab.new"].is_string(), "{info}");
    assert_eq!(fresh.text(), want_block);
}

#[tokio::test]
async fn lavasched_skips_invalid_entries_and_fails_naming_them() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(scheduled("bad/minute", json!("61 * * * *")))
        .await;
    t.put_job(scheduled(
        "mixed",
        json!(["0 1 * * *", "0 0 L * *", "0 4 * * *"]),
    ))
    .await;
    t.put_job(scheduled("good", json!("@daily"))).await;
    t.put_job(lavasched(
        "lava/sched",
        "core",
        json!(true),
        json!({"dispatcher": ["main"]}),
    ))
    .await;
    let c = Crontab::new();
    let run_id = t.dispatch_job("lava/sched", &[]).await;
    c.run_worker(&t, &[]).await;
    t.assert_statuses("lava/sched", &run_id, &["starting", "running", "failed"])
        .await;
    let info = &t.log("lava/sched", &run_id).await[2]["info"];
    let error = info["error"].as_str().unwrap_or_default();
    for want in [
        "Skipped 2 bad schedule entries (the rest is installed): ",
        r#"Job "bad/minute": Bad schedule entry 1 "61 * * * *": minute 61 out of range 0-59"#,
        r#"Job "mixed": Bad schedule entry 2 "0 0 L * *": "#,
    ] {
        assert!(error.contains(want), "missing {want:?} in {error}");
    }
    let data = &info["error_data"];
    assert_eq!(data["exit_status"], json!(0));
    assert!(data["crontab.new"].is_string(), "{data}");
    assert_eq!(data["skipped"].as_array().map(Vec::len), Some(2), "{data}");
    let realm = format!("LAVA_REALM={}", t.name);
    assert_eq!(
        c.text(),
        block(
            &[realm],
            &[
                line("@daily", "good"),
                line("0 1 * * *", "mixed"),
                line("0 4 * * *", "mixed"),
            ]
        )
    );
}

#[tokio::test]
async fn lavasched_parameters_are_checked() {
    let t = TestRealm::new(&["core"]).await;
    let cases = [
        (
            "extra",
            json!({"dispatcher": "main", "vars": {}, "jinja": false}),
            "Bad job parameters: Unexpected keys: jinja, vars",
        ),
        (
            "missing",
            json!({"env": {}}),
            "Bad job parameters: Missing keys: dispatcher",
        ),
        (
            "numbers",
            json!({"dispatcher": "main", "args": [5]}),
            "Bad job parameters: parameters.args: 5 is not text",
        ),
    ];
    let c = Crontab::new();
    let mut runs = Vec::new();
    for (id, parameters, _) in &cases {
        t.put_job(lavasched(id, "core", json!(true), parameters.clone()))
            .await;
        runs.push(t.dispatch_job(id, &[]).await);
    }
    c.run_worker(&t, &[]).await;
    for ((id, _, want), run_id) in cases.iter().zip(&runs) {
        let log = t.log(id, run_id).await;
        assert_eq!(
            log.last().map(|e| e["status"].clone()),
            Some(json!("failed"))
        );
        assert_eq!(log[2]["info"]["error"], json!(want), "{id}");
    }
    assert_eq!(c.installs(), 0);
}

#[tokio::test]
async fn jump_start_dispatches_enabled_lavasched_jobs_of_this_worker() {
    let t = TestRealm::new(&["core", "other"]).await;
    t.put_job(scheduled("etl/a", json!("@hourly"))).await;
    let params = json!({"dispatcher": "main"});
    t.put_job(lavasched("sched/on", "core", json!(true), params.clone()))
        .await;
    t.put_job(lavasched(
        "sched/text",
        "core",
        json!("true"),
        params.clone(),
    ))
    .await;
    t.put_job(lavasched("sched/off", "core", json!(false), params.clone()))
        .await;
    t.put_job(lavasched(
        "sched/unset",
        "core",
        Value::Null,
        params.clone(),
    ))
    .await;
    t.put_job(lavasched(
        "sched/theirs",
        "other",
        json!(true),
        params.clone(),
    ))
    .await;
    t.put_cmd_job("not/sched", "core").await;
    let c = Crontab::new();
    let out = output(
        c.worker(&t)
            .arg("--jump-start")
            .env("LAVA_JUMPSTART_DELAY", "0"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = runs_of(&t, "sched/on").await;
    assert_eq!(runs.len(), 1, "{runs:?}\n{}", stderr(&out));
    assert_eq!(
        runs[0].1,
        ["starting", "running", "complete"],
        "{:#?}\n{}",
        t.log("sched/on", &runs[0].0).await,
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "Jumpstart: Dispatched sched/on to core (run {}, delay 0s)",
            runs[0].0
        )),
        "{}",
        stderr(&out)
    );
    for id in [
        "sched/text",
        "sched/off",
        "sched/unset",
        "sched/theirs",
        "not/sched",
    ] {
        assert!(runs_of(&t, id).await.is_empty(), "{id} was dispatched");
    }
    assert!(
        t.drain("other", 1, std::time::Duration::from_secs(1))
            .await
            .is_empty(),
        "nothing for the other fleet"
    );
    assert_eq!(
        c.text(),
        block(
            &[format!("LAVA_REALM={}", t.name)],
            &[line("@hourly", "etl/a")]
        )
    );

    // LAVA_JUMP_START works as the flag does; the suppression file stops it.
    let suppress = c.dir.path().join("nodispatch");
    std::fs::write(&suppress, "").unwrap_or_default();
    let out = output(
        c.worker(&t)
            .env("LAVA_JUMP_START", "true")
            .env("LAVA_JUMPSTART_DELAY", "0")
            .env("LAVA_NO_DISPATCH", &suppress),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "Jumpstart: suppressed by presence of {}",
            suppress.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(runs_of(&t, "sched/on").await.len(), 1, "suppressed");
    // Without the file it runs again.
    std::fs::remove_file(&suppress).unwrap_or_default();
    let out = output(
        c.worker(&t)
            .env("LAVA_JUMP_START", "true")
            .env("LAVA_JUMPSTART_DELAY", "0.9")
            .env("LAVA_NO_DISPATCH", &suppress),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(", delay 0s)"),
        "0.9 s truncates to 0: {}",
        stderr(&out)
    );
    assert_eq!(runs_of(&t, "sched/on").await.len(), 2);
}
