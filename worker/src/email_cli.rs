//! `lava-email`: sends one message through an `email`/`ses` connection —
//! what the connection's CLI helper runs for payloads, and what people run.
//! The flags are the original's. The body comes from FILE, `--html` or
//! `--text` (legacy, the same effect), or stdin (`-` or none); only its
//! first 2 MB are read, and it is sent as HTML when it looks like HTML.

use clap::{ArgAction, Parser};
use lava_common::cli::CommonArgs;

use crate::mail::{self, Outgoing};
use crate::settings::MailSettings;
use crate::tool::{self, Failure, error};

/// The default `--tag`, and the prefix of error messages.
pub const TAG: &str = "lava-email";

/// Most of the body read.
const MAX_BODY: u64 = 2_000_000;

/// Send email using lava email connections.
#[derive(Debug, Parser)]
#[command(
    name = "lava-email",
    version,
    disable_version_flag = true,
    mut_arg("tag", |a| a.default_value(TAG)),
    after_help = "Exit status: 0 sent, 1 error, 2 bad usage or interrupt."
)]
pub struct Args {
    /// Lava connection ID.
    #[arg(short = 'c', long = "conn-id")]
    pub conn_id: String,
    /// Attach this file (local, or s3://bucket/key). Repeatable.
    #[arg(short = 'a', long = "attach", value_name = "FILE")]
    pub attach: Vec<String>,
    /// Recipients on the To: line. Repeatable.
    #[arg(long, value_name = "EMAIL")]
    pub to: Vec<String>,
    /// Recipients on the Cc: line. Repeatable.
    #[arg(long, value_name = "EMAIL")]
    pub cc: Vec<String>,
    /// Recipients not shown in the message. Repeatable.
    #[arg(long, value_name = "EMAIL")]
    pub bcc: Vec<String>,
    /// Sender (default: the connection's `from`, then SES_FROM for SES).
    #[arg(long = "from", value_name = "EMAIL")]
    pub from: Option<String>,
    /// Reply-To address. Repeatable.
    #[arg(long = "reply-to", value_name = "EMAIL")]
    pub reply_to: Vec<String>,
    /// Message subject.
    #[arg(short = 's', long)]
    pub subject: String,
    /// Legacy: the body's file.
    #[arg(long, value_name = "FILENAME", conflicts_with_all = ["text", "message"])]
    pub html: Option<String>,
    /// Legacy: the body's file.
    #[arg(long, value_name = "FILENAME", conflicts_with = "message")]
    pub text: Option<String>,
    /// The body's file; `-` or none: stdin. HTML is detected by content.
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

/// Runs `lava-email`.
pub async fn run(args: Args) -> Result<(), Failure> {
    let setup = tool::setup(&args.common).await?;
    let settings = MailSettings::load(&setup.config).map_err(error)?;
    let file = args.message.or(args.html).or(args.text);
    let body = tool::read_body(file.as_deref(), MAX_BODY)?;
    let record = setup.connections.get(&args.conn_id).await.map_err(error)?;
    let conn = setup.connections.email(&record).await.map_err(error)?;
    let outgoing = Outgoing {
        subject: args.subject,
        body,
        to: args.to,
        cc: args.cc,
        bcc: args.bcc,
        from: args.from,
        reply_to: args.reply_to,
        attachments: args.attach,
    };
    mail::send(
        &conn,
        &outgoing,
        &settings,
        setup.objects.as_ref(),
        &setup.ses,
    )
    .await
    .map_err(Failure::Error)
}
