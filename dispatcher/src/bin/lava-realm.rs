//! `lava-realm`: create realms and import/export their items (see `lava_dispatcher::realm_cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_dispatcher::realm_cli::{Args, UsageError, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lava-realm: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lava-realm: {e:#}");
            if e.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
