//! The packages (issue #7): `packaging/build` makes the .deb and the .rpm;
//! the .deb is installed on this host (files, user, tmpfiles, conffiles,
//! `systemd-analyze verify`), its worker runs as the unit runs it (user
//! lava, the env files, `/usr/bin/lava-worker` with no arguments, a notify
//! socket) and completes a job on the emulator, the crontab unit's shell
//! line installs a crontab, and the package is removed and purged. The .rpm
//! is inspected with `rpm -qp`. Needs root, dpkg, rpm and systemd-analyze:
//! under CI (`CI=true`) a missing one fails the test; elsewhere it says so
//! and passes.
//!
//! Serial (`.config/nextest.toml`, group `packaging`). `tests/run` runs it
//! in a stage of its own after the suite, with `LAVA_PACKAGE_PROFILE=package-test`
//! and `LAVA_PACKAGE_BINARIES` naming its build stage's binaries, so
//! `packaging/build` packages those (stripped, compressed fast) instead of
//! making an optimised build.

use std::collections::BTreeMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use lava_tests::{TestRealm, stderr, stdout, unique};
use tokio::process::Command;

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command to completion (no timeout: builds are slow) and returns
/// its output, panicking with its stderr when it fails.
fn run_ok(cmd: &mut StdCommand) -> String {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(script: &str) -> String {
    run_ok(StdCommand::new("sh").args(["-c", script]))
}

fn installed(package: &str) -> bool {
    StdCommand::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
        .unwrap_or(false)
}

/// Whether this host can install packages (root, dpkg, rpm,
/// systemd-analyze): under CI it must; elsewhere the test says what is
/// missing and passes without running.
fn can_install() -> bool {
    let mut missing = Vec::new();
    if sh("id -u").trim() != "0" {
        missing.push("root".to_string());
    }
    for tool in ["dpkg", "rpm", "systemd-analyze"] {
        let found = StdCommand::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            missing.push(tool.to_string());
        }
    }
    lava_tests::prerequisite(
        missing.is_empty(),
        &format!(
            "the packaging test needs root, dpkg, rpm and systemd-analyze; missing: {}",
            missing.join(", ")
        ),
    )
}

/// Runs packaging/build once and returns the two package files.
fn build_packages() -> (PathBuf, PathBuf) {
    let started = Instant::now();
    let log = lava_tests::target_dir().join("packaging-build.log");
    let status = StdCommand::new(root().join("packaging/build"))
        .current_dir(root())
        .stdout(std::fs::File::create(&log).expect("build log"))
        .stderr(std::fs::File::create(log.with_extension("err")).expect("build log"))
        .status()
        .expect("run packaging/build");
    let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
    assert!(status.success(), "packaging/build failed: {err}");
    eprintln!("packaging/build took {:?}", started.elapsed());
    let listed = std::fs::read_to_string(&log).unwrap_or_default();
    let find = |suffix: &str| {
        listed
            .lines()
            .find(|l| l.ends_with(suffix))
            .map(|l| root().join(l))
            .unwrap_or_else(|| panic!("packaging/build listed no *{suffix}: {listed}"))
    };
    (find(".deb"), find(".x86_64.rpm"))
}

/// What both packages install (besides directories).
fn expected_files(units: &str) -> Vec<String> {
    let commands = [
        "lava-worker",
        "lava-dispatch",
        "lava-crontab",
        "lava-realm",
        "lava-state",
        "lava-email",
        "lava-slack",
    ];
    let mut files: Vec<String> = commands.iter().map(|c| format!("/usr/bin/{c}")).collect();
    files.push("/usr/bin/lava-dispatcher".into());
    for unit in [
        "lava-worker@.service",
        "lava-crontab@.service",
        "lava-crontab@.timer",
    ] {
        files.push(format!("{units}/{unit}"));
    }
    files.push("/usr/lib/tmpfiles.d/lava.conf".into());
    files.push("/etc/lava/lava.env".into());
    files.push("/etc/lava/worker-example.env".into());
    for page in commands
        .iter()
        .chain(&["lava-crontab-sync", "lava-realm-create", "lava-state-put"])
    {
        files.push(format!("/usr/share/man/man1/{page}.1.gz"));
    }
    for c in commands {
        files.push(format!("/usr/share/bash-completion/completions/{c}"));
        files.push(format!("/usr/share/fish/vendor_completions.d/{c}.fish"));
    }
    files
}

