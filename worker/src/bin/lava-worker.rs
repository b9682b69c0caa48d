//! `lava-worker`: the lava job runner (see `lava_worker::daemon`).

use std::process::ExitCode;

use lava_worker::cli::Args;
use lava_worker::daemon::{self, exit};

fn main() -> ExitCode {
    let args = Args::parse_resolved();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lava-worker: cannot start: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    ExitCode::from(runtime.block_on(daemon::run(args)))
}
