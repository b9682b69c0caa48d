//! Connections end to end, on either backend: secrets stored with
//! `lava-realm secret`, `exe` payloads that use the `generic` and `aws`
//! connection helpers (STS on the emulator), and connections that fail a
//! run, never the worker. Secrets must not reach the events item or the
//! worker's log.

use std::process::Stdio;

use lava_tests::{TestRealm, lava, output, stderr, stdout};
use serde_json::{Value, json};

fn job(job_id: &str, payload: &str, connections: Value) -> Value {
    json!({"job_id": job_id, "type": "exe", "worker": "core", "payload": payload,
           "enabled": true, "owner": "tests", "description": "connections test",
           "parameters": {"connections": connections}})
}

/// `lava-realm secret …` for the test's realm.
fn secret_cmd(t: &TestRealm, args: &[&str]) -> tokio::process::Command {
    let mut cmd = lava("lava-realm");
    cmd.args(["-r", &t.name, "secret"]).args(args);
    cmd
}

fn sha256(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `key=value` lines of a payload's stdout.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in:\n{text}"))
}

/// The payload: reads a secret attribute through the generic helper, checks
/// the helpers' modes and that no script holds a secret, and calls STS
/// through the aws helper (the AWS CLI, or boto3 with the helper's config
/// file when the CLI is not installed).
const CHECK: &str = r#"#!/bin/bash
set -u
pw=$("$LAVA_CONN_ATTRS" password)
echo "user=$("$LAVA_CONN_ATTRS" user)"
echo "pw_sha=$(printf %s "$pw" | sha256sum | cut -d' ' -f1)"
echo "connid=$LAVA_CONNID_ATTRS"
echo "backend=$LAVA_BACKEND"
dir=$(dirname "$LAVA_CONN_ATTRS")
echo "dir=$dir"
echo "modes=$(stat -c %a "$dir" "$LAVA_CONN_ATTRS" "$dir/values" "$dir/values/password" | tr '\n' ' ')"
keys=$(dirname "$LAVA_CONN_KEYS")/.aws_config
echo "keymodes=$(stat -c %a "$LAVA_CONN_KEYS" "$keys" | tr '\n' ' ')"
if grep -qF -- "$pw" "$LAVA_CONN_ATTRS" "$LAVA_CONN_KEYS" "$LAVA_CONN_ROLE"; then echo "leak=yes"; else echo "leak=no"; fi
echo "key_sha=$(sed -n 's/^aws_secret_access_key=//p' "$keys" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
"$LAVA_CONN_ATTRS" nope 2>/dev/null; echo "nope=$?"
if command -v aws >/dev/null 2>&1; then
  echo "arn=$("$LAVA_CONN_ROLE" sts get-caller-identity --query Arn --output text)"
else
  cfg=$(dirname "$LAVA_CONN_ROLE")/.aws_config
  echo "arn=$(AWS_CONFIG_FILE=$cfg "$PY" -c 'import boto3; print(boto3.Session(profile_name="lava").client("sts").get_caller_identity()["Arn"])')"
fi
"#;

