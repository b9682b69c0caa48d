//! `lava-crontab` with a file-backed stand-in for crontab(1)
//! (`tests/fixtures/fake-crontab`): generated crontabs compared whole,
//! merging into foreign crontabs, validation, quoting run through `sh`,
//! windows and zones, `next`, and `sync` against the emulator.

use std::path::{Path, PathBuf};
use std::process::Output;

use lava_tests::{TestRealm, bin, lava, output, stderr, stdout};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

const START: &str = "#### Lava Schedules Start ####";
const END: &str = "#### Lava Schedules End ####";
/// The dispatcher path the snapshot tests set through `LAVA_DISPATCHER`.
const DISPATCHER: &str = "/usr/bin/lava-dispatch";
/// What every line runs, with the default flags.
const CALL: &str = "/usr/bin/lava-dispatch --worker core --check-dispatch --level warning";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A crontab of its own (in a temporary directory) and the commands that use it.
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

    /// Starts with `text` as the current crontab.
    fn with(text: &str) -> Self {
        let c = Self::new();
        write(&c.file(), text);
        c
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("crontab")
    }

    /// The installed crontab ("" when none).
    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }

    /// How many times a crontab was installed.
    fn installs(&self) -> usize {
        let path = self.dir.path().join("crontab.installs");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Writes job items as JSON lines and returns the file.
    fn jobs_file(&self, jobs: &[Value]) -> PathBuf {
        let path = self.dir.path().join("jobs.jsonl");
        let text: String = jobs.iter().map(|j| format!("{j}\n")).collect();
        write(&path, &text);
        path
    }

    /// `lava-crontab <args>` using this crontab, the host zone UTC, and
    /// `LAVA_DISPATCHER` set to [`DISPATCHER`].
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = lava("lava-crontab");
        cmd.args(args)
            .env("LAVA_CRONTAB_CMD", fixture("fake-crontab"))
            .env("FAKE_CRONTAB_FILE", self.file())
            .env("LAVA_DISPATCHER", DISPATCHER)
            .env("TZ", "UTC");
        if args.contains(&"--jobs-file") {
            // No table is read: the block is the same whatever the suite's backend.
            cmd.env_remove("LAVA_BACKEND");
        }
        cmd
    }

    /// `lava-crontab <sub> --realm prod --jobs-file <jobs> <args>`.
    async fn run_file(&self, sub: &str, jobs: &[Value], args: &[&str]) -> Output {
        let file = self.jobs_file(jobs);
        let file = file.to_string_lossy().into_owned();
        let mut all = vec![sub, "--realm", "prod", "--jobs-file", &file];
        all.extend_from_slice(args);
        output(&mut self.cmd(&all)).await
    }
}

fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fn job(id: &str, schedule: Value) -> Value {
    json!({"job_id": id, "worker": "core", "type": "cmd", "payload": "true",
           "dispatcher": "main", "schedule": schedule})
}

