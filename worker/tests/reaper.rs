//! The worker's orphan reaper against the programs lava starts itself
//! (`crontab -l`, `crontab -`): it must never take the zombie of a child
//! that other code is waiting for, or that code sees ECHILD instead of an
//! exit status and a `lavasched` run fails for nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lava_dispatcher::crontab::CrontabCommand;
use lava_worker::process::reap_orphans;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_leaves_crontab_commands_alone() {
    let stop = Arc::new(AtomicBool::new(false));
    // The reaper at its most eager: sweeping all the time.
    let sweeper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut reaped = 0;
            while !stop.load(Ordering::Relaxed) {
                reaped += reap_orphans();
            }
            reaped
        })
    };
    // `echo -l` stands in for `crontab -l`, `cat -` for `crontab -`.
    let read = CrontabCommand::new("echo");
    let install = CrontabCommand::new("cat");
    let mut errors = Vec::new();
    for _ in 0..150 {
        match read.read().await {
            Ok(text) => assert_eq!(text, "-l\n"),
            Err(e) => errors.push(e.to_string()),
        }
        if let Err(e) = install.install("0 1 * * * true\n").await {
            errors.push(e.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reaped = sweeper.join().unwrap_or_default();
    assert!(errors.is_empty(), "{} failures: {errors:#?}", errors.len());
    assert_eq!(reaped, 0, "the sweeper took children it did not own");
}
