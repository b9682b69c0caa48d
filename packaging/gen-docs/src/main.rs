//! `lava-gen-docs OUT_DIR`: writes the man pages (`OUT_DIR/man/*.1`, one per
//! command and subcommand) and the bash, zsh and fish completions
//! (`OUT_DIR/completions/{bash,zsh,fish}/`) of the seven lava commands, from
//! the same clap definitions the binaries parse. `packaging/build` runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// The packaged commands, as their binaries define them.
fn commands() -> Vec<Command> {
    vec![
        lava_worker::cli::Args::command(),
        lava_dispatcher::dispatch_cli::Args::command(),
        lava_dispatcher::crontab::cli::Args::command(),
        lava_dispatcher::realm_cli::Args::command(),
        lava_dispatcher::state_cli::Args::command(),
        lava_worker::email_cli::Args::command(),
        lava_worker::slack_cli::Args::command(),
    ]
}

/// Where the completion script of `name` goes under `dir`, per shell.
fn completion_file(dir: &Path, shell: Shell, name: &str) -> PathBuf {
    match shell {
        Shell::Zsh => dir.join(format!("_{name}")),
        Shell::Fish => dir.join(format!("{name}.fish")),
        _ => dir.join(name),
    }
}

fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        // One page per command and per subcommand (lava-crontab-sync.1, …).
        clap_mangen::generate_to(cmd.clone(), &man)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let dir = out.join("completions").join(shell.to_string());
            std::fs::create_dir_all(&dir)?;
            let path = completion_file(&dir, shell, &name);
            let mut file = std::fs::File::create(&path)?;
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut file);
            written.push(path);
        }
    }
    for entry in std::fs::read_dir(&man)? {
        written.push(entry?.path());
    }
    written.sort();
    Ok(written)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: lava-gen-docs OUT_DIR");
        return ExitCode::from(64);
    };
    match generate(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lava-gen-docs: {e}");
            ExitCode::from(73)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_page_and_three_completions_per_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = generate(dir.path()).expect("generate");
        for name in [
            "lava-worker",
            "lava-dispatch",
            "lava-crontab",
            "lava-realm",
            "lava-state",
            "lava-email",
            "lava-slack",
        ] {
            for file in [
                format!("man/{name}.1"),
                format!("completions/bash/{name}"),
                format!("completions/zsh/_{name}"),
                format!("completions/fish/{name}.fish"),
            ] {
                assert!(files.contains(&dir.path().join(&file)), "{file}");
                assert!(dir.path().join(&file).is_file(), "{file}");
            }
        }
        assert!(dir.path().join("man/lava-crontab-sync.1").is_file());
        assert!(dir.path().join("man/lava-state-put.1").is_file());
    }
}
