//! Run containment in cgroup v2 leaves. When the worker runs in a delegated
//! cgroup v2 subtree (systemd's `Delegate=yes`), this module owns that
//! subtree: at start-up it moves the worker into a `worker` leaf of its own
//! cgroup, and each payload gets a sibling leaf `run-<run id>-<n>` which it
//! enters before it can fork; when the run ends (or the guard is dropped on
//! any other path) the leaf is emptied with `cgroup.kill` and removed, so
//! nothing a payload started survives it, whatever its process group or
//! environment. Outside a delegated subtree the worker keeps to process
//! groups alone (see [`crate::process`]).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why runs are not contained in cgroup leaves.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup2 file system in /proc/self/mountinfo")]
    NoMount,
    /// The process has no cgroup v2 membership.
    #[error("no cgroup v2 entry (0::) in /proc/self/cgroup")]
    NoMembership,
    /// The process sits at the root of the hierarchy, which is never a
    /// delegated subtree.
    #[error("the worker's cgroup is the root of the cgroup2 hierarchy (not delegated)")]
    Root,
    /// The process's cgroup is outside what the mount shows.
    #[error("cgroup {0} is not under the cgroup2 mount's root")]
    Outside(String),
    /// The kernel is too old for `cgroup.kill` (Linux 5.14).
    #[error("{0}: no cgroup.kill (Linux 5.14 or later is needed)")]
    NoKill(PathBuf),
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { what, path, source }
}

/// The mount point and mount root of the first cgroup2 file system in a
/// `/proc/<pid>/mountinfo` text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        // <id> <parent> <major:minor> <root> <mount point> <options> [optional
        // fields...] - <fs type> <source> <super options>
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = before.split_whitespace();
        let root = unescape(fields.nth(3)?);
        let mount_point = unescape(fields.next()?);
        Some((PathBuf::from(mount_point), root))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            digits
                .iter()
                .all(|d| (b'0'..=b'7').contains(d))
                .then(|| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok())
                .flatten()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path (`0::<path>`) in a `/proc/<pid>/cgroup` text.
pub fn unified_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.strip_suffix(" (deleted)").unwrap_or(path))
        .filter(|path| path.starts_with('/'))
}

/// The directory of cgroup `path` under a cgroup2 mount whose root is
/// `mount_root`; `None` at the root of the hierarchy.
pub fn cgroup_dir(
    mount_point: &Path,
    mount_root: &str,
    path: &str,
) -> Result<Option<PathBuf>, CgroupError> {
    let relative = if mount_root == "/" {
        Some(path)
    } else {
        path.strip_prefix(mount_root)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let Some(relative) = relative else {
        return Err(CgroupError::Outside(path.to_string()));
    };
    let relative = relative.trim_start_matches('/');
    if relative.is_empty() {
        return Ok(None);
    }
    Ok(Some(mount_point.join(relative)))
}

/// The worker's delegated cgroup: the worker itself in its `worker` leaf,
/// runs in sibling leaves.
#[derive(Debug)]
pub struct Delegation {
    dir: PathBuf,
}

static DELEGATION: OnceLock<Option<Delegation>> = OnceLock::new();
static LEAVES: AtomicU64 = AtomicU64::new(0);

/// How long a leaf may take to empty after `cgroup.kill`.
const EMPTY_WAIT: Duration = Duration::from_secs(5);

/// Chooses the containment once, at start-up, and logs the choice: cgroup
/// leaves when the worker's own cgroup is a delegated subtree (the worker
/// then moves into its `worker` leaf), process groups otherwise.
pub fn init() -> Option<&'static Delegation> {
    DELEGATION
        .get_or_init(|| match Delegation::detect() {
            Ok(d) => {
                tracing::info!(
                    "run containment: a cgroup v2 leaf per run under {} (the worker in {}/worker)",
                    d.dir.display(),
                    d.dir.display()
                );
                Some(d)
            }
            Err(e) => {
                tracing::info!("run containment: process groups ({e})");
                None
            }
        })
        .as_ref()
}

/// The delegation chosen by [`init`]; `None` before it or without one.
pub fn delegation() -> Option<&'static Delegation> {
    DELEGATION.get().and_then(Option::as_ref)
}

