//! The child processes some `tokio::process::Child` is waiting for. The
//! worker is a child subreaper (so a payload that escapes its process group
//! is still reaped) and reaps the zombies of
//! the orphans it inherits; it must leave these alone, or their `wait`
//! fails with ECHILD and the code that started them sees an error instead
//! of an exit status. Every program a lava process starts goes through
//! [`spawn`], whoever starts it (a payload, `crontab -l`).

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use tokio::process::{Child, Command};

static WAITED_FOR: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// The pids being waited for, locked. An orphan reaper holds this while it
/// decides which zombies are its own, so a child spawned meanwhile is
/// registered before the reaper can look at it.
pub fn waited_for() -> MutexGuard<'static, BTreeSet<i32>> {
    WAITED_FOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child's place in the registry; dropping it ends the registration.
/// Keep it until the child has been waited for.
#[derive(Debug)]
pub struct Registration(Option<i32>);

impl Registration {
    /// The registered pid (none if the child had already been reaped).
    pub fn pid(&self) -> Option<i32> {
        self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            waited_for().remove(&pid);
        }
    }
}

/// Spawns `cmd` and registers the child under the registry's lock.
pub fn spawn(cmd: &mut Command) -> std::io::Result<(Child, Registration)> {
    let mut waited = waited_for();
    let child = cmd.spawn()?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pid) = pid {
        waited.insert(pid);
    }
    Ok((child, Registration(pid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registered_until_dropped() {
        let (mut child, reg) = match spawn(Command::new("true").kill_on_drop(true)) {
            Ok(spawned) => spawned,
            Err(e) => panic!("cannot start true: {e}"),
        };
        let pid = reg.pid();
        assert!(pid.is_some());
        assert!(pid.is_some_and(|p| waited_for().contains(&p)));
        assert!(child.wait().await.is_ok_and(|s| s.success()));
        drop(reg);
        assert!(pid.is_some_and(|p| !waited_for().contains(&p)));
    }
}
