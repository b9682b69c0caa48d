//! Running a payload program: its own process group, output captured to
//! files, a timeout that sends SIGTERM to the whole group and SIGKILL after
//! a grace period (the original sends SIGKILL at once, leaving no time to
//! clean up), and a kill of the group after it exits
//! so no background child survives the run. A
//! payload that left the group with `setsid` is found by the `LAVA_RUN_ID`
//! in its environment and killed too; the worker is a child subreaper and
//! reaps the orphans it inherits. In a delegated cgroup the payload also
//! runs in a cgroup leaf of its own, emptied when it ends ([`crate::cgroup`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lava_common::children;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::capture;
use crate::cgroup;

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// The whole environment of the child.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Capture files; `None` inherits the worker's (dev mode).
    pub capture: Option<(PathBuf, PathBuf)>,
    /// A file for stdin; `None`: `/dev/null`.
    pub stdin: Option<PathBuf>,
    /// Time limit.
    pub timeout: Duration,
    /// SIGTERM → SIGKILL grace.
    pub kill_grace: Duration,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exit status (negative: killed by that signal).
    Exited(i32),
    /// Killed after the time limit.
    TimedOut,
    /// Killed because the worker is shutting down.
    Interrupted,
}

/// The worker's request to stop running payloads: at the
/// drain deadline each group gets SIGTERM, then SIGKILL after the grace; on
/// a second signal, SIGKILL at once.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    soft: CancellationToken,
    hard: CancellationToken,
}

impl Interrupt {
    /// No interruption yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The drain deadline: SIGTERM, then SIGKILL after `KILL_GRACE`.
    pub fn deadline(&self) {
        self.soft.cancel();
    }

    /// A second signal: SIGKILL now.
    pub fn kill_now(&self) {
        self.hard.cancel();
        self.soft.cancel();
    }

    /// An interrupt of its own that also follows this one: the run's own,
    /// which the run's lease keeping fires when the lease is lost.
    pub fn child(&self) -> Self {
        Self {
            soft: self.soft.child_token(),
            hard: self.hard.child_token(),
        }
    }

    /// True once either has happened.
    pub fn is_interrupted(&self) -> bool {
        self.soft.is_cancelled()
    }

    /// Waits until either has happened.
    pub async fn interrupted(&self) {
        self.soft.cancelled().await;
    }
}

/// Runs a program to completion. Errors are failures to start it.
pub async fn run(spec: &ProcessSpec, interrupt: &Interrupt) -> std::io::Result<Ended> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command",
        ));
    };
    // Interrupted before it started (a drain, or the run's lease lost):
    // nothing is started, so nothing runs that another worker may run too.
    if interrupt.is_interrupted() {
        return Ok(Ended::Interrupted);
    }
    // A leaf of its own in a delegated cgroup; the guard kills and removes
    // it on every path, even a panic.
    let leaf = match cgroup::delegation() {
        Some(d) => Some(
            d.leaf(spec.env.get("LAVA_RUN_ID").map(String::as_str))
                .map_err(std::io::Error::other)?,
        ),
        None => None,
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .process_group(0)
        .kill_on_drop(true);
    match &spec.stdin {
        Some(path) => cmd.stdin(std::fs::File::open(path)?),
        None => cmd.stdin(Stdio::null()),
    };
    if let Some((out, err)) = &spec.capture {
        cmd.stdout(capture::create(out)?)
            .stderr(capture::create(err)?);
    }
    if let Some(leaf) = &leaf {
        leaf.enter_on_spawn(&mut cmd);
    }
    // Registered, so the orphan reaper never takes this child's zombie.
    let (mut child, _registration) = children::spawn(&mut cmd)?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    // Its strays carry its run id and job id: the in-process children of a
    // `dag` share their parent's run id and may run side by side.
    let run_id = spec.env.get("LAVA_RUN_ID").map(|run| Strays {
        run,
        job: spec.env.get("LAVA_JOB_ID").map(String::as_str),
    });
    // Biased towards the child's exit: a payload that has exited is
    // recorded as it ended, even when its time limit or the drain deadline
    // falls in the same instant.
    let ended = tokio::select! {
        biased;
        status = child.wait() => Ended::Exited(exit_code(status?)),
        () = tokio::time::sleep(spec.timeout) => Ended::TimedOut,
        () = interrupt.interrupted() => Ended::Interrupted,
    };
    if !matches!(ended, Ended::Exited(_)) && !interrupt.hard.is_cancelled() {
        if let Some(pgid) = pgid {
            signal_group(pgid, Signal::SIGTERM);
        }
        if let Some(strays) = run_id {
            signal_run_off_runtime(strays, Signal::SIGTERM).await;
        }
        tokio::select! {
            result = tokio::time::timeout(spec.kill_grace, child.wait()) => if result.is_err() {
                tracing::warn!(program = %program, "payload ignored SIGTERM; sending SIGKILL");
            },
            () = interrupt.hard.cancelled() => {}
        }
    }
    // Whatever happened, nothing of the group outlives the run.
    if let Some(pgid) = pgid {
        signal_group(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    if let Some(leaf) = leaf {
        leaf.remove().await;
    }
    if let Some(strays) = run_id {
        kill_run(strays).await;
    }
    reap_orphans_off_runtime().await;
    Ok(ended)
}

fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH (no such group) just means everything has already exited.
    let _ = killpg(pgid, signal);
}

/// What marks the processes of one payload: its run id and, when set, its
/// job id (`LAVA_RUN_ID`, `LAVA_JOB_ID` in their environment).
#[derive(Debug, Clone, Copy)]
struct Strays<'a> {
    run: &'a str,
    job: Option<&'a str>,
}

