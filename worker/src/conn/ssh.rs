//! The `ssh`, `scp`, `sftp` and `git` helpers: the connection's private
//! key in `ssh.pem` (0600) and a script that runs the program with it. Every
//! `ssh` gets the connection's `ssh_options` first (for each option ssh
//! takes the first value given, so the connection's own choices win), then
//! this worker's defaults: a host key is accepted the first time it is met
//! and checked after that, within the run (`StrictHostKeyChecking=accept-new`
//! with the helper's own `known_hosts`), only the connection's key is
//! offered (`IdentitiesOnly=yes`), and nothing ever prompts
//! (`BatchMode=yes`). A connection that must pin host keys sets
//! `StrictHostKeyChecking=yes` and `UserKnownHostsFile=…` in `ssh_options`.
//! `git` runs its ssh through `GIT_SSH_COMMAND`, with no system config and
//! no terminal prompts.

use std::path::{Path, PathBuf};

use lava_common::connection::{SshAccess, SshTool};

use super::{Helper, sh_quote};

/// The helper of an ssh-family connection whose key is read.
pub(super) fn helper(dir: &Path, tool: SshTool, access: &SshAccess) -> Helper {
    let ssh_args = ssh_arguments(dir, access).join(" ");
    let program = tool.program();
    let script = match tool {
        SshTool::Git => format!(
            r#"#!/bin/bash
# lava connection helper (git): git over ssh with the connection's key.
export GIT_CONFIG_NOSYSTEM=1
export GIT_SSH_COMMAND={command}
export GIT_TERMINAL_PROMPT=0
exec git "$@"
"#,
            command = sh_quote(&format!("ssh {ssh_args}"))
        ),
        SshTool::Ssh | SshTool::Scp | SshTool::Sftp => format!(
            r#"#!/bin/bash
# lava connection helper ({program}): {program} with the connection's key.
exec {program} {ssh_args} "$@"
"#
        ),
    };
    Helper {
        script_name: program,
        script,
        dirs: Vec::new(),
        files: vec![(PathBuf::from("ssh.pem"), access.key.clone().into_bytes())],
    }
}

/// The options every `ssh` of the helper gets, each a shell word.
fn ssh_arguments(dir: &Path, access: &SshAccess) -> Vec<String> {
    let known_hosts = dir.join("known_hosts").display().to_string();
    let defaults = [
        "StrictHostKeyChecking=accept-new".to_string(),
        format!("UserKnownHostsFile={known_hosts}"),
        "IdentitiesOnly=yes".to_string(),
        "BatchMode=yes".to_string(),
    ];
    let mut words = Vec::new();
    for option in access.options.iter().chain(&defaults) {
        words.push("-o".to_string());
        words.push(sh_quote(option));
    }
    words.push("-i".to_string());
    words.push(sh_quote(&dir.join("ssh.pem").display().to_string()));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_options_come_first_and_the_key_is_a_file() {
        let access = SshAccess {
            key: "KEY\n".into(),
            options: vec!["Port=2222".into(), "User=it's".into()],
        };
        let dir = Path::new("/j/conn.x");
        let h = helper(dir, SshTool::Scp, &access);
        assert_eq!(h.script_name, "scp");
        assert!(
            h.script.contains(
                "exec scp -o 'Port=2222' -o 'User=it'\"'\"'s' -o 'StrictHostKeyChecking=accept-new' \
                 -o 'UserKnownHostsFile=/j/conn.x/known_hosts' -o 'IdentitiesOnly=yes' \
                 -o 'BatchMode=yes' -i '/j/conn.x/ssh.pem' \"$@\""
            ),
            "{}",
            h.script
        );
        assert!(!h.script.contains("KEY"));
        assert_eq!(h.files, vec![(PathBuf::from("ssh.pem"), b"KEY\n".to_vec())]);
    }

    #[test]
    fn git_gets_its_ssh_through_the_environment() {
        let access = SshAccess {
            key: "KEY\n".into(),
            options: vec!["Port=2222".into()],
        };
        let h = helper(Path::new("/j/c"), SshTool::Git, &access);
        assert_eq!(h.script_name, "git");
        // The variable's value, as the shell sets it, is one ssh command.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{}\nprintf %s \"$GIT_SSH_COMMAND\"",
                h.script
                    .lines()
                    .filter(|l| l.starts_with("export"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert_eq!(
            out,
            "ssh -o 'Port=2222' -o 'StrictHostKeyChecking=accept-new' \
             -o 'UserKnownHostsFile=/j/c/known_hosts' -o 'IdentitiesOnly=yes' \
             -o 'BatchMode=yes' -i '/j/c/ssh.pem'"
        );
        assert!(h.script.contains("exec git \"$@\""));
    }
}
