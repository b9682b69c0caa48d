//! `lava-email`: send email through a lava connection (see `lava_worker::email_cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_worker::email_cli::{Args, TAG, run};

fn main() -> ExitCode {
    lava_worker::tool::main(TAG, run(Args::parse()))
}
