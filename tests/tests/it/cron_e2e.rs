//! Real cron end to end (issue #5): `lava-crontab sync` installs a block
//! with the real crontab(1) for a Linux user made for the test, the cron
//! daemon fires `lava-dispatch` at the start of a minute, and our worker
//! runs the job. Needs root, `useradd`/`userdel`, `runuser` and Debian's
//! `cron` (.ci/apt-packages): under CI (`CI=true`) a missing one fails the
//! test; elsewhere it says so and passes. Test names start with `cron_e2e_`:
//! `.config/nextest.toml` puts them in the serial `serial-cron` group.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use lava_common::store::Table;
use lava_tests::{TestRealm, bin, output, stderr, stdout};
use serde_json::{Value, json};
use tokio::process::Command;

/// How long to wait for cron to fire and the run to complete.
const WAIT: Duration = Duration::from_secs(150);

/// A Linux user made for the test; its crontab and home go with it.
struct TestUser {
    name: String,
}

impl TestUser {
    fn create() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("lava-e2e-{}", &id[..8]);
        let status = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "useradd -m {name} failed: {status:?}"
        );
        Self { name }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // userdel leaves the cron spool file behind.
        let _ = std::process::Command::new("crontab")
            .args(["-r", "-u", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::process::Command::new("userdel")
            .args(["-r", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// The cron daemon: one already running is used as it is; otherwise
/// `/usr/sbin/cron -f` is started and, at the end, that PID alone is killed.
struct CronDaemon {
    started: Option<Child>,
}

impl CronDaemon {
    fn ensure() -> Self {
        if let Some(pid) = running_cron() {
            eprintln!("using the cron daemon already running (pid {pid})");
            return Self { started: None };
        }
        match std::process::Command::new("/usr/sbin/cron")
            .arg("-f")
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => Self {
                started: Some(child),
            },
            Err(e) => panic!("cannot start /usr/sbin/cron -f (apt-get install cron): {e}"),
        }
    }
}

impl Drop for CronDaemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The PID of a running `cron` or `crond`, if any.
fn running_cron() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        matches!(comm.trim(), "cron" | "crond").then_some(pid)
    })
}

/// True when every directory above `path` can be searched, and `path`
/// itself run, by other users.
fn reachable_by_others(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
    mode(path).is_ok_and(|m| m & 0o005 == 0o005)
        && path
            .ancestors()
            .skip(1)
            .all(|dir| mode(dir).is_ok_and(|m| m & 0o001 != 0))
}

/// A binary the test user can run: the built one when reachable, else a
/// copy in `dir` (readable by all).
fn runnable(name: &str, dir: &Path) -> PathBuf {
    let built = bin(name);
    if reachable_by_others(&built) {
        return built;
    }
    let copy = dir.join(name);
    if let Err(e) = std::fs::copy(&built, &copy)
        .and_then(|_| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)))
    {
        panic!("cannot copy {} to {}: {e}", built.display(), copy.display());
    }
    copy
}

/// The statuses of every run of `job_id` in the events table.
async fn runs_of(t: &TestRealm, job_id: &str) -> Vec<Vec<String>> {
    let items = match t.backend.tables.scan(&t.name, Table::Events).await {
        Ok(items) => items,
        Err(e) => panic!("cannot scan events: {e}"),
    };
    items
        .iter()
        .filter(|i| i.get("job_id").and_then(Value::as_str) == Some(job_id))
        .map(|i| {
            i.get("log")
                .and_then(Value::as_array)
                .map(|log| {
                    log.iter()
                        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn cron_e2e_scheduled_job_runs() {
    let root = nix::unistd::Uid::effective().is_root();
    let cron = Path::new("/usr/sbin/cron").exists() && Path::new("/usr/bin/crontab").exists();
    if !lava_tests::prerequisite(
        root && cron,
        &format!(
            "the real-cron test needs root (is root: {root}) and Debian's cron \
             (installed: {cron}; apt-get install cron, .ci/apt-packages lists it)"
        ),
    ) {
        return;
    }
    let t = TestRealm::new(&["core"]).await;
    let job_id = "e2e/tick";
    t.put_job(
        json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": "true",
                     "enabled": true, "owner": "tests", "description": "fired by cron",
                     "dispatcher": "e2e", "schedule": "* * * * *"}),
    )
    .await;

    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot make a temporary directory: {e}"),
    };
    if let Err(e) = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)) {
        panic!("cannot open up {}: {e}", dir.path().display());
    }
    let dispatch = runnable("lava-dispatch", dir.path());
    let crontab_tool = runnable("lava-crontab", dir.path());
    let user = TestUser::create();

    // The env lines cron gives lava-dispatch: the emulator and its keys.
    let aws: Vec<(&str, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ]
    .into_iter()
    .map(|name| (name, std::env::var(name).unwrap_or_default()))
    .collect();
    let mut lines: Vec<(&str, String)> = aws.clone();
    lines.push(("AWS_EC2_METADATA_DISABLED", "true".into()));
    lines.push(("PATH", "/usr/bin:/bin".into()));
    // Whatever the host's suppression file says, this test dispatches.
    let no_dispatch = dir.path().join("no-such-file");
    lines.push(("LAVA_NO_DISPATCH", no_dispatch.display().to_string()));

    let mut sync = Command::new("runuser");
    sync.args(["-u", &user.name, "--", "env", "-i"])
        .arg(format!("HOME=/home/{}", user.name))
        .arg("PATH=/usr/bin:/bin")
        .arg(format!("LAVA_DISPATCHER={}", dispatch.display()))
        .args(aws.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(&crontab_tool)
        .args(["sync", "--realm", &t.name, "--dispatcher", "e2e"]);
    for (name, value) in &lines {
        sync.arg("--env").arg(format!("{name}={value}"));
    }
    sync.current_dir(dir.path()).kill_on_drop(true);
    let out = output(&mut sync).await;
    assert!(
        out.status.success(),
        "lava-crontab sync as {}: {}",
        user.name,
        stderr(&out)
    );
    let listed = output(Command::new("crontab").args(["-l", "-u", &user.name])).await;
    let crontab = stdout(&listed);
    let want = format!(
        "* * * * * {} --worker core --check-dispatch --level warning -- {job_id} >/dev/null\n",
        dispatch.display()
    );
    assert!(crontab.contains(&want), "{crontab}");

    let _cron = CronDaemon::ensure();
    let log_path = dir.path().join("worker.log");
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => panic!("cannot create {}: {e}", log_path.display()),
    };
    let mut worker = match t
        .worker("core")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot start the worker: {e}"),
    };

    let deadline = tokio::time::Instant::now() + WAIT;
    let mut runs = Vec::new();
    while tokio::time::Instant::now() < deadline {
        runs = runs_of(&t, job_id).await;
        if runs.iter().any(|r| r.iter().any(|s| s == "complete")) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // SIGTERM to the worker's PID (a graceful drain), SIGKILL if it lingers.
    if let Some(pid) = worker.id() {
        let _ = output(Command::new("kill").args(["-TERM", &pid.to_string()])).await;
    }
    if tokio::time::timeout(Duration::from_secs(20), worker.wait())
        .await
        .is_err()
    {
        let _ = worker.start_kill();
        let _ = worker.wait().await;
    }
    let worker_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        runs.iter().any(|r| r.iter().any(|s| s == "complete")),
        "no complete run of {job_id} within {WAIT:?}: runs {runs:?}\ncrontab:\n{crontab}\nworker log:\n{worker_log}"
    );
}
