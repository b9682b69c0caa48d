//! `lava-slack`: sends one message through a `slack` connection — what the
//! connection's CLI helper runs for payloads, and what people run. The
//! flags are the original's; options not given fall back to the
//! connection's fields. The body comes from FILE or stdin, at most 3000
//! bytes.

use clap::{ArgAction, Parser};
use lava_common::cli::CommonArgs;
use lava_common::connection::SlackStyle;

use crate::slack::{self, SlackMessage};
use crate::tool::{self, Failure, error};

/// The default `--tag`, and the prefix of error messages.
pub const TAG: &str = "lava-slack";

/// Send Slack messages using lava slack connections.
#[derive(Debug, Parser)]
#[command(
    name = "lava-slack",
    version,
    disable_version_flag = true,
    mut_arg("tag", |a| a.default_value(TAG)),
    after_help = "Exit status: 0 sent, 1 error, 2 bad usage or interrupt."
)]
pub struct Args {
    /// Lava connection ID.
    #[arg(short = 'c', long = "conn-id")]
    pub conn_id: String,
    /// Sidebar colour of attachment-style messages (hex, or good, warning, danger).
    #[arg(
        long = "bar-colour",
        visible_alias = "bar-color",
        value_name = "COLOUR"
    )]
    pub bar_colour: Option<String>,
    /// Sender name.
    #[arg(long = "from", value_name = "NAME")]
    pub from: Option<String>,
    /// Text placed first (e.g. <!here>).
    #[arg(long)]
    pub preamble: Option<String>,
    /// Message subject.
    #[arg(short = 's', long)]
    pub subject: Option<String>,
    /// Message layout.
    #[arg(long, value_parser = ["block", "attachment", "plain"])]
    pub style: Option<String>,
    /// The body's file; `-` or none: stdin.
    #[arg(value_name = "FILENAME")]
    pub message: Option<String>,
    /// No colour in terminal logs (accepted for compatibility).
    #[arg(long = "no-colour", visible_alias = "no-color")]
    pub no_colour: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// The flags every lava command takes.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `lava-slack`.
pub async fn run(args: Args) -> Result<(), Failure> {
    let setup = tool::setup(&args.common).await?;
    let message = tool::read_body(args.message.as_deref(), slack::MAX_MESSAGE as u64)?;
    let record = setup.connections.get(&args.conn_id).await.map_err(error)?;
    let conn = setup.connections.slack(&record).await.map_err(error)?;
    let m = SlackMessage {
        message,
        subject: args.subject,
        from: args.from,
        style: args.style.as_deref().and_then(SlackStyle::parse),
        colour: args.bar_colour,
        preamble: args.preamble,
    };
    slack::send(&conn, &m).await.map_err(Failure::Error)
}
