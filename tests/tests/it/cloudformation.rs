//! The CloudFormation templates (issue #7):
//! `cfn-lint` finds nothing, and the common, realm and worker stacks reach
//! `CREATE_COMPLETE` in moto with the tables, queues, keys, policies and
//! user data they should make (`tests/cloudformation/check_stacks.py`, run
//! by the venv's Python with an in-process moto of its own).

use std::path::PathBuf;
use std::process::Stdio;

use lava_tests::{output, stderr, stdout};
use tokio::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv interpreter (with moto and cfn-lint).
fn python() -> Command {
    let python = std::env::var_os("LAVA_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: .ci/run creates the venv from tests/requirements.txt (or set LAVA_COMPAT_PYTHON)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.current_dir(root())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn templates() -> Vec<PathBuf> {
    ["lava-common.yaml", "lava-realm.yaml", "lava-worker.yaml"]
        .iter()
        .map(|t| root().join("cloudformation").join(t))
        .collect()
}

#[tokio::test]
async fn templates_pass_cfn_lint() {
    let out = output(
        python()
            .args([
                "-c",
                "import sys; from cfnlint.runner import main; sys.exit(main())",
                "--include-checks",
                "I",
                "--",
            ])
            .args(templates()),
    )
    .await;
    assert!(
        out.status.success(),
        "cfn-lint ({:?}):\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
}

#[tokio::test]
async fn stacks_create_in_moto() {
    let out = output(
        python()
            .arg(root().join("tests/cloudformation/check_stacks.py"))
            .arg(root().join("cloudformation")),
    )
    .await;
    assert!(
        out.status.success(),
        "check_stacks.py ({:?}):\n{}",
        out.status,
        stderr(&out)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("JSON summary");
    for stack in ["lava-common", "lava-cfnrealm", "lava-cfnrealm-core-1"] {
        assert_eq!(summary["stacks"][stack], "CREATE_COMPLETE", "{summary}");
    }
}