/// `KEY=value` lines of an environment file (systemd's simple form).
fn env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn id(flag: &str) -> u32 {
    sh(&format!("id {flag} lava"))
        .trim()
        .parse()
        .expect("numeric id")
}

/// A command run as systemd runs a unit's `ExecStart` with `User=lava`:
/// lava's uid, gid and no supplementary groups, the home directory as the
/// working directory, and only the given environment.
fn as_lava(program: &str, env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(env)
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
        .env("HOME", "/var/lib/lava")
        .env("USER", "lava")
        .env("LOGNAME", "lava")
        .current_dir("/var/lib/lava")
        .uid(id("-u"))
        .gid(id("-g"))
        .kill_on_drop(true);
    cmd
}

/// The AWS settings tests/run exports, as an env file would give them.
fn aws_env() -> String {
    [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}\n")))
    .collect()
}

fn receive(socket: &UnixDatagram, what: &str) -> String {
    let mut buf = [0u8; 1024];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => panic!("no {what} notification: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_build_install_run_and_remove() {
    if !can_install() {
        return;
    }
    let (deb, rpm) = tokio::task::spawn_blocking(build_packages)
        .await
        .expect("build");
    // The workspace version, which the tests crate shares.
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        rpm.file_name().and_then(|n| n.to_str()),
        Some(format!("lava-{version}.x86_64.rpm").as_str()),
        "the rpm name the worker stack's user data copies"
    );

    // ----------------------------------------------------------------- rpm
    let rpm_files = run_ok(StdCommand::new("rpm").args(["-qlp"]).arg(&rpm));
    // cargo-generate-rpm cannot package a symlink: %post makes lava-dispatcher.
    for f in expected_files("/usr/lib/systemd/system")
        .iter()
        .filter(|f| !f.ends_with("/lava-dispatcher"))
    {
        assert!(
            rpm_files.lines().any(|l| l == f),
            "rpm lacks {f}:\n{rpm_files}"
        );
    }
    assert!(rpm_files.contains("/usr/share/zsh/site-functions/_lava-worker"));
    let requires = run_ok(StdCommand::new("rpm").args(["-qp", "--requires"]).arg(&rpm));
    assert!(
        requires.lines().any(|l| l.starts_with("cronie")),
        "rpm must require cronie (Amazon Linux 2023 has no cron by default):\n{requires}"
    );
    let config = run_ok(StdCommand::new("rpm").args(["-qpc"]).arg(&rpm));
    assert_eq!(
        config.lines().collect::<Vec<_>>(),
        ["/etc/lava/lava.env", "/etc/lava/worker-example.env"]
    );
    let scripts = run_ok(StdCommand::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    for needle in [
        "preinstall scriptlet",
        "useradd --system",
        "postinstall scriptlet",
        "ln -sfn lava-dispatch /usr/bin/lava-dispatcher",
        "systemd-tmpfiles --create",
        "preuninstall scriptlet",
        "systemctl stop",
        "postuninstall scriptlet",
    ] {
        assert!(
            scripts.contains(needle),
            "rpm scripts lack {needle:?}:\n{scripts}"
        );
    }

    // --------------------------------------------------------- deb install
    if installed("lava") {
        eprintln!("purging a lava package left installed");
        run_ok(StdCommand::new("dpkg").args(["-P", "lava"]));
    }
    let deb_files = run_ok(StdCommand::new("dpkg-deb").arg("-c").arg(&deb));
    assert!(
        deb_files.contains("./usr/bin/lava-dispatcher -> lava-dispatch"),
        "deb: lava-dispatcher is not a link to lava-dispatch:\n{deb_files}"
    );
    run_ok(StdCommand::new("dpkg").arg("-i").arg(&deb));
    let listed = run_ok(StdCommand::new("dpkg").args(["-L", "lava"]));
    let expected = expected_files("/lib/systemd/system");
    for f in &expected {
        assert!(
            listed.lines().any(|l| l == f),
            "dpkg -L lacks {f}:\n{listed}"
        );
        assert!(
            std::fs::symlink_metadata(f).is_ok(),
            "{f} is not on the file system"
        );
    }
    assert!(Path::new("/usr/share/zsh/vendor-completions/_lava-worker").is_file());
    assert_eq!(
        std::fs::read_link("/usr/bin/lava-dispatcher").ok(),
        Some(PathBuf::from("lava-dispatch"))
    );
    let conffiles = sh("dpkg-query -W -f='${Conffiles}' lava");
    for f in ["/etc/lava/lava.env", "/etc/lava/worker-example.env"] {
        assert!(conffiles.contains(f), "{f} is not a conffile: {conffiles}");
    }
    let version_out = run_ok(StdCommand::new("/usr/bin/lava-worker").arg("--version"));
    assert!(version_out.contains(version), "--version: {version_out}");
    run_ok(StdCommand::new("/usr/bin/lava-dispatcher").arg("--help"));

    // The user, its home and /tmp/lava (from tmpfiles.d, writable by lava only).
    let passwd = sh("getent passwd lava");
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields.get(5), Some(&"/var/lib/lava"), "{passwd}");
    let home = std::fs::metadata("/var/lib/lava").expect("/var/lib/lava");
    assert_eq!((home.uid(), home.mode() & 0o7777), (id("-u"), 0o750));
    let tmp = std::fs::metadata("/tmp/lava").expect("/tmp/lava");
    assert_eq!(
        (tmp.uid(), tmp.gid(), tmp.mode() & 0o7777),
        (id("-u"), id("-g"), 0o1770)
    );

    // The installed units are clean for systemd (any stderr line fails).
    let out = StdCommand::new("systemd-analyze")
        .args(["verify"])
        .args([
            "/lib/systemd/system/lava-worker@.service",
            "/lib/systemd/system/lava-crontab@.service",
            "/lib/systemd/system/lava-crontab@.timer",
        ])
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("lava"),
        "systemd-analyze verify ({:?}):\n{err}",
        out.status
    );

    // ------------------------------------- the worker, as its unit runs it
    let worker = "pkg";
    let realm = TestRealm::new(&[worker]).await;
    let job_id = unique("pkgjob");
    realm.put_cmd_job(&job_id, worker).await;
    let env_path = PathBuf::from(format!("/etc/lava/worker-{worker}.env"));
    let example = std::fs::read_to_string("/etc/lava/worker-example.env").expect("example");
    let settings = example
        .replace("LAVA_REALM=myrealm", &format!("LAVA_REALM={}", realm.name))
        .replace("LAVA_WORKER=core", &format!("LAVA_WORKER={worker}"));
    std::fs::write(
        &env_path,
        format!("{settings}LAVA_WAIT=1\nLAVA_SLEEP=0\n{}", aws_env()),
    )
    .expect("write env file");
    // EnvironmentFile=-/etc/lava/lava.env, then EnvironmentFile=worker-%i.env.
    let mut env = env_file(Path::new("/etc/lava/lava.env"));
    env.extend(env_file(&env_path));
    assert_eq!(env.get("LAVA_REALM"), Some(&realm.name));
    let notify_name = format!("lava-pkg-test-{}", uuid_suffix());
    let notify = UnixDatagram::bind_addr(
        &SocketAddr::from_abstract_name(notify_name.as_bytes()).expect("addr"),
    )
    .expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let daemon = as_lava("/usr/bin/lava-worker", &env)
        .env("NOTIFY_SOCKET", format!("@{notify_name}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lava-worker as lava");
    let notify = tokio::task::spawn_blocking(move || {
        let ready = receive(&notify, "READY");
        (notify, ready)
    });
    let (notify, ready) = notify.await.expect("notify");
    assert!(
        ready.starts_with("READY=1\n"),
        "first notification: {ready:?}"
    );

    let run_id = realm.dispatch_job(&job_id, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        statuses = realm.statuses(&job_id, &run_id).await;
        if statuses.iter().any(|s| s == "complete") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let pid = daemon.id().expect("worker pid");
    run_ok(StdCommand::new("kill").args(["-TERM", &pid.to_string()]));
    let stopping = tokio::task::spawn_blocking(move || receive(&notify, "STOPPING"))
        .await
        .expect("notify");
    let out = tokio::time::timeout(Duration::from_secs(60), daemon.wait_with_output())
        .await
        .expect("worker stops after SIGTERM")
        .expect("worker output");
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("complete"),
        "job run by the packaged worker: {statuses:?}\n{}",
        stderr(&out)
    );
    assert!(
        stopping.starts_with("STOPPING=1\nEXTEND_TIMEOUT_USEC="),
        "stop notification: {stopping:?}"
    );
    assert_eq!(out.status.code(), Some(0), "worker: {}", stderr(&out));
    std::fs::remove_file(&env_path).expect("remove env file");

    // ----------------------- lava-crontab@<realm>.service's ExecStart line
    let unit = std::fs::read_to_string("/lib/systemd/system/lava-crontab@.service").expect("unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/bin/sh -c '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("ExecStart=/bin/sh -c '…'");
    let script = exec.replace("$$", "$").replace("%i", &realm.name);
    realm
        .put_job(serde_json::json!({
            "job_id": "pkg/sched", "type": "cmd", "worker": worker, "payload": "true",
            "dispatcher": "alpha", "schedule": "*/5 * * * *", "enabled": true,
            "owner": "tests", "description": "scheduled"
        }))
        .await;
    let cron_dir = tempfile::tempdir().expect("tempdir");
    let fake = cron_dir.path().join("crontab");
    std::fs::copy(root().join("tests/fixtures/fake-crontab"), &fake).expect("copy");
    std::fs::set_permissions(cron_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::os::unix::fs::chown(cron_dir.path(), Some(id("-u")), Some(id("-g"))).expect("chown");
    let crontab_file = cron_dir.path().join("lava.crontab");
    let mut env: BTreeMap<String, String> = env_file(Path::new("/etc/lava/lava.env"));
    env.insert("LAVA_DISPATCHERS".into(), "alpha beta".into());
    env.insert(
        "LAVA_CRONTAB_ARGS".into(),
        "--env 'CRON_TZ=Australia/Sydney' --arg --delay --arg 5".into(),
    );
    env.insert("LAVA_CRONTAB_CMD".into(), fake.display().to_string());
    env.insert(
        "FAKE_CRONTAB_FILE".into(),
        crontab_file.display().to_string(),
    );
    for line in aws_env().lines() {
        if let Some((k, v)) = line.split_once('=') {
            env.insert(k.into(), v.into());
        }
    }
    let out = as_lava("/bin/sh", &env)
        .args(["-c", &script])
        .output()
        .await
        .expect("crontab unit line");
    assert!(out.status.success(), "crontab unit line: {}", stderr(&out));
    let crontab = std::fs::read_to_string(&crontab_file).expect("installed crontab");
    assert!(crontab.contains("CRON_TZ=Australia/Sydney"), "{crontab}");
    let line = crontab
        .lines()
        .find(|l| l.starts_with("*/5 * * * * "))
        .unwrap_or_else(|| panic!("no schedule line:\n{crontab}\n{}", stdout(&out)));
    for part in [
        "/usr/bin/lava-dispatch --worker pkg --check-dispatch",
        "--delay 5",
        "pkg/sched",
    ] {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }

    // -------------------------------------------- upgrade, remove, purge
    std::fs::write(
        "/etc/lava/lava.env",
        format!(
            "{}LAVA_LEVEL=debug\n",
            std::fs::read_to_string("/etc/lava/lava.env").expect("lava.env")
        ),
    )
    .expect("edit lava.env");
    run_ok(StdCommand::new("dpkg").arg("-i").arg(&deb));
    assert!(
        std::fs::read_to_string("/etc/lava/lava.env")
            .expect("lava.env")
            .contains("LAVA_LEVEL=debug\n"),
        "an upgrade must keep the edited lava.env"
    );
    run_ok(StdCommand::new("dpkg").args(["-r", "lava"]));
    for f in expected.iter().filter(|f| !f.starts_with("/etc/")) {
        assert!(
            std::fs::symlink_metadata(f).is_err(),
            "{f} is still there after dpkg -r"
        );
    }
    assert!(
        Path::new("/etc/lava/lava.env").exists(),
        "dpkg -r keeps conffiles"
    );
    run_ok(StdCommand::new("dpkg").args(["-P", "lava"]));
    assert!(!installed("lava"));
    for gone in ["/etc/lava", "/var/lib/lava"] {
        assert!(
            !Path::new(gone).exists(),
            "{gone} is still there after dpkg -P"
        );
    }
    assert!(
        sh("getent passwd lava || true").contains("lava"),
        "purge keeps the system user (Debian policy)"
    );
}

fn uuid_suffix() -> String {
    unique("n").replace('_', "-")
}
