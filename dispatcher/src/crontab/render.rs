//! Crontab text, pure: shell quoting as the original does it, the `%`
//! escape cron needs, the checks that keep a value on its own line, and
//! the shape of env lines, schedule lines and the lava block.

/// The line that opens lava's block.
pub const START: &str = "#### Lava Schedules Start ####";
/// The line that closes lava's block.
pub const END: &str = "#### Lava Schedules End ####";

/// What cron's command field may hold at most (Debian's cron truncates
/// longer commands: `MAX_COMMAND` is 1000 bytes with the final NUL).
pub const MAX_COMMAND: usize = 999;

/// Quotes a token for `sh` as Python's `shlex.quote` does: bare when
/// non-empty and made only of `[A-Za-z0-9_@%+=:,./-]`, else in single
/// quotes with each `'` written `'"'"'`.
pub fn quote(token: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b);
    if !token.is_empty() && token.bytes().all(safe) {
        token.to_string()
    } else {
        format!("'{}'", token.replace('\'', "'\"'\"'"))
    }
}

/// Writes every `%` as `\%`: cron turns a bare `%` into a newline and
/// feeds the rest of the line to the command's stdin.
pub fn escape_percent(command: &str) -> String {
    command.replace('%', "\\%")
}

/// Checks a token that goes into a command: no control characters (a
/// newline would end the crontab line), and no `\` before a `%` (cron
/// would read `\\%` as a backslash and a bare `%`).
pub fn check_token(token: &str) -> Result<(), String> {
    if let Some(c) = token.chars().find(|c| c.is_control()) {
        return Err(format!("control character {c:?} in {token:?}"));
    }
    if token.contains("\\%") {
        return Err(format!(
            "a backslash before % cannot be written in a crontab: {token:?}"
        ));
    }
    Ok(())
}

/// Checks an env line's name (`[A-Za-z_][A-Za-z0-9_]*`) and value (no
/// control characters).
pub fn check_env(name: &str, value: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let good_name = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !good_name {
        return Err(format!("bad env name {name:?}: use letters, digits and _"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("env {name}: control character {c:?} in the value"));
    }
    Ok(())
}

/// An env line, written raw as the original does: `NAME=value`.
pub fn env_line(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

/// True when dispatcher arguments already choose a log level (`--level`,
/// `--level=…`, `-l`, `-lwarning`, or `l` in a cluster of short flags).
pub fn sets_level(args: &[String]) -> bool {
    args.iter().any(|arg| {
        if arg == "--level" || arg.starts_with("--level=") {
            return true;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.starts_with('-')) else {
            return false;
        };
        // Flags of lava-dispatch that take a value end the cluster.
        for c in cluster.chars() {
            match c {
                'l' => return true,
                'r' | 'w' | 'q' | 'd' | 'p' | 'g' => return false,
                _ => {}
            }
        }
        false
    })
}

/// The command part of a schedule line: `<dispatcher> --worker <w>
/// --check-dispatch [--level warning] <args…> -- <job_id> >/dev/null`,
/// every token quoted and every `%` escaped. The `--` keeps a job id that
/// starts with `-` from being taken for an option. `args` must already be
/// free of `--check-dispatch`.
pub fn command(dispatcher: &str, worker: &str, args: &[String], job_id: &str) -> String {
    let mut tokens: Vec<&str> = vec![dispatcher, "--worker", worker, "--check-dispatch"];
    if !sets_level(args) {
        tokens.extend(["--level", "warning"]);
    }
    tokens.extend(args.iter().map(String::as_str));
    tokens.extend(["--", job_id]);
    let quoted: Vec<String> = tokens.iter().map(|t| quote(t)).collect();
    escape_percent(&format!("{} >/dev/null", quoted.join(" ")))
}

/// The block: markers around env lines and schedule lines, each ending in `\n`.
pub fn block<'a>(
    env: impl IntoIterator<Item = &'a String>,
    lines: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut text = String::new();
    for line in std::iter::once(START)
        .chain(env.into_iter().map(String::as_str))
        .chain(lines.into_iter().map(String::as_str))
        .chain(std::iter::once(END))
    {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quoting_matches_shlex() {
        assert_eq!(quote("etl/load-sales"), "etl/load-sales");
        assert_eq!(quote("a_b@c%d+e=f:g,h.i/j-k"), "a_b@c%d+e=f:g,h.i/j-k");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(quote("$(touch x)"), "'$(touch x)'");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote("é"), "'é'");
    }

    #[test]
    fn a_job_id_like_an_option_comes_after_the_separator() {
        let cmd = command("/usr/bin/lava-dispatch", "core", &[], "-rf");
        assert!(cmd.ends_with(" -- -rf >/dev/null"), "{cmd}");
    }

    #[test]
    fn percent_is_escaped_everywhere() {
        assert_eq!(escape_percent("a 50%off '%'"), "a 50\\%off '\\%'");
        let cmd = command("/usr/bin/lava-dispatch", "core", &[], "50%off");
        assert_eq!(
            cmd,
            "/usr/bin/lava-dispatch --worker core --check-dispatch --level warning -- 50\\%off >/dev/null"
        );
    }

    #[test]
    fn tokens_stay_on_their_line() {
        assert!(check_token("a\nb").is_err());
        assert!(check_token("a\rb").is_err());
        assert!(check_token("a\tb").is_err());
        assert!(check_token("a\u{7f}").is_err());
        assert!(check_token("a\\%b").is_err());
        assert!(check_token("a\\b%c 'it's' $(x) `y`").is_ok());
        assert!(check_env("PATH", "/bin:/usr/bin").is_ok());
        assert!(check_env("_X1", " spaced %value ").is_ok());
        assert!(check_env("1X", "v").is_err());
        assert!(check_env("A-B", "v").is_err());
        assert!(check_env("", "v").is_err());
        assert!(check_env("A", "x\ny").is_err());
    }

    #[test]
    fn level_is_added_unless_set() {
        assert!(!sets_level(&strings(&["--check-dispatch", "-c"])));
        assert!(!sets_level(&strings(&["-p", "x=l"])));
        assert!(!sets_level(&strings(&["-pl=1"])));
        for set in [
            &["--level", "info"][..],
            &["--level=info"],
            &["-l", "info"],
            &["-linfo"],
            &["-cl", "info"],
        ] {
            assert!(sets_level(&strings(set)), "{set:?}");
        }
        let cmd = command(
            "lava-dispatch",
            "w",
            &strings(&["--level", "info", "-d", "5m"]),
            "j",
        );
        assert_eq!(
            cmd,
            "lava-dispatch --worker w --check-dispatch --level info -d 5m -- j >/dev/null"
        );
    }

    #[test]
    fn block_shape() {
        let env = strings(&["LAVA_REALM=prod"]);
        let lines = strings(&["@daily x"]);
        assert_eq!(
            block(&env, &lines),
            format!("{START}\nLAVA_REALM=prod\n@daily x\n{END}\n")
        );
    }
}