impl Delegation {
    /// Finds this process's cgroup and, when it is a delegated subtree we
    /// can write, moves this process into its `worker` leaf.
    pub fn detect() -> Result<Self, CgroupError> {
        let read =
            |path: &str| std::fs::read_to_string(path).map_err(io("cannot read", Path::new(path)));
        let (mount_point, mount_root) =
            cgroup2_mount(&read("/proc/self/mountinfo")?).ok_or(CgroupError::NoMount)?;
        let text = read("/proc/self/cgroup")?;
        let path = unified_path(&text).ok_or(CgroupError::NoMembership)?;
        let dir = cgroup_dir(&mount_point, &mount_root, path)?.ok_or(CgroupError::Root)?;
        let delegation = Self { dir };
        delegation.enter_worker_leaf()?;
        Ok(delegation)
    }

    /// Moves this process into `<dir>/worker`: the delegated cgroup's own
    /// processes must live in a leaf, so runs can be its siblings.
    fn enter_worker_leaf(&self) -> Result<(), CgroupError> {
        let kill = self.dir.join("cgroup.kill");
        if !kill.exists() {
            return Err(CgroupError::NoKill(self.dir.clone()));
        }
        let leaf = self.dir.join("worker");
        let created = match std::fs::create_dir(&leaf) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io("cannot create", &leaf)(e)),
        };
        let procs = leaf.join("cgroup.procs");
        let moved = OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| f.write_all(std::process::id().to_string().as_bytes()));
        if let Err(e) = moved {
            if created {
                let _ = std::fs::remove_dir(&leaf);
            }
            return Err(io("cannot move the worker into", &procs)(e));
        }
        Ok(())
    }

    /// The delegated cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a leaf for one payload of run `run_id`: `run-<run id>-<n>`,
    /// unique within this worker even when the same run id runs twice.
    pub fn leaf(&self, run_id: Option<&str>) -> Result<Leaf, CgroupError> {
        let stem: String = run_id
            .unwrap_or("")
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut tries = 0;
        let path = loop {
            let n = LEAVES.fetch_add(1, Ordering::Relaxed);
            let name = if stem.is_empty() {
                format!("run-{n}")
            } else {
                format!("run-{stem}-{n}")
            };
            let path = self.dir.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => break path,
                // A leaf left by an earlier worker in this cgroup.
                Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(io("cannot create", &path)(e)),
            }
        };
        let mut leaf = Leaf {
            path,
            procs: None,
            removed: false,
        };
        let procs = leaf.path.join("cgroup.procs");
        // On failure the guard removes the empty leaf.
        let file = OpenOptions::new()
            .write(true)
            .open(&procs)
            .map_err(io("cannot open", &procs))?;
        leaf.procs = Some(Arc::new(file));
        Ok(leaf)
    }
}

/// A run's cgroup leaf. Whatever happens, it is emptied (`cgroup.kill`) and
/// removed: by [`Leaf::remove`] when the run ends, or when it is dropped.
#[derive(Debug)]
pub struct Leaf {
    path: PathBuf,
    procs: Option<Arc<File>>,
    removed: bool,
}

impl Leaf {
    /// The leaf's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the child that `cmd` spawns enter this leaf before it runs
    /// anything (so before it can fork): it writes `0` to the leaf's
    /// `cgroup.procs`, opened here in the parent. The spawn fails if that
    /// write does.
    pub fn enter_on_spawn(&self, cmd: &mut tokio::process::Command) {
        let Some(procs) = self.procs.clone() else {
            return;
        };
        let hook = move || -> std::io::Result<()> {
            // One write(2) on an open descriptor: async-signal-safe, no
            // allocation (an error is just the errno).
            match nix::unistd::write(&*procs, b"0") {
                Ok(1) => Ok(()),
                Ok(_) => Err(std::io::Error::from(ErrorKind::WriteZero)),
                Err(errno) => Err(std::io::Error::from(errno)),
            }
        };
        // SAFETY: the hook runs in the forked child before exec; it only
        // calls write(2) on a descriptor the parent opened and keeps open
        // (the closure owns a reference to it), which is async-signal-safe,
        // and it neither allocates nor takes locks.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(hook);
        }
    }

    /// Writes `1` to the leaf's `cgroup.kill`: SIGKILL to every process in it.
    fn kill(&self) {
        let path = self.path.join("cgroup.kill");
        let result = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"1"));
        if let Err(e) = result {
            tracing::warn!("cannot kill cgroup {}: {e}", self.path.display());
        }
    }

    /// Kills everything in the leaf, waits (at most a few seconds) until it
    /// is empty, and removes it. Failures are logged.
    pub async fn remove(mut self) {
        self.procs = None;
        self.kill();
        let until = Instant::now() + EMPTY_WAIT;
        while populated(&self.path) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.removed = true;
        remove_dir(&self.path);
    }
}