#[tokio::test]
async fn exe_helpers_read_a_secret_and_call_sts() {
    let t = TestRealm::new(&["core"]).await;
    let realm = &t.name;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let password = format!("pw-{unique}");
    let secret_key = format!("sk-{unique}");
    t.put_secret(&format!("/lava/{realm}/pw"), &password).await;
    t.put_secret(
        &format!("/lava/{realm}/keys"),
        &format!("AKIATESTKEY,{secret_key}"),
    )
    .await;
    // The CLI reads it back, and lists it under the realm's prefix.
    let got = output(&mut secret_cmd(&t, &["get", &format!("/lava/{realm}/pw")])).await;
    assert_eq!(stdout(&got), format!("{password}\n"), "{}", stderr(&got));
    let listed = output(&mut secret_cmd(&t, &["list"])).await;
    assert_eq!(
        stdout(&listed),
        format!("/lava/{realm}/keys\n/lava/{realm}/pw\n"),
        "{}",
        stderr(&listed)
    );

    t.put_connection(json!({"conn_id": "attrs/main", "type": "generic", "enabled": true,
        "attributes": {"user": "bob", "password": {"type": "ssm", "parameter": format!("/lava/{realm}/pw")}}}))
    .await;
    t.put_connection(json!({"conn_id": "keys", "type": "aws", "enabled": true,
        "access_keys": format!("/lava/{realm}/keys"), "region": "us-east-1"}))
        .await;
    t.put_connection(json!({"conn_id": "role", "type": "aws", "enabled": true,
        "role_arn": "arn:aws:iam::123456789012:role/lava-test", "duration": "1h"}))
        .await;
    t.put_payload("conn/check.sh", CHECK.as_bytes().to_vec())
        .await;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let mut item = job(
        "conn/check",
        "conn/check.sh",
        json!({"attrs": "attrs/main", "keys": "keys", "Role": "role"}),
    );
    item["parameters"]["env"] = json!({"PY": python.display().to_string()});
    t.put_job(item).await;
    let run_id = t.dispatch_job("conn/check", &[]).await;
    let worker = t.run_worker("core", &["--level", "debug"]).await;
    t.assert_statuses("conn/check", &run_id, &["starting", "running", "complete"])
        .await;

    let s3tmp = format!("{}/conn/check/{run_id}", t.realm.s3_temp());
    let out = t.object(&format!("{s3tmp}/check.sh.stdout")).await;
    assert_eq!(field(&out, "user"), "bob");
    assert_eq!(field(&out, "pw_sha"), sha256(&password));
    assert_eq!(field(&out, "connid"), "attrs/main");
    assert_eq!(
        field(&out, "backend"),
        lava_tests::suite_backend().to_string()
    );
    assert_eq!(field(&out, "modes").trim(), "700 700 700 600");
    assert_eq!(field(&out, "keymodes").trim(), "700 600");
    assert_eq!(field(&out, "leak"), "no");
    assert_eq!(field(&out, "key_sha"), sha256(&secret_key));
    assert_eq!(field(&out, "nope"), "1");
    assert_eq!(
        field(&out, "arn"),
        format!("arn:aws:sts::123456789012:assumed-role/lava-test/lv-{realm}-conn.check")
    );
    // The helpers are gone with the run.
    let dir = field(&out, "dir");
    assert!(dir.contains("/conn."), "{dir}");
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");

    // No secret in the events item or the worker's log.
    let events =
        Value::Object(t.events("conn/check", &run_id).await.unwrap_or_default()).to_string();
    let log = stderr(&worker);
    for secret in [&password, &secret_key] {
        assert!(
            !events.contains(secret.as_str()),
            "secret in the events item: {events}"
        );
        assert!(!log.contains(secret.as_str()), "secret in the worker's log");
    }
}

