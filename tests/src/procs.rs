//! Watching and signalling processes from the tests: a worker started in
//! the background with its log in a file, pids that must die, waits with
//! generous deadlines (never assertions on speed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Polls `check` every 200 ms until it returns `Some`, or panics with
/// `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// State letter and parent of a process (`None`: no such process).
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True while a process exists and is not a zombie (a zombie is dead, only
/// not yet reaped).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Zombie children of a process.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    children_in_state(parent, |state| state == 'Z')
}

/// Live (not zombie) children of a process.
pub fn children(parent: i32) -> Vec<i32> {
    children_in_state(parent, |state| state != 'Z' && state != 'X')
}

fn children_in_state(parent: i32, wanted: impl Fn(char) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(s, ppid)| wanted(s) && ppid == parent))
        .collect()
}

/// Waits until none of `pids` is alive (SIGKILL is delivered asynchronously).
pub async fn wait_all_dead(what: &str, pids: &[i32]) {
    wait_for(what, Duration::from_secs(30), || async {
        let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        left.is_empty().then_some(())
    })
    .await;
}

/// Reads the pids a payload wrote, one per line, once there are `n`.
pub async fn read_pids(file: &Path, n: usize) -> Vec<i32> {
    wait_for(
        &format!("{n} pids in {}", file.display()),
        Duration::from_secs(60),
        || async {
            let pids: Vec<i32> = std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            (pids.len() >= n).then_some(pids)
        },
    )
    .await
}

/// A program running in the background, its stderr going to a file.
pub struct Background {
    /// The process.
    pub child: Child,
    /// Its pid.
    pub pid: i32,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    /// Starts `cmd` with stdout and stderr to a log file.
    pub fn start(mut cmd: Command) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("log");
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let err = file.try_clone().unwrap_or_else(|e| panic!("{e}"));
        cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start: {e}"));
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no pid"));
        Self {
            child,
            pid,
            log,
            _dir: dir,
        }
    }

    /// What it has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid), signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to {}: {e}", self.pid));
    }

    /// True while it has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for its exit (60 s at most).
    pub async fn wait(&mut self) -> ExitStatus {
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("cannot wait for {}: {e}", self.pid),
            Err(_) => panic!(
                "process {} did not exit within 60 s; its log:\n{}",
                self.pid,
                self.log()
            ),
        }
    }

    /// Stops it with SIGTERM (if still running) and waits for it.
    pub async fn stop(&mut self) -> ExitStatus {
        if self.running() {
            self.signal(Signal::SIGTERM);
        }
        self.wait().await
    }
}
