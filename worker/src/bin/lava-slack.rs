//! `lava-slack`: send a Slack message through a lava connection (see `lava_worker::slack_cli`).

use std::process::ExitCode;

use clap::Parser;
use lava_worker::slack_cli::{Args, TAG, run};

fn main() -> ExitCode {
    lava_worker::tool::main(TAG, run(Args::parse()))
}