#[tokio::test]
async fn bad_connections_fail_the_run_not_the_worker() {
    let t = TestRealm::new(&["core"]).await;
    let realm = &t.name;
    t.put_connection(
        json!({"conn_id": "off", "type": "generic", "enabled": false, "attributes": {}}),
    )
    .await;
    t.put_connection(
        json!({"conn_id": "absent", "type": "generic", "enabled": true,
        "attributes": {"password": {"type": "ssm", "parameter": format!("/lava/{realm}/absent")}}}),
    )
    .await;
    t.put_connection(json!({"conn_id": "keyless", "type": "aws", "enabled": true,
        "access_keys": format!("/lava/{realm}/nokeys")}))
        .await;
    t.put_connection(json!({"conn_id": "shell", "type": "ssh", "enabled": true, "ssh_key": "/k"}))
        .await;
    t.put_connection(json!({"conn_id": "share", "type": "smb", "enabled": true}))
        .await;
    t.put_connection(
        json!({"conn_id": "opts", "type": "scp", "enabled": true, "ssh_key": "/k",
               "ssh_options": "Port=22"}),
    )
    .await;
    t.put_connection(json!({"conn_id": "typo", "type": "gneric", "enabled": true}))
        .await;
    t.put_connection(json!({"conn_id": "box", "type": "docker", "enabled": true}))
        .await;
    let cases = [
        (
            "c/missing",
            json!({"db": "nope"}),
            "nope: No such connection".to_string(),
        ),
        (
            "c/disabled",
            json!({"db": "off"}),
            "Connection off: Not enabled".to_string(),
        ),
        (
            "c/no-param",
            json!({"db": "absent"}),
            format!(
                "Connection absent: attributes.password: SSM parameter /lava/{realm}/absent not found"
            ),
        ),
        (
            "c/no-keys",
            json!({"cloud": "keyless"}),
            format!(
                "Connection keyless: access_keys: SSM parameter /lava/{realm}/nokeys not found"
            ),
        ),
        (
            "c/ssh",
            json!({"s": "shell"}),
            "Connection shell: ssh_key: SSM parameter /k not found".to_string(),
        ),
        (
            "c/ssh-options",
            json!({"s": "opts"}),
            "Connection opts: ssh_options: must be a list of strings".to_string(),
        ),
        (
            "c/smb",
            json!({"s": "share"}),
            "share: Unsupported connection type - smb: not supported by this worker yet"
                .to_string(),
        ),
        (
            "c/typo",
            json!({"s": "typo"}),
            "typo: Unsupported connection type - gneric".to_string(),
        ),
        (
            "c/docker",
            json!({"s": "box"}),
            "box: Unsupported connection type - docker".to_string(),
        ),
        (
            "c/label",
            json!({"a-b": "off"}),
            "Bad connection label: a-b".to_string(),
        ),
        (
            "c/not-map",
            json!(["off"]),
            "connections parameter must be a map".to_string(),
        ),
    ];
    t.put_payload("conn/never.sh", b"#!/bin/sh\necho ran\n".to_vec())
        .await;
    let mut runs = Vec::new();
    for (job_id, connections, _) in &cases {
        t.put_job(job(job_id, "conn/never.sh", connections.clone()))
            .await;
        runs.push(t.dispatch_job(job_id, &[]).await);
    }
    t.run_worker("core", &[]).await;
    for ((job_id, _, want), run_id) in cases.iter().zip(&runs) {
        let log = t.log(job_id, run_id).await;
        assert_eq!(
            log.last().map(|e| e["status"].clone()),
            Some(json!("failed")),
            "{job_id}: {log:#?}"
        );
        assert_eq!(
            log.last().map(|e| e["info"]["error"].clone()),
            Some(json!(want)),
            "{job_id}"
        );
    }
}

