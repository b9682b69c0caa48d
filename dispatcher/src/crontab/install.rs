//! The user's crontab through the crontab program (`LAVA_CRONTAB_CMD`,
//! default `crontab`, so tests can use a stand-in): `<cmd> -l` reads it, `<cmd> -`
//! replaces it from stdin in one step, as crontab(1) installs atomically.

use std::ffi::OsString;
use std::process::Stdio;

use lava_common::children;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::CrontabError;

/// The environment variable naming the crontab program.
pub const CRONTAB_CMD_ENV: &str = "LAVA_CRONTAB_CMD";

/// The crontab program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrontabCommand {
    program: OsString,
}

impl Default for CrontabCommand {
    fn default() -> Self {
        Self::new("crontab")
    }
}

impl CrontabCommand {
    /// A given program.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// `LAVA_CRONTAB_CMD` if set and not empty, else `crontab` from `PATH`.
    pub fn from_env() -> Self {
        match std::env::var_os(CRONTAB_CMD_ENV) {
            Some(p) if !p.is_empty() => Self::new(p),
            _ => Self::default(),
        }
    }

    fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    fn failed(&self, what: &str, reason: impl std::fmt::Display) -> CrontabError {
        CrontabError::Command {
            program: self.name(),
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The current crontab; empty when the user has none (`<cmd> -l`
    /// fails saying "no crontab").
    pub async fn read(&self) -> Result<String, CrontabError> {
        let what = "read the crontab";
        let (child, _registration) = children::spawn(
            Command::new(&self.program)
                .arg("-l")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true),
        )
        .map_err(|e| self.failed(what, e))?;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| self.failed(what, e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.to_ascii_lowercase().contains("no crontab") {
                return Ok(String::new());
            }
            return Err(self.failed(what, format!("{}: {}", out.status, stderr.trim())));
        }
        String::from_utf8(out.stdout)
            .map_err(|_| self.failed(what, "the crontab is not UTF-8 text"))
    }

    /// Replaces the crontab with `text` (`<cmd> -`, text on stdin).
    pub async fn install(&self, text: &str) -> Result<(), CrontabError> {
        let what = "install the new crontab";
        let (mut child, _registration) = children::spawn(
            Command::new(&self.program)
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true),
        )
        .map_err(|e| self.failed(what, e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| self.failed(what, e))?;
            stdin.shutdown().await.map_err(|e| self.failed(what, e))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| self.failed(what, e))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(self.failed(what, format!("{}: {}", out.status, stderr.trim())))
        }
    }
}