/// A whole block from env lines and schedule lines.
fn block(env: &[&str], lines: &[String]) -> String {
    let mut text = format!("{START}\n");
    for line in env.iter().copied().chain(lines.iter().map(String::as_str)) {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    text
}

/// A schedule line with the default call.
fn line(schedule: &str, job_id: &str) -> String {
    format!("{schedule} {CALL} -- {job_id} >/dev/null")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

#[tokio::test]
async fn spec_example_block() {
    let c = Crontab::new();
    let jobs = [
        job("lava/sched-syd", json!("0-59/15 * * * *")),
        job("etl/load-sales", json!("30 2 * * *")),
    ];
    let mut cmd = c.cmd(&[]);
    let file = c.jobs_file(&jobs);
    cmd.args(["show", "--realm", "prod", "--jobs-file"])
        .env_remove("LAVA_BACKEND")
        .arg(&file)
        .args(["--env", "PATH=/usr/local/bin:/bin:/usr/bin"])
        .args(["--env", "CRON_TZ=Australia/Sydney"])
        .args(["--arg", "--check-dispatch"])
        .env("LAVA_DISPATCHER", "/usr/local/bin/lava-dispatcher");
    let out = output(&mut cmd).await;
    ok(&out);
    let want = "\
#### Lava Schedules Start ####
CRON_TZ=Australia/Sydney
LAVA_REALM=prod
PATH=/usr/local/bin:/bin:/usr/bin
0-59/15 * * * * /usr/local/bin/lava-dispatcher --worker core --check-dispatch --level warning -- lava/sched-syd >/dev/null
30 2 * * * /usr/local/bin/lava-dispatcher --worker core --check-dispatch --level warning -- etl/load-sales >/dev/null
#### Lava Schedules End ####
";
    assert_eq!(stdout(&out), want);
    assert_eq!(c.installs(), 0, "show installs nothing");
}

#[tokio::test]
async fn every_schedule_form() {
    let c = Crontab::new();
    let jobs = [
        job("string", json!("0 12 * * 1-5")),
        job("names", json!("0 12 * * mon-fri")),
        job("nick", json!("@daily")),
        job(
            "inside",
            json!({"crontab": "1 1 * * *", "from": "2025-01-01", "to": "2025-12-31T23:59:59"}),
        ),
        job(
            "before",
            json!({"crontab": "2 2 * * *", "from": "2025-07-01"}),
        ),
        job(
            "after",
            json!({"crontab": "3 3 * * *", "to": "2025-05-31T23:59:59"}),
        ),
        job(
            "excluded",
            json!({"crontab": "4 4 * * *", "from": "2025-12-01", "to": "2025-01-31"}),
        ),
        job(
            "exclusion-open",
            json!({"crontab": "5 5 * * *", "from": "2025-06-01T00:00:00", "to": "2025-05-01"}),
        ),
        job(
            "mixed",
            json!(["0 6 * jan-mar *", {"crontab": "0 7 1 * *", "from": "2024-01-01T00:00:00"},
                            {"crontab": "0 8 1 * *", "to": "2024-01-01"}, "@hourly"]),
        ),
        job("unscheduled", json!(null)),
        job("empty", json!("")),
        job("dashes", json!("--")),
        json!({"job_id": "absent", "worker": "core", "dispatcher": "main"}),
    ];
    let out = c
        .run_file("show", &jobs, &["--now", "2025-06-15T12:00:00Z"])
        .await;
    ok(&out);
    let want = block(
        &["LAVA_REALM=prod"],
        &[
            line("0 12 * * 1-5", "string"),
            line("0 12 * * mon-fri", "names"),
            line("@daily", "nick"),
            line("1 1 * * *", "inside"),
            line("5 5 * * *", "exclusion-open"),
            line("0 6 * jan-mar *", "mixed"),
            line("0 7 1 * *", "mixed"),
            line("@hourly", "mixed"),
        ],
    );
    assert_eq!(stdout(&out), want);
    assert_eq!(stderr(&out), "", "blank schedules are skipped silently");
}

#[tokio::test]
async fn line_shape_and_env() {
    let c = Crontab::new();
    let jobs = [job("j", json!("@daily"))];
    // --check-dispatch once, --level warning added, args before the job id.
    let out = c
        .run_file(
            "show",
            &jobs,
            &[
                "--arg",
                "--check-dispatch",
                "--arg",
                "-d",
                "--arg",
                "5m",
                "--env",
                "ZED=last",
                "--env",
                "ALPHA=first value %x",
                "--env",
                "LAVA_REALM=ignored",
            ],
        )
        .await;
    ok(&out);
    assert_eq!(
        stdout(&out),
        block(
            &["ALPHA=first value %x", "LAVA_REALM=prod", "ZED=last"],
            &[format!("@daily {CALL} -d 5m -- j >/dev/null")]
        )
    );
    // A level in the args replaces --level warning.
    for level in [
        &["--arg", "--level", "--arg", "info"][..],
        &["--arg=--level=debug"],
        &["--arg", "-l", "--arg", "info"],
    ] {
        let out = c.run_file("show", &jobs, level).await;
        ok(&out);
        let text = stdout(&out);
        assert!(!text.contains("--level warning"), "{text}");
        assert_eq!(text.matches("--check-dispatch").count(), 1, "{text}");
    }
    // A backend other than aws gets a LAVA_BACKEND line.
    let out = c
        .run_file("show", &jobs, &["--backend", "local:/var/lib/lava"])
        .await;
    ok(&out);
    assert!(
        stdout(&out).starts_with(&format!(
            "{START}\nLAVA_BACKEND=local:/var/lib/lava\nLAVA_REALM=prod\n"
        )),
        "{}",
        stdout(&out)
    );
    // Env values and arguments that would break the line are refused: nothing is built.
    for bad in [
        &["--env", "X=a\nb"][..],
        &["--arg", "a\rb"],
        &["--env", "BAD NAME=x"],
    ] {
        let out = c.run_file("sync", &jobs, bad).await;
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", stderr(&out));
        assert_eq!(c.installs(), 0);
    }
}

#[tokio::test]
async fn dispatcher_defaults_to_lava_dispatch_beside_the_binary() {
    let c = Crontab::new();
    let mut cmd = c.cmd(&[]);
    let file = c.jobs_file(&[job("j", json!("@daily"))]);
    cmd.env_remove("LAVA_DISPATCHER")
        .args(["show", "--realm", "prod", "--jobs-file"])
        .env_remove("LAVA_BACKEND")
        .arg(&file);
    let out = output(&mut cmd).await;
    ok(&out);
    let beside = bin("lava-dispatch");
    assert!(
        stdout(&out).contains(&format!("\n@daily {} --worker core ", beside.display())),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn foreign_lines_kept_and_unchanged_crontab_not_rewritten() {
    let head =
        "# my jobs\r\nMAILTO=ops@example.com\n0 1 * * *   /usr/local/bin/backup  --all %x\n\n";
    let tail = "\t# after lava\n30 4 * * 0 /bin/true";
    let old_block = block(&["LAVA_REALM=prod"], &[line("@hourly", "old/job")]);
    let c = Crontab::with(&format!("{head}{old_block}{tail}"));
    let jobs = [job("new/job", json!("@daily"))];
    let out = c.run_file("sync", &jobs, &[]).await;
    ok(&out);
    let new_block = block(&["LAVA_REALM=prod"], &[line("@daily", "new/job")]);
    // Byte for byte, except the final newline cron needs.
    assert_eq!(c.text(), format!("{head}{new_block}{tail}\n"));
    assert_eq!(c.installs(), 1);
    // Again: nothing to do, nothing written.
    let out = c.run_file("sync", &jobs, &[]).await;
    ok(&out);
    assert_eq!(c.installs(), 1, "unchanged crontab is not reinstalled");
    let out = c.run_file("diff", &jobs, &[]).await;
    ok(&out);
    assert_eq!(stdout(&out), "");
    // A crontab with no block gets it appended.
    let c = Crontab::with("0 1 * * * backup\n");
    ok(&c.run_file("sync", &jobs, &[]).await);
    assert_eq!(c.text(), format!("0 1 * * * backup\n{new_block}"));
    // No crontab at all.
    let c = Crontab::new();
    ok(&c.run_file("sync", &jobs, &[]).await);
    assert_eq!(c.text(), new_block);
}

#[tokio::test]
async fn diff_shows_the_change() {
    let c = Crontab::with(&format!(
        "a\n{}",
        block(&["LAVA_REALM=prod"], &[line("@hourly", "x")])
    ));
    let out = c.run_file("diff", &[job("x", json!("@daily"))], &[]).await;
    ok(&out);
    assert_eq!(
        stdout(&out),
        format!(
            "--- Old\n+++ New\n@@ -3,3 +3,3 @@\n LAVA_REALM=prod\n-{}\n+{}\n {END}\n",
            line("@hourly", "x"),
            line("@daily", "x")
        )
    );
    assert_eq!(c.installs(), 0);
}

#[tokio::test]
async fn start_marker_without_end_installs_nothing() {
    let old = format!("0 1 * * * backup\n{START}\nLAVA_REALM=prod\n@hourly old\n");
    let c = Crontab::with(&old);
    let out = c.run_file("sync", &[job("j", json!("@daily"))], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no \"#### Lava Schedules End ####\" line"),
        "{}",
        stderr(&out)
    );
    assert_eq!(c.text(), old);
    assert_eq!(c.installs(), 0);
}

#[tokio::test]
async fn another_realms_block_needs_force() {
    let old = format!(
        "x\n{}",
        block(&["LAVA_REALM=test"], &[line("@hourly", "t")])
    );
    let c = Crontab::with(&old);
    let jobs = [job("j", json!("@daily"))];
    let out = c.run_file("sync", &jobs, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("for realm test"), "{}", stderr(&out));
    assert_eq!((c.text(), c.installs()), (old, 0));
    let out = c.run_file("sync", &jobs, &["--force"]).await;
    ok(&out);
    assert_eq!(
        c.text(),
        format!("x\n{}", block(&["LAVA_REALM=prod"], &[line("@daily", "j")]))
    );
}

#[tokio::test]
async fn invalid_schedules_are_skipped_and_reported() {
    let c = Crontab::new();
    let jobs = [
        job("bad/minute", json!("61 * * * *")),
        job("bad/fields", json!("* * * *")),
        job("bad/last", json!("0 0 L * *")),
        job("bad/word", json!("bad")),
        job(
            "bad/key",
            json!({"crontab": "0 3 * * *", "to:": "2030-01-01"}),
        ),
        job(
            "mixed",
            json!(["0 1 * * *", "0 0 * * 5#2", {"crontab": "0 2 * * *", "from": "someday"}, "0 4 * * *"]),
        ),
        job("good", json!("@daily")),
    ];
    let out = c.run_file("sync", &jobs, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for want in [
        r#"Job "bad/minute": Bad schedule entry 1 "61 * * * *": minute 61 out of range 0-59"#,
        r#"Job "bad/fields": Bad schedule entry 1 "* * * *": expected 5 fields, got 4"#,
        r#"Job "bad/last": Bad schedule entry 1 "0 0 L * *": "#,
        r#"Job "bad/word": Bad schedule entry 1 "bad": expected 5 fields, got 1"#,
        r#"Job "bad/key": Bad schedule entry 1 "{\"crontab\":\"0 3 * * *\",\"to:\":\"2030-01-01\"}": Unexpected keys: to:"#,
        r#"Job "mixed": Bad schedule entry 2 "0 0 * * 5#2": "#,
        r#"Job "mixed": Bad schedule entry 3 "#,
        r#"Bad "from"": "#,
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The rest is installed.
    assert_eq!(
        c.text(),
        block(
            &["LAVA_REALM=prod"],
            &[
                line("0 1 * * *", "mixed"),
                line("0 4 * * *", "mixed"),
                line("@daily", "good")
            ]
        )
    );
    assert_eq!(c.installs(), 1);
}

/// What cron does to a command field (cronie and Debian's cron): `\%`
/// becomes `%`; a bare `%` ends the command (the rest becomes stdin).
fn cron_command(field: &str) -> (String, Option<String>) {
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in field.char_indices() {
        if escaped {
            if c != '%' {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '%' {
            return (out, Some(field[i + 1..].to_string()));
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    (out, None)
}

#[tokio::test]
async fn job_ids_cannot_inject_commands() {
    let ids = [
        "a;touch pwned",
        "$(touch pwned)",
        "`touch pwned`",
        "50%off",
        "it's",
        "'; touch pwned; '",
        "\"$(touch pwned)\"",
        "x >pwned",
        "a\\b",
        "100%%",
        "%",
        "a b  c",
        "é/ü",
        "",
    ];
    let recorder = fixture("argv-recorder");
    for id in ids {
        let c = Crontab::new();
        let mut cmd = c.cmd(&[]);
        let file = c.jobs_file(&[job(id, json!("* * * * *"))]);
        cmd.args(["show", "--realm", "prod", "--jobs-file"])
            .env_remove("LAVA_BACKEND")
            .arg(&file)
            .env("LAVA_DISPATCHER", &recorder);
        let out = output(&mut cmd).await;
        ok(&out);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "one schedule line for {id:?}:\n{text}");
        let field = lines[2]
            .strip_prefix("* * * * * ")
            .unwrap_or_else(|| panic!("bad line {:?}", lines[2]));
        let (command, stdin) = cron_command(field);
        assert_eq!(stdin, None, "a bare % in {field:?}");
        let sandbox = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let record = sandbox.path().join("argv");
        let run = output(
            Command::new("sh")
                .arg("-c")
                .arg(&command)
                .current_dir(sandbox.path())
                .env("RECORD_FILE", &record),
        )
        .await;
        ok(&run);
        let argv = std::fs::read_to_string(&record).unwrap_or_default();
        let argv: Vec<&str> = argv.lines().collect();
        assert_eq!(argv.last().copied(), Some(id), "{command}");
        assert_eq!(
            argv,
            [
                "--worker",
                "core",
                "--check-dispatch",
                "--level",
                "warning",
                "--",
                id
            ],
            "{command}"
        );
        let entries: Vec<String> = std::fs::read_dir(sandbox.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(entries, ["argv"], "side effects of {command}");
    }
}

#[tokio::test]
async fn control_characters_in_job_ids_are_rejected() {
    let c = Crontab::new();
    let jobs = [
        job("a\nb", json!("@daily")),
        job("c\rd", json!("@daily")),
        job("e\\%f", json!("@daily")),
        job("fine", json!("@daily")),
    ];
    let out = c.run_file("sync", &jobs, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(r#"Job "a\nb": bad job id"#), "{err}");
    assert!(err.contains(r#"Job "c\rd": bad job id"#), "{err}");
    assert!(err.contains(r#"Job "e\\%f": bad job id"#), "{err}");
    assert_eq!(
        c.text(),
        block(&["LAVA_REALM=prod"], &[line("@daily", "fine")])
    );
}

#[tokio::test]
async fn windows_at_their_edges() {
    let c = Crontab::new();
    let jobs = [
        job(
            "from-now",
            json!({"crontab": "1 * * * *", "from": "2025-03-01T00:30:00"}),
        ),
        job(
            "to-now",
            json!({"crontab": "2 * * * *", "to": "2025-03-01T00:30:00"}),
        ),
        job(
            "to-before",
            json!({"crontab": "3 * * * *", "to": "2025-03-01T00:29:59"}),
        ),
        job(
            "from-after",
            json!({"crontab": "4 * * * *", "from": "2025-03-01T00:30:01"}),
        ),
    ];
    let out = c
        .run_file("show", &jobs, &["--now", "2025-03-01T00:30:00Z"])
        .await;
    ok(&out);
    assert_eq!(
        stdout(&out),
        block(
            &["LAVA_REALM=prod"],
            &[line("1 * * * *", "from-now"), line("2 * * * *", "to-now")]
        )
    );
}

#[tokio::test]
async fn windows_follow_cron_tz_or_the_host_zone() {
    // 00:30 UTC is 11:30 in Sydney (summer time, +11:00).
    let jobs = [
        job(
            "sydney-morning",
            json!({"crontab": "0 9 * * *", "from": "2025-03-01T11:00"}),
        ),
        job(
            "explicit-offset",
            json!({"crontab": "0 10 * * *", "from": "2025-03-01T11:00+11:00"}),
        ),
    ];
    let now = ["--now", "2025-03-01T00:30:00Z"];
    let c = Crontab::new();
    // Host UTC, no CRON_TZ: 11:00 UTC has not come yet.
    let out = c.run_file("show", &jobs, &now).await;
    ok(&out);
    assert_eq!(
        stdout(&out),
        block(
            &["LAVA_REALM=prod"],
            &[line("0 10 * * *", "explicit-offset")]
        )
    );
    // CRON_TZ=Australia/Sydney: 11:00 Sydney has passed.
    let mut args = now.to_vec();
    args.extend(["--env", "CRON_TZ=Australia/Sydney"]);
    let out = c.run_file("show", &jobs, &args).await;
    ok(&out);
    assert_eq!(
        stdout(&out),
        block(
            &["CRON_TZ=Australia/Sydney", "LAVA_REALM=prod"],
            &[
                line("0 9 * * *", "sydney-morning"),
                line("0 10 * * *", "explicit-offset")
            ]
        )
    );
    // The host zone counts when CRON_TZ is not set.
    let file = c.jobs_file(&jobs);
    let mut cmd = c.cmd(&[
        "show",
        "--realm",
        "prod",
        "--now",
        "2025-03-01T00:30:00Z",
        "--jobs-file",
    ]);
    cmd.arg(&file).env("TZ", "Australia/Sydney");
    let out = output(&mut cmd).await;
    ok(&out);
    assert!(
        stdout(&out).contains(&line("0 9 * * *", "sydney-morning")),
        "{}",
        stdout(&out)
    );
    // An unknown CRON_TZ is a usage error.
    let out = c
        .run_file("show", &jobs, &["--env", "CRON_TZ=Mars/Base"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let c = Crontab::new();
    for args in [
        &["sync", "--dispatcher", "main"][..],
        &["sync", "--realm", "prod"],
        &["sync", "--realm", "bad-realm", "--dispatcher", "main"],
        &[
            "sync",
            "--realm",
            "prod",
            "--dispatcher",
            "main",
            "--env",
            "NOEQUALS",
        ],
        &[
            "sync",
            "--realm",
            "prod",
            "--job",
            "j",
            "--dispatcher",
            "main",
        ],
        &[
            "show",
            "--realm",
            "prod",
            "--dispatcher",
            "main",
            "--now",
            "yesterday",
        ],
        &["frobnicate"],
    ] {
        let out = output(&mut c.cmd(args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(c.installs(), 0);
}

#[tokio::test]
async fn a_failing_install_is_an_error() {
    let c = Crontab::new();
    let file = c.jobs_file(&[job("j", json!("@daily"))]);
    let mut cmd = c.cmd(&["sync", "--realm", "prod", "--jobs-file"]);
    cmd.arg(&file).env("FAKE_CRONTAB_FAIL", "1");
    let out = output(&mut cmd).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not install the new crontab"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("errors in crontab file"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn sync_reads_the_dispatcher_index() {
    let t = TestRealm::new(&["core"]).await;
    let put = |id: &str, dispatcher: &str, schedule: Value| {
        let mut item = job(id, schedule);
        item["dispatcher"] = json!(dispatcher);
        t.put_job(item)
    };
    put("etl/b", "main", json!("30 2 * * *")).await;
    put(
        "etl/a",
        "main",
        json!(["0 12 * * mon-fri", {"crontab": "0 14 * * 0,6", "from": "2024-01-01T00:00:00"}]),
    )
    .await;
    put("x/other", "other", json!("@daily")).await;
    put("aux/c", "aux", json!("@hourly")).await;
    put("x/empty", "main", json!("")).await;
    put("x/dashes", "main", json!("--")).await;
    put("x/null", "main", json!(null)).await;
    t.put_job(json!({"job_id": "x/none", "worker": "core", "type": "cmd", "payload": "true", "dispatcher": "main"}))
        .await;
    let c = Crontab::with("MAILTO=ops\n");
    let out = output(&mut c.cmd(&[
        "sync",
        "--realm",
        &t.name,
        "--dispatcher",
        "main",
        "--dispatcher",
        "aux",
        "--env",
        "PATH=/usr/bin:/bin",
        "--arg",
        "--check-dispatch",
    ]))
    .await;
    ok(&out);
    let realm = format!("LAVA_REALM={}", t.name);
    // A crontab for a non-aws backend says which.
    let backend = match lava_tests::suite_backend() {
        spec @ lava_common::store::BackendSpec::Local(_) => Some(format!("LAVA_BACKEND={spec}")),
        lava_common::store::BackendSpec::Aws => None,
    };
    let env: Vec<&str> = backend
        .iter()
        .map(String::as_str)
        .chain([realm.as_str(), "PATH=/usr/bin:/bin"])
        .collect();
    let want = format!(
        "MAILTO=ops\n{}",
        block(
            &env,
            &[
                line("@hourly", "aux/c"),
                line("0 12 * * mon-fri", "etl/a"),
                line("0 14 * * 0,6", "etl/a"),
                line("30 2 * * *", "etl/b"),
            ]
        )
    );
    assert_eq!(c.text(), want);
    assert_eq!(c.installs(), 1);
    // Nothing changed in the table: nothing is installed.
    let out = output(&mut c.cmd(&[
        "sync",
        "--realm",
        &t.name,
        "--dispatcher",
        "aux",
        "--dispatcher",
        "main",
        "--env",
        "PATH=/usr/bin:/bin",
    ]))
    .await;
    ok(&out);
    assert_eq!(c.installs(), 1);

    // --job takes dispatchers, env and args from a lavasched job.
    t.put_job(json!({
        "job_id": "lava/sched", "type": "lavasched", "worker": "core", "payload": null,
        "parameters": {"dispatcher": ["other"], "env": {"CRON_TZ": "UTC"}, "args": ["-d", "1m"]}
    }))
    .await;
    let out = output(&mut c.cmd(&["sync", "--realm", &t.name, "--job", "lava/sched"])).await;
    ok(&out);
    assert_eq!(
        c.text(),
        format!(
            "MAILTO=ops\n{}",
            block(
                &["CRON_TZ=UTC"]
                    .into_iter()
                    .chain(backend.as_deref())
                    .chain([realm.as_str()])
                    .collect::<Vec<_>>(),
                &[format!("@daily {CALL} -d 1m -- x/other >/dev/null")]
            )
        )
    );
    let out = output(&mut c.cmd(&["sync", "--realm", &t.name, "--job", "no/such"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[tokio::test]
async fn next_prints_fire_times() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "n/x",
        json!(["0 12 * * mon-fri", {"crontab": "@daily", "from": "2030-01-01"}, "@reboot", "bad"]),
    ))
    .await;
    let c = Crontab::new();
    let args = [
        "next",
        "n/x",
        "--realm",
        &t.name,
        "-n",
        "3",
        "--now",
        "2025-01-03T00:00:00Z",
    ];
    let out = output(&mut c.cmd(&args)).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "entry 4 is bad: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(r#"Bad schedule entry 4 "bad""#),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "# entry 1: 0 12 * * mon-fri\n\
         2025-01-03T12:00:00+00:00\n2025-01-06T12:00:00+00:00\n2025-01-07T12:00:00+00:00\n\
         # entry 2: @daily (inactive now)\n\
         # entry 3: @reboot (at boot only)\n"
    );
    let mut cmd = c.cmd(&args);
    cmd.args(["--env", "CRON_TZ=Australia/Sydney"]);
    let out = output(&mut cmd).await;
    assert!(
        stdout(&out).starts_with(
            "# entry 1: 0 12 * * mon-fri\n\
             2025-01-03T12:00:00+11:00\n2025-01-06T12:00:00+11:00\n2025-01-07T12:00:00+11:00\n"
        ),
        "{}",
        stdout(&out)
    );
    let out = output(&mut c.cmd(&["next", "no/such", "--realm", &t.name])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