/// A `pkg` bundle gets the same helpers as an `exe` payload.
#[tokio::test]
async fn pkg_bundles_get_connection_helpers() {
    let t = TestRealm::new(&["core"]).await;
    t.put_connection(
        json!({"conn_id": "attrs", "type": "generic", "enabled": true,
        "attributes": {"user": "pkg-user", "port": 5432}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.path().join("src/bin");
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        src.join("run.sh"),
        "#!/bin/sh\necho \"user=$(\"$LAVA_CONN_A\" user) port=$(\"$LAVA_CONN_A\" port) id=$LAVA_CONNID_A\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bundle = dir.path().join("bundle.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&bundle)
        .arg("-C")
        .arg(dir.path().join("src"))
        .arg("bin")
        .status();
    assert!(status.is_ok_and(|s| s.success()), "tar failed");
    t.put_payload(
        "conn/bundle.tar.gz",
        std::fs::read(&bundle).unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    t.put_job(
        json!({"job_id": "conn/pkg", "type": "pkg", "worker": "core",
        "payload": "conn/bundle.tar.gz", "enabled": true, "owner": "tests", "description": "pkg",
        "parameters": {"command": "bin/run.sh", "connections": {"a": "attrs"}}}),
    )
    .await;
    let run_id = t.dispatch_job("conn/pkg", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("conn/pkg", &run_id, &["starting", "running", "complete"])
        .await;
    let s3tmp = format!("{}/conn/pkg/{run_id}", t.realm.s3_temp());
    assert_eq!(
        t.object(&format!("{s3tmp}/bundle.tar.gz.stdout")).await,
        "user=pkg-user port=5432 id=attrs\n"
    );
}

/// The secrets seam on the emulator: SSM SecureString written and read back
/// decrypted, Secrets Manager secrets created then updated, listing by
/// prefix, and missing names reported as such.
#[tokio::test]
async fn aws_secrets_seam_on_the_emulator() {
    use lava_common::store::{BackendSpec, SecretValue, StoreError, connect_secrets};
    lava_tests::endpoint();
    let secrets = connect_secrets(&BackendSpec::Aws, None).await;
    let prefix = format!("/lava/{}/", lava_tests::unique("s"));
    let name = format!("{prefix}pw");
    assert_eq!(
        secrets.parameter(&name).await,
        Err(StoreError::SecretNotFound(name.clone()))
    );
    for value in ["first", "second"] {
        if let Err(e) = secrets.put_parameter(&name, value, None).await {
            panic!("put {name}: {e}");
        }
        assert_eq!(secrets.parameter(&name).await, Ok(value.to_string()));
    }
    assert_eq!(
        secrets.list_parameters(&prefix).await,
        Ok(vec![name.clone()])
    );

    let id = format!("{prefix}db");
    assert_eq!(
        secrets.secret(&id).await,
        Err(StoreError::SecretNotFound(id.clone()))
    );
    for value in [r#"{"username": "a"}"#, r#"{"username": "b"}"#] {
        if let Err(e) = secrets.put_secret(&id, value).await {
            panic!("put {id}: {e}");
        }
        assert_eq!(
            secrets.secret(&id).await,
            Ok(SecretValue::Text(value.into()))
        );
    }
    assert_eq!(secrets.list_secrets(&prefix).await, Ok(vec![id.clone()]));
}

/// Runs a command that must succeed (test set-up).
fn run_ok(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An `sshd` of Debian's openssh-server on a free loopback port, with a
/// throwaway host key, taking the key of `user_key.pub` in `dir`.
fn start_sshd(dir: &std::path::Path) -> (lava_tests::procs::Background, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let d = dir.display();
    run_ok(std::process::Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        &format!("{d}/host_key"),
    ]));
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys"))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap_or_else(|e| panic!("{e}"));
    // Privilege separation needs its directory (made at boot on a host).
    std::fs::create_dir_all("/run/sshd").unwrap_or_else(|e| panic!("/run/sshd: {e}"));
    let mut cmd = tokio::process::Command::new("/usr/sbin/sshd");
    cmd.args(["-D", "-e", "-f", &format!("{d}/sshd_config")]);
    (lava_tests::procs::Background::start(cmd), port)
}

/// The `ssh`, `scp`, `sftp` and `git` helpers against a real sshd: a
/// payload runs a remote command, copies a file there and back, and clones
/// a repository, with a key stored on one line (commas for line breaks).
#[tokio::test]
async fn ssh_family_helpers_reach_a_real_sshd() {
    let sshd = std::path::Path::new("/usr/sbin/sshd");
    let root = nix::unistd::Uid::effective().is_root();
    if !lava_tests::prerequisite(
        sshd.exists() && root,
        "the ssh helper test needs root and openssh-server (/usr/sbin/sshd)",
    ) {
        return;
    }
    let t = TestRealm::new(&["core"]).await;
    let realm = &t.name;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path().display().to_string();
    run_ok(std::process::Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        &format!("{d}/user_key"),
    ]));
    let (mut server, port) = start_sshd(dir.path());
    lava_tests::procs::wait_for(
        "sshd to listen",
        std::time::Duration::from_secs(30),
        || async move {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        },
    )
    .await;
    // A bare repository with one commit, to clone over ssh.
    let git = |args: &[&str]| {
        run_ok(
            std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args),
        );
    };
    git(&["init", "-q", "--bare", &format!("{d}/repo.git")]);
    git(&["init", "-q", &format!("{d}/work")]);
    std::fs::write(dir.path().join("work/README"), "cloned over ssh\n")
        .unwrap_or_else(|e| panic!("{e}"));
    git(&["-C", &format!("{d}/work"), "add", "README"]);
    git(&["-C", &format!("{d}/work"), "commit", "-q", "-m", "one"]);
    git(&[
        "-C",
        &format!("{d}/work"),
        "push",
        "-q",
        &format!("{d}/repo.git"),
        "HEAD:main",
    ]);

    let key =
        std::fs::read_to_string(dir.path().join("user_key")).unwrap_or_else(|e| panic!("{e}"));
    t.put_secret(
        &format!("/lava/{realm}/ssh"),
        &key.trim_end().replace('\n', ","),
    )
    .await;
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into());
    for conn_type in ["ssh", "scp", "sftp", "git"] {
        t.put_connection(
            json!({"conn_id": format!("box/{conn_type}"), "type": conn_type, "enabled": true,
                   "ssh_key": format!("/lava/{realm}/ssh"),
                   "ssh_options": [format!("Port={port}"), format!("User={user}")]}),
        )
        .await;
    }
    let script = format!(
        "#!/bin/sh\nset -e\n\
         \"$LAVA_CONN_SSH\" 127.0.0.1 'echo remote-$((6*7))'\n\
         echo copied > local.txt\n\
         \"$LAVA_CONN_SCP\" -q local.txt 127.0.0.1:{d}/copied.txt\n\
         echo 'get {d}/copied.txt fetched.txt' | \"$LAVA_CONN_SFTP\" -q -b - 127.0.0.1 >/dev/null\n\
         echo \"fetched $(cat fetched.txt)\"\n\
         \"$LAVA_CONN_GIT\" clone -q 127.0.0.1:{d}/repo.git clone\n\
         cat clone/README\n"
    );
    t.put_payload("conn/ssh.sh", script.into_bytes()).await;
    t.put_job(job(
        "conn/ssh",
        "conn/ssh.sh",
        json!({"ssh": "box/ssh", "scp": "box/scp", "sftp": "box/sftp", "git": "box/git"}),
    ))
    .await;
    let run_id = t.dispatch_job("conn/ssh", &[]).await;
    let worker = t.run_worker("core", &[]).await;
    let log = t.log("conn/ssh", &run_id).await;
    server.stop().await;
    assert_eq!(
        log.iter().map(|e| e["status"].clone()).collect::<Vec<_>>(),
        vec![json!("starting"), json!("running"), json!("complete")],
        "{log:?}\n{}",
        stderr(&worker)
    );
    let s3tmp = format!("{}/conn/ssh/{run_id}", t.realm.s3_temp());
    assert_eq!(
        t.object(&format!("{s3tmp}/ssh.sh.stdout")).await,
        "remote-42\nfetched copied\ncloned over ssh\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("copied.txt"))
            .ok()
            .as_deref(),
        Some("copied\n")
    );
    let events = Value::Object(t.events("conn/ssh", &run_id).await.unwrap_or_default()).to_string();
    let secret_line = key.lines().nth(1).unwrap_or("none");
    assert!(!events.contains(secret_line), "the key in the events item");
    assert!(
        !stderr(&worker).contains(secret_line),
        "the key in the worker's log"
    );
}