impl Drop for Leaf {
    /// The error paths (a panic, an early return, a cancelled run): kill at
    /// once, remove the leaf now if it is already empty, else from a thread
    /// once it is.
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        self.procs = None;
        self.kill();
        if std::fs::remove_dir(&self.path).is_ok() {
            return;
        }
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("lava-cgroup".into())
            .spawn(move || {
                let until = Instant::now() + EMPTY_WAIT;
                while populated(&path) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                remove_dir(&path);
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot remove cgroup {} (no thread: {e})",
                self.path.display()
            );
        }
    }
}

/// True while `cgroup.events` says `populated 1` (an unreadable file ends
/// the wait: the rmdir that follows reports the trouble).
fn populated(leaf: &Path) -> bool {
    std::fs::read_to_string(leaf.join("cgroup.events"))
        .is_ok_and(|events| events.lines().any(|l| l.trim() == "populated 1"))
}

fn remove_dir(path: &Path) {
    match std::fs::remove_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove cgroup {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn finds_the_cgroup2_mount() {
        assert_eq!(
            cgroup2_mount(MOUNTINFO),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
        let systemd = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(systemd),
            Some((PathBuf::from("/sys/fs/cgroup"), "/".to_string()))
        );
        // Escaped spaces, a mount root other than /, optional fields.
        let odd = "50 1 0:40 /lxc/a\\040b /mnt/cg\\040two rw - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_mount(odd),
            Some((PathBuf::from("/mnt/cg two"), "/lxc/a b".to_string()))
        );
        // cgroup v1 only, or nothing usable.
        assert_eq!(
            cgroup2_mount("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"),
            None
        );
        assert_eq!(cgroup2_mount(""), None);
        assert_eq!(cgroup2_mount("garbage - cgroup2"), None);
    }

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape("a\\040b\\134c\\011d"), "a b\\c\td");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("\\999"), "\\999");
    }

    #[test]
    fn finds_the_unified_path() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n0::/system.slice/lava-worker@core.service\n";
        assert_eq!(
            unified_path(hybrid),
            Some("/system.slice/lava-worker@core.service")
        );
        assert_eq!(unified_path("0::/\n"), Some("/"));
        assert_eq!(unified_path("0::/gone (deleted)\n"), Some("/gone"));
        assert_eq!(unified_path("4:memory:/x\n1:cpu:/\n"), None);
        assert_eq!(unified_path("0::\n"), None);
    }

    #[test]
    fn root_is_never_delegated() {
        let mount = Path::new("/sys/fs/cgroup");
        assert!(matches!(cgroup_dir(mount, "/", "/"), Ok(None)));
        assert!(matches!(cgroup_dir(mount, "/lxc/c1", "/lxc/c1"), Ok(None)));
        assert_eq!(
            cgroup_dir(mount, "/", "/system.slice/w.service").ok(),
            Some(Some(PathBuf::from("/sys/fs/cgroup/system.slice/w.service")))
        );
        assert_eq!(
            cgroup_dir(mount, "/lxc/c1", "/lxc/c1/w").ok(),
            Some(Some(PathBuf::from("/sys/fs/cgroup/w")))
        );
        assert!(matches!(
            cgroup_dir(mount, "/lxc/c1", "/lxc/c10/w"),
            Err(CgroupError::Outside(_))
        ));
    }

    /// A cgroup of the test's own under the cgroup2 mount, standing in for a
    /// delegated one; removed (with anything left in it) when dropped.
    struct Scratch {
        delegation: Delegation,
    }

    impl Scratch {
        fn new(name: &str) -> Self {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_else(|e| panic!("cannot read mountinfo: {e}"));
            let Some((mount, _)) = cgroup2_mount(&mountinfo) else {
                panic!("no cgroup2 mount: these tests need one (and root)");
            };
            let dir = mount.join(format!("lava-unit-{name}-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&dir) {
                panic!(
                    "cannot create {}: {e} (these tests need root)",
                    dir.display()
                );
            }
            Self {
                delegation: Delegation { dir },
            }
        }

        fn leaves(&self) -> Vec<PathBuf> {
            std::fs::read_dir(&self.delegation.dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::write(self.delegation.dir.join("cgroup.kill"), "1");
            std::thread::sleep(Duration::from_millis(100));
            for leaf in self.leaves() {
                let _ = std::fs::remove_dir(leaf);
            }
            let _ = std::fs::remove_dir(&self.delegation.dir);
        }
    }

    /// Starts `sh -c script` in `leaf`; the script writes pids to `pids`.
    fn start(leaf: &Leaf, script: &str) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", script]).kill_on_drop(true);
        leaf.enter_on_spawn(&mut cmd);
        cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn: {e}"))
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
    }

    async fn read_pid(file: &Path) -> i32 {
        for _ in 0..500 {
            if let Some(pid) = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no pid in {}", file.display());
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gave up waiting for {what}");
    }

    /// A stray that left its group and environment, as the payload's
    /// grandchild; its pid goes to `pidfile`.
    fn stray(pidfile: &Path) -> String {
        format!(
            "env -i setsid sh -c 'echo $$ > {}; exec sleep 300' >/dev/null 2>&1 & sleep 300",
            pidfile.display()
        )
    }

    #[tokio::test]
    async fn remove_kills_everything_and_removes_the_leaf() {
        let scratch = Scratch::new("remove");
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pidfile = tmp.path().join("pid");
        let leaf = scratch
            .delegation
            .leaf(Some("0b5e/run id"))
            .unwrap_or_else(|e| panic!("{e}"));
        let path = leaf.path().to_path_buf();
        assert!(
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-0b5e_run_id-")),
            "{}",
            path.display()
        );
        let mut child = start(&leaf, &stray(&pidfile));
        let pid = read_pid(&pidfile).await;
        let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
        assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
        leaf.remove().await;
        let _ = child.wait().await;
        wait_until("the stray to die", || !alive(pid)).await;
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[tokio::test]
    async fn a_dropped_leaf_is_killed_and_removed() {
        let scratch = Scratch::new("drop");
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

        // An early `?` after the spawn.
        async fn fails_after_spawn(
            delegation: &Delegation,
            script: &str,
            pidfile: &Path,
        ) -> Result<(), String> {
            let leaf = delegation.leaf(Some("early")).map_err(|e| e.to_string())?;
            let _child = start(&leaf, script);
            read_pid(pidfile).await;
            Err::<(), _>("something went wrong".to_string())?;
            leaf.remove().await;
            Ok(())
        }
        let early = tmp.path().join("early");
        let result = fails_after_spawn(&scratch.delegation, &stray(&early), &early).await;
        assert_eq!(result, Err("something went wrong".to_string()));
        let pid = read_pid(&early).await;
        wait_until("the stray of the early return to die", || !alive(pid)).await;
        wait_until("the leaf to go", || scratch.leaves().is_empty()).await;

        // A panic in a task that holds the leaf.
        let delegation = Delegation {
            dir: scratch.delegation.dir.clone(),
        };
        let panicked = tmp.path().join("panicked");
        let script = stray(&panicked);
        let file = panicked.clone();
        let task = tokio::spawn(async move {
            let leaf = delegation
                .leaf(Some("panic"))
                .unwrap_or_else(|e| panic!("{e}"));
            let _child = start(&leaf, &script);
            read_pid(&file).await;
            panic!("a bug");
        });
        assert!(task.await.is_err_and(|e| e.is_panic()));
        let pid = read_pid(&panicked).await;
        wait_until("the stray of the panic to die", || !alive(pid)).await;
        wait_until("the leaf to go", || scratch.leaves().is_empty()).await;
    }

    #[tokio::test]
    async fn a_failed_entry_fails_the_spawn() {
        let scratch = Scratch::new("entry");
        let leaf = scratch
            .delegation
            .leaf(None)
            .unwrap_or_else(|e| panic!("{e}"));
        // A leaf that cannot take processes any more.
        let path = leaf.path().to_path_buf();
        let _ = std::fs::remove_dir(&path);
        let mut cmd = tokio::process::Command::new("/bin/true");
        leaf.enter_on_spawn(&mut cmd);
        assert!(cmd.spawn().is_err(), "spawned outside its leaf");
        drop(leaf);
        assert!(!path.exists());
    }
}
