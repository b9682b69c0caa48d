//! The `generic` helper `get-attr-value`: each attribute's value is the
//! file `values/<name>` (0600, in a 0700 directory), written as the
//! original writes it (`True`/`False`, `None`); the script prints the one
//! named by its only argument, with no newline added.

use std::path::{Path, PathBuf};

use lava_common::connection::generic::{Attributes, python_text};

use super::{Helper, sh_quote};

/// The helper of a `generic` connection whose attributes are resolved.
pub(super) fn helper(dir: &Path, attributes: &Attributes) -> Helper {
    let values = dir.join("values");
    let script = format!(
        r#"#!/bin/bash
# lava connection helper (generic): prints the value of one attribute.
if [ $# -ne 1 ]; then
    echo "Usage: get-attr-value attribute-name" >&2
    exit 1
fi
case "$1" in
    [a-zA-Z]*) ;;
    *) echo "$1: No such parameter" >&2; exit 1 ;;
esac
case "$1" in
    */*) echo "$1: No such parameter" >&2; exit 1 ;;
esac
value={values}/"$1"
if [ ! -f "$value" ]; then
    echo "$1: No such parameter" >&2
    exit 1
fi
exec cat -- "$value"
"#,
        values = sh_quote(&values.display().to_string())
    );
    Helper {
        script_name: "get-attr-value",
        script,
        dirs: vec![PathBuf::from("values")],
        files: attributes
            .iter()
            .map(|(name, value)| {
                (
                    Path::new("values").join(name),
                    python_text(value).into_bytes(),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(script: &Path, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_helper_prints_one_value() {
        let job = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = job.path().join("conn.g");
        let attributes: Attributes = [
            ("user".to_string(), json!("bob")),
            ("flag".to_string(), json!(false)),
            ("password".to_string(), json!("hunter2")),
        ]
        .into_iter()
        .collect();
        let helper = helper(&dir, &attributes);
        assert!(
            !helper.script.contains("hunter2"),
            "no secret in the script"
        );
        super::super::write_helper(&dir, &helper).unwrap_or_else(|e| panic!("{e}"));
        let script = dir.join("get-attr-value");
        assert_eq!(run(&script, &["user"]), (0, "bob".into(), String::new()));
        assert_eq!(run(&script, &["flag"]).1, "False");
        assert_eq!(run(&script, &["password"]).1, "hunter2");
        let (code, out, err) = run(&script, &["nope"]);
        assert_eq!(
            (code, out.as_str(), err.trim()),
            (1, "", "nope: No such parameter")
        );
        assert_eq!(run(&script, &["../../etc/passwd"]).0, 1);
        assert_eq!(run(&script, &["a/../user"]).0, 1);
        let (code, _, err) = run(&script, &[]);
        assert_eq!(code, 1);
        assert!(err.starts_with("Usage: "), "{err}");
        assert_eq!(run(&script, &["user", "flag"]).0, 1);
    }
}
