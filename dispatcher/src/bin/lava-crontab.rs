//! `lava-crontab`: keep this account's crontab in line with the lava jobs
//! table — `sync`, `show`, `diff`, `next` (see `lava_dispatcher::crontab::cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_dispatcher::crontab::cli::{Args, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lava-crontab: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    ExitCode::from(runtime.block_on(run(args)))
}
