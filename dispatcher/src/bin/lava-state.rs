//! `lava-state`: put and get lava state items (see `lava_dispatcher::state_cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_dispatcher::state_cli::{Args, EXIT_USAGE, TAG, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{TAG}: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(args) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(failure)) => {
            eprintln!("{TAG}: {failure}");
            ExitCode::from(failure.status())
        }
        None => {
            eprintln!("Interrupt");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