/// Sends a signal to every process left of a payload (by its environment).
fn signal_run(strays: Strays<'_>, signal: Signal) -> usize {
    let candidates = if SUBREAPER.load(Ordering::Relaxed) {
        descendants()
    } else {
        None
    };
    let mut wanted = vec![format!("LAVA_RUN_ID={}", strays.run)];
    wanted.extend(strays.job.map(|job| format!("LAVA_JOB_ID={job}")));
    let pids = matching(&wanted, candidates.unwrap_or_else(all_processes));
    for pid in &pids {
        let _ = kill(Pid::from_raw(*pid), signal);
    }
    pids.len()
}

/// [`signal_run`] on a blocking thread: it reads the environment of every
/// process on the host, which takes a while where there are many.
async fn signal_run_off_runtime(strays: Strays<'_>, signal: Signal) -> usize {
    let (run, job) = (strays.run.to_string(), strays.job.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        let strays = Strays {
            run: &run,
            job: job.as_deref(),
        };
        signal_run(strays, signal)
    })
    .await
    .unwrap_or(0)
}

/// [`reap_orphans`] on a blocking thread: it reads the status of every
/// process on the host.
async fn reap_orphans_off_runtime() -> usize {
    tokio::task::spawn_blocking(reap_orphans).await.unwrap_or(0)
}

