//! `lava-dispatch`: put a dispatch message for each job id on its worker
//! fleet's queue and print the run ids (see `lava_dispatcher::dispatch_cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_dispatcher::dispatch_cli::{Args, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lava-dispatch: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    ExitCode::from(runtime.block_on(run(args)))
}
