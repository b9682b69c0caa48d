//! Test helper: drains one queue of a backend, as a worker's receive loop
//! would, for the multi-process tests.
//!
//! `queue-drain <backend> <queue> <idle-seconds>` receives with long polls,
//! deletes each message and prints it as one JSON line
//! (`{"message_id", "receive_count", "body"}`), and exits 0 once no message
//! has come for `<idle-seconds>`. Any failure exits 1 with the reason on stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lava_common::store::{Backend, BackendSpec};

async fn drain(backend: &str, queue: &str, idle: Duration) -> Result<(), String> {
    let spec = BackendSpec::parse(backend).map_err(|e| e.to_string())?;
    let backend = Backend::connect(&spec, None)
        .await
        .map_err(|e| e.to_string())?;
    let queue = backend
        .queue
        .resolve(queue)
        .await
        .map_err(|e| e.to_string())?;
    let mut last = Instant::now();
    let mut out = std::io::stdout().lock();
    loop {
        let left = idle.saturating_sub(last.elapsed());
        if left.is_zero() {
            return Ok(());
        }
        let wait = u32::try_from(left.as_secs().clamp(1, 20)).unwrap_or(1);
        let got = backend
            .queue
            .receive(&queue, 10, wait)
            .await
            .map_err(|e| format!("receive: {e}"))?;
        if got.is_empty() {
            continue;
        }
        for m in got {
            backend
                .queue
                .delete(&queue, &m.receipt)
                .await
                .map_err(|e| format!("delete {}: {e}", m.message_id))?;
            let line = serde_json::json!({
                "message_id": m.message_id,
                "receive_count": m.receive_count,
                "body": m.body,
            });
            writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))?;
        }
        out.flush().map_err(|e| format!("stdout: {e}"))?;
        last = Instant::now();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, queue, idle] = args.as_slice() else {
        eprintln!("usage: queue-drain <backend> <queue> <idle-seconds>");
        return ExitCode::from(64);
    };
    let Ok(idle) = idle.parse::<u64>() else {
        eprintln!("queue-drain: bad idle seconds {idle:?}");
        return ExitCode::from(64);
    };
    match drain(backend, queue, Duration::from_secs(idle)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("queue-drain: {e}");
            ExitCode::FAILURE
        }
    }
}
