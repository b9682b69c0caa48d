//! Run containment in a delegated cgroup v2 subtree: the test makes a
//! cgroup under the cgroup2 mount, starts the worker in it (as systemd's
//! `Delegate=yes` would), and checks that a payload's stray that left both
//! its process group and its `LAVA_RUN_ID` dies with the run. The build
//! host runs the tests as root with cgroup2 mounted: without it this fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lava_tests::TestRealm;
use lava_tests::procs::{self, Background, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::process::Command;

/// The mount point of the cgroup2 file system, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/mountinfo: {e}"));
    mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2")
                .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .unwrap_or_else(|| panic!("no cgroup2 file system mounted: this test needs one"))
}

/// A cgroup of the test's own standing in for a delegated one. Dropping it
/// SIGKILLs, by pid, the processes still in it (all started by the test)
/// and removes it.
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn new() -> Self {
        let dir = cgroup2_mount().join(lava_tests::unique("lava-it-cgroup"));
        if let Err(e) = std::fs::create_dir(&dir) {
            panic!(
                "cannot create the cgroup {}: {e} (this test needs root and a writable cgroup2 mount)",
                dir.display()
            );
        }
        Self { dir }
    }

    /// Sub-cgroups by name.
    fn children(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pids in a cgroup.
    fn procs(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `cmd` started inside this cgroup: a shell moves itself in, then
    /// execs the command.
    fn command(&self, cmd: &Command) -> Command {
        let std = cmd.as_std();
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(self.dir.join("cgroup.procs"))
            .arg(std.get_program())
            .args(std.get_args());
        for (key, value) in std.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped.kill_on_drop(true);
        wrapped
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let mut dirs: Vec<PathBuf> = self.children().iter().map(|c| self.dir.join(c)).collect();
        dirs.push(self.dir.clone());
        for dir in &dirs {
            for pid in Self::procs(dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        // Empty once the killed have exited; until then rmdir says EBUSY.
        for dir in &dirs {
            let mut tries = 0;
            while let Err(e) = std::fs::remove_dir(dir) {
                tries += 1;
                if tries == 250 {
                    eprintln!("cannot remove the test cgroup {}: {e}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The payload starts a stray that leaves its group and clears
/// `LAVA_RUN_ID` (the stray writes its own pid), then, once the stray is on
/// its own, does `$THEN`.
const ESCAPER: &str = r#"#!/bin/sh
env -u LAVA_RUN_ID setsid sh -c 'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 300' "$STRAY" >/dev/null 2>&1 &
while [ ! -s "$STRAY" ]; do sleep 0.05; done
eval "$THEN"
"#;

/// Runs the escaper (its payload ending with `then`, within `timeout`) on
/// a worker started in a cgroup of its own, until the run's log holds
/// `status`; checks that nothing of the run is left and that the worker
/// kept to its own leaf. Returns the run's log.
async fn escape(then: &str, timeout: &str, status: &str) -> Vec<serde_json::Value> {
    let cgroup = TestCgroup::new();
    let t = TestRealm::new(&["core"]).await;
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = scratch.path().join("escaper.sh");
    std::fs::write(&script, ESCAPER).unwrap_or_else(|e| panic!("{e}"));
    let stray = scratch.path().join("stray");
    t.put_job(json!({
        "job_id": "escaper", "type": "cmd", "worker": "core",
        "payload": format!("sh {}", script.display()),
        "enabled": true, "owner": "tests", "description": "a payload whose stray hides",
        "parameters": {"timeout": timeout,
                       "env": {"STRAY": stray.display().to_string(), "THEN": then}}
    }))
    .await;
    let run_id = t.dispatch_job("escaper", &[]).await;

    let mut cmd = t.worker("core");
    cmd.env("LAVA_KILL_GRACE", "1s");
    let mut worker = Background::start(cgroup.command(&cmd));
    let stray_pid = procs::read_pids(&stray, 1).await[0];
    wait_for(
        &format!("the run to be {status}"),
        Duration::from_secs(120),
        || async {
            t.statuses("escaper", &run_id)
                .await
                .contains(&status.to_string())
                .then_some(())
        },
    )
    .await;
    t.assert_statuses("escaper", &run_id, &["starting", "running", status])
        .await;

    procs::wait_all_dead("the stray that hid from its run to die", &[stray_pid]).await;
    wait_for(
        "the run's cgroup leaf to be removed",
        Duration::from_secs(10),
        || async {
            let leaves: Vec<String> = cgroup
                .children()
                .into_iter()
                .filter(|c| c.starts_with("run-"))
                .collect();
            leaves.is_empty().then_some(())
        },
    )
    .await;
    let worker_leaf = cgroup.dir.join("worker");
    assert!(
        TestCgroup::procs(&worker_leaf).contains(&worker.pid),
        "the worker is not in its own leaf {}: {:?}; its log:\n{}",
        worker_leaf.display(),
        cgroup.children(),
        worker.log()
    );
    assert!(
        TestCgroup::procs(&cgroup.dir).is_empty(),
        "processes left in the delegated cgroup itself (no internal processes)"
    );
    assert!(worker.running(), "{}", worker.log());
    assert!(worker.stop().await.success(), "{}", worker.log());
    assert!(
        worker.log().contains("a cgroup v2 leaf per run"),
        "{}",
        worker.log()
    );
    t.log("escaper", &run_id).await
}

#[tokio::test]
async fn in_a_delegated_cgroup_nothing_of_a_run_survives_it() {
    escape("exit 0", "10m", "complete").await;
}

#[tokio::test]
async fn in_a_delegated_cgroup_a_timeout_leaves_nothing_either() {
    let log = escape("exec sleep 300", "2s", "failed").await;
    assert_eq!(
        log[2]["info"]["error"],
        json!("Timed out after 2.0 seconds"),
        "{log:?}"
    );
}