/// SIGKILLs what is left of a run outside its group, until nothing is
/// (a process may fork while it is being killed).
async fn kill_run(strays: Strays<'_>) {
    for round in 0..50 {
        let n = signal_run_off_runtime(strays, Signal::SIGKILL).await;
        if n == 0 {
            return;
        }
        if round == 0 {
            tracing::warn!("killed {n} process(es) of the run that had left its process group");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::error!("processes of the run still alive after repeated SIGKILL");
}

/// Live processes (not zombies, not this one) whose environment holds
/// `LAVA_RUN_ID=<run_id>`, among this worker's descendants: a child
/// subreaper inherits every orphan of its payloads, so whatever a run left
/// behind is one of them. Where the kernel cannot list children, or the
/// worker is no subreaper, every process on the host is looked at.
pub fn processes_of_run(run_id: &str) -> Vec<i32> {
    let candidates = if SUBREAPER.load(Ordering::Relaxed) {
        descendants()
    } else {
        None
    };
    matching_run(run_id, candidates.unwrap_or_else(all_processes))
}

/// [`processes_of_run`] over every process on the host: what a dead
/// worker left of a run is nobody's descendant here.
pub fn processes_of_run_anywhere(run_id: &str) -> Vec<i32> {
    matching_run(run_id, all_processes())
}

/// SIGKILLs, on a blocking thread, the processes of a run that ran here
/// before under a worker that is gone; returns how many there were.
pub async fn kill_leftovers_of(run_id: &str) -> usize {
    let run_id = run_id.to_string();
    tokio::task::spawn_blocking(move || {
        let pids = processes_of_run_anywhere(&run_id);
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        pids.len()
    })
    .await
    .unwrap_or(0)
}

fn matching_run(run_id: &str, candidates: Vec<u32>) -> Vec<i32> {
    matching(&[format!("LAVA_RUN_ID={run_id}")], candidates)
}

/// The candidates whose environment holds every one of `wanted`.
fn matching(wanted: &[String], candidates: Vec<u32>) -> Vec<i32> {
    let me = std::process::id();
    candidates
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            // A zombie's environment reads empty; an unreadable one is not ours.
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                wanted
                    .iter()
                    .all(|w| env.split(|b| *b == 0).any(|var| var == w.as_bytes()))
            })
        })
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// Every process id on the host.
fn all_processes() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The children of a process, from each of its threads' `children` file
/// (`None` when the kernel does not provide them).
fn children_of(pid: &str) -> Option<Vec<u32>> {
    if !kernel_lists_children() {
        return None;
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut children = Vec::new();
    for task in tasks.flatten() {
        // A thread that ended meanwhile has none.
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    Some(children)
}

/// Whether this kernel has `/proc/<pid>/task/<tid>/children`, asked once of
/// the calling thread (alive, so a missing file means no support).
fn kernel_lists_children() -> bool {
    static LISTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTS.get_or_init(|| {
        std::path::Path::new(&format!(
            "/proc/self/task/{}/children",
            nix::unistd::gettid()
        ))
        .exists()
    })
}

/// This process's descendants, walked down from its own children: far
/// cheaper than reading every process on a busy host.
fn descendants() -> Option<Vec<u32>> {
    let mut found = children_of("self")?;
    let mut next = 0;
    while next < found.len() {
        // A process that exited meanwhile has no children to add.
        let more = children_of(&found[next].to_string()).unwrap_or_default();
        found.extend(more);
        next += 1;
    }
    Some(found)
}

/// State letter and parent pid of a process, from `/proc/<pid>/stat`.
fn stat_of(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Makes this process the child subreaper of its descendants, so orphans
/// (double-forked daemons of payloads) are reparented to it, not to init.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    SUBREAPER.store(true, Ordering::Relaxed);
    Ok(())
}

/// Set once this process is a child subreaper: every descendant of a
/// payload stays a descendant of the worker.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Reaps zombie children that no `tokio::process::Child` waits for (orphans
/// this subreaper inherited); returns how many. Never `waitpid(-1)`.
pub fn reap_orphans() -> usize {
    let me = std::process::id();
    // Only this process's children can be its zombies.
    let candidates = children_of("self").unwrap_or_else(all_processes);
    let zombies: Vec<u32> = candidates
        .into_iter()
        .filter(|pid| stat_of(*pid).is_some_and(|(state, ppid)| state == 'Z' && ppid == me))
        .collect();
    if zombies.is_empty() {
        return 0;
    }
    // Under the lock: a child spawned meanwhile is registered before it can exit.
    let waited = children::waited_for();
    let mut reaped = 0;
    for pid in zombies {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if waited.contains(&raw) {
            continue;
        }
        if waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    reaped
}

/// Reaps orphans whenever a child changes state (SIGCHLD), and every few
/// seconds in case signals were merged.
pub fn spawn_reaper() {
    tokio::spawn(async move {
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
        loop {
            match sigchld.as_mut() {
                Some(s) => {
                    tokio::select! {
                        _ = s.recv() => {}
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
            reap_orphans_off_runtime().await;
        }
    });
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| -s))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str, timeout_ms: u64) -> (ProcessSpec, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = ProcessSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
            cwd: dir.path().to_path_buf(),
            capture: Some((dir.path().join("out"), dir.path().join("err"))),
            stdin: None,
            timeout: Duration::from_millis(timeout_ms),
            kill_grace: Duration::from_millis(500),
        };
        (spec, dir)
    }

    #[tokio::test]
    async fn exit_status_and_capture() {
        let (s, dir) = spec("echo hi; echo oops >&2; exit 3", 10_000);
        assert_eq!(
            run(&s, &Interrupt::new()).await.ok(),
            Some(Ended::Exited(3))
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out"))
                .ok()
                .as_deref(),
            Some("hi\n")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("err"))
                .ok()
                .as_deref(),
            Some("oops\n")
        );
        let (s, _dir) = spec("kill -9 $$", 10_000);
        assert_eq!(
            run(&s, &Interrupt::new()).await.ok(),
            Some(Ended::Exited(-9))
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let (s, dir) = spec("sleep 30 & echo $! > child; sleep 30", 300);
        assert_eq!(run(&s, &Interrupt::new()).await.ok(), Some(Ended::TimedOut));
        let pid: i32 = std::fs::read_to_string(dir.path().join("child"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no child pid"));
        // SIGKILL is delivered asynchronously: give the background sleep a
        // moment to die (a zombie waiting for its reaper counts as dead).
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z"))
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "background child {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancel_interrupts() {
        let (s, _dir) = spec("sleep 30", 60_000);
        let token = Interrupt::new();
        let t2 = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            t2.deadline();
        });
        assert_eq!(run(&s, &token).await.ok(), Some(Ended::Interrupted));
    }

    #[tokio::test]
    async fn nothing_starts_once_interrupted() {
        let (s, dir) = spec("touch started", 60_000);
        let token = Interrupt::new().child();
        token.kill_now();
        assert_eq!(run(&s, &token).await.ok(), Some(Ended::Interrupted));
        assert!(
            !dir.path().join("started").exists(),
            "a payload started after its run was interrupted"
        );
    }

    #[test]
    fn descendants_are_found_down_the_tree_and_by_their_run() {
        // A child whose own child left its session: both are descendants.
        let mut child = std::process::Command::new("/bin/sh")
            // The grandchild prints its own pid once its execs are over
            // (mid-exec a process's environment reads empty).
            .args([
                "-c",
                "setsid sh -c 'echo $$; while :; do sleep 1; done' & wait",
            ])
            .env("LAVA_RUN_ID", "run-under-test")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.as_mut() {
            use std::io::BufRead;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let grandchild: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid: {line:?}"));
        let found = descendants().unwrap_or_else(|| panic!("this kernel lists no children"));
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(found.contains(&grandchild), "{found:?}");
        let of_run = matching_run("run-under-test", found);
        assert!(of_run.contains(&(grandchild as i32)), "{of_run:?}");
        assert!(processes_of_run_anywhere("run-under-test").contains(&(grandchild as i32)));
        let _ = kill(Pid::from_raw(grandchild as i32), Signal::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }
}
