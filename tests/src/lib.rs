//! The integration-test harness: finds the AWS emulator started by
//! `tests/run` (or opens a local backend in a temporary directory), creates
//! a fresh realm per test (so tests run in parallel), and runs the real lava
//! binaries.

pub mod procs;
pub mod proxy;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use lava_common::provision::{self, RealmSetup};
use lava_common::spec::{Item, Realm};
use lava_common::store::{Backend, BackendSpec, QueueRef, Received, Table};
use serde_json::Value;
use tokio::process::Command;

/// The emulator endpoint exported by `tests/run`. Panics with a clear
/// message when the tests are started some other way.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: run the integration tests with tests/run, which starts moto_server"
        ),
    }
}

/// A backend on the emulator.
pub async fn backend() -> Backend {
    endpoint();
    match Backend::connect(&BackendSpec::Aws, None).await {
        Ok(b) => b,
        Err(e) => panic!("cannot connect to the emulator: {e}"),
    }
}

/// The backend the shared suite runs on: `LAVA_TEST_BACKEND` (`aws`, the
/// default, or `local:<DIR>`, which `tests/run` sets for its second pass).
pub fn suite_backend() -> BackendSpec {
    match std::env::var("LAVA_TEST_BACKEND") {
        Ok(text) if !text.is_empty() => match BackendSpec::parse(&text) {
            Ok(spec) => spec,
            Err(e) => panic!("LAVA_TEST_BACKEND: {e}"),
        },
        _ => BackendSpec::Aws,
    }
}

/// A local backend (`local:<DIR>`) in a fresh temporary directory, which
/// lives as long as the returned guard.
pub async fn local_backend() -> (tempfile::TempDir, Backend) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot make a temporary directory: {e}"),
    };
    let spec = BackendSpec::Local(dir.path().to_path_buf());
    match Backend::connect(&spec, None).await {
        Ok(b) => (dir, b),
        Err(e) => panic!(
            "cannot open the local backend in {}: {e}",
            dir.path().display()
        ),
    }
}

/// A name no other test uses: `<prefix>_<12 hex digits>`.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// The directory this test binary was built in: `<target>/<profile>/deps/<test>`
/// gives `<target>/<profile>`, wherever cargo's target directory is
/// (`CARGO_TARGET_DIR` included).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Cargo's target directory, the one this test binary was built in.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Whether CI runs the tests (`CI` set to anything but empty, `0` or
/// `false`, as CI services set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Checks a test's prerequisite on this host (root, a tool, a daemon).
/// Returns true when it is met. When it is not: under CI ([`under_ci`]) the
/// test fails, so that a missing install step cannot pass as a skipped test;
/// elsewhere it prints `missing` and returns false, and the test returns
/// without running.
pub fn prerequisite(met: bool, missing: &str) -> bool {
    if met {
        return true;
    }
    assert!(
        !under_ci(),
        "{missing} (CI=true: .ci/run must install what the tests need)"
    );
    eprintln!("test skipped: {missing}");
    false
}

/// Path of a lava binary built next to this test binary.
pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: tests/run builds every binary before the tests",
        path.display()
    );
    path
}

/// A lava binary as a command with the test environment and no `LAVA_*`
/// variables inherited from the caller.
pub fn lava(name: &str) -> Command {
    let mut cmd = Command::new(bin(name));
    for (key, _) in std::env::vars() {
        if key.starts_with("LAVA_") {
            cmd.env_remove(key);
        }
    }
    if let spec @ BackendSpec::Local(_) = suite_backend() {
        cmd.env("LAVA_BACKEND", spec.to_string());
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Runs a command to completion and returns its output.
pub async fn output(cmd: &mut Command) -> Output {
    match tokio::time::timeout(Duration::from_secs(120), cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run {cmd:?}: {e}"),
        Err(_) => panic!("{cmd:?} did not finish in 120 s"),
    }
}

/// stdout of an output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of an output as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A realm of its own on the emulator, with tables, queues and bucket.
pub struct TestRealm {
    /// Realm name.
    pub name: String,
    /// The backend it lives on.
    pub backend: Backend,
    /// Its realm record.
    pub realm: Realm,
}

impl TestRealm {
    /// Creates a realm with a queue per worker.
    pub async fn new(workers: &[&str]) -> Self {
        Self::with_setup(workers, |_| {}).await
    }

    /// Creates a realm with a queue per worker, the setup adjusted by `adjust`
    /// (e.g. a realm `s3_key`).
    pub async fn with_setup(workers: &[&str], adjust: impl FnOnce(&mut RealmSetup)) -> Self {
        let spec = suite_backend();
        let backend = match &spec {
            BackendSpec::Aws => backend().await,
            local => match Backend::connect(local, None).await {
                Ok(b) => b,
                Err(e) => panic!("cannot open the suite's backend {local}: {e}"),
            },
        };
        let name = unique("t");
        let mut setup = RealmSetup::new(&name, workers);
        adjust(&mut setup);
        let realm = match provision::create_realm(&backend, &setup).await {
            Ok(r) => r,
            Err(e) => panic!("cannot create realm {name}: {e}"),
        };
        Self {
            name,
            backend,
            realm,
        }
    }

    /// Stores an SSM parameter with `lava-realm secret put`, the value on
    /// stdin (as an operator would).
    pub async fn put_secret(&self, name: &str, value: &str) {
        use tokio::io::AsyncWriteExt;
        let mut cmd = lava("lava-realm");
        cmd.args(["-r", &self.name, "secret", "put", name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("lava-realm: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(format!("{value}\n").as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child
            .wait_with_output()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "secret put: {}", stderr(&out));
    }

    /// Writes a connection item.
    pub async fn put_connection(&self, item: Value) {
        let item = item.as_object().cloned().unwrap_or_default();
        if let Err(e) = self
            .backend
            .tables
            .put(&self.name, Table::Connections, &item)
            .await
        {
            panic!("cannot write connection: {e}");
        }
    }

    /// Writes a job item.
    pub async fn put_job(&self, job: Value) {
        let item: Item = job.as_object().cloned().unwrap_or_default();
        if let Err(e) = self
            .backend
            .tables
            .put(&self.name, Table::Jobs, &item)
            .await
        {
            panic!("cannot write job: {e}");
        }
    }

    /// Writes a minimal valid `cmd` job for `worker`.
    pub async fn put_cmd_job(&self, job_id: &str, worker: &str) {
        self.put_job(serde_json::json!({
            "job_id": job_id, "type": "cmd", "worker": worker, "payload": "echo hello",
            "enabled": true, "owner": "tests", "description": "a test job"
        }))
        .await;
    }

    /// The queue of a worker fleet.
    pub async fn queue(&self, worker: &str) -> QueueRef {
        let name = lava_common::names::queue_name(&self.name, worker);
        match self.backend.queue.resolve(&name).await {
            Ok(q) => q,
            Err(e) => panic!("no queue {name}: {e}"),
        }
    }

    /// Receives every message that becomes visible on a worker's queue
    /// within `wait` (stopping early once `expect` have come), deleting
    /// each, and returns their bodies as JSON.
    pub async fn drain(&self, worker: &str, expect: usize, wait: Duration) -> Vec<Value> {
        self.drain_raw(worker, expect, wait)
            .await
            .iter()
            .map(|body| match serde_json::from_str(body) {
                Ok(v) => v,
                Err(e) => panic!("message is not JSON ({e}): {body}"),
            })
            .collect()
    }

    /// As [`TestRealm::drain`], returning the bodies as sent.
    pub async fn drain_raw(&self, worker: &str, expect: usize, wait: Duration) -> Vec<String> {
        let queue = self.queue(worker).await;
        let deadline = tokio::time::Instant::now() + wait;
        let mut bodies = Vec::new();
        while bodies.len() < expect && tokio::time::Instant::now() < deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait_secs = u32::try_from(left.as_secs().clamp(1, 5)).unwrap_or(1);
            let got: Vec<Received> = match self.backend.queue.receive(&queue, 10, wait_secs).await {
                Ok(m) => m,
                Err(e) => panic!("receive failed: {e}"),
            };
            for m in got {
                if let Err(e) = self.backend.queue.delete(&queue, &m.receipt).await {
                    panic!("delete failed: {e}");
                }
                bodies.push(m.body);
            }
        }
        bodies
    }

    /// `lava-dispatch` with this realm's `-r` set.
    pub fn dispatch(&self) -> Command {
        let mut cmd = lava("lava-dispatch");
        cmd.arg("-r").arg(&self.name);
        cmd
    }
}

impl TestRealm {
    /// `lava-worker` for one of this realm's fleets, as root (the build
    /// host runs as root), polling without sleeps.
    pub fn worker(&self, worker: &str) -> Command {
        let mut cmd = lava("lava-worker");
        cmd.args([
            "-r", &self.name, "-w", worker, "--root", "--sleep", "0", "--wait", "1",
        ]);
        cmd.env("LAVA_TMPDIR", std::env::temp_dir().join("lava-tests"));
        cmd
    }

    /// Runs a worker with `--batch` until the queue is empty; returns its output.
    pub async fn run_worker(&self, worker: &str, extra: &[&str]) -> Output {
        let out = output(self.worker(worker).arg("--batch").args(extra)).await;
        assert!(
            out.status.success(),
            "worker failed ({:?}): {}",
            out.status,
            stderr(&out)
        );
        out
    }

    /// Dispatches a job with `lava-dispatch` and returns its run id.
    pub async fn dispatch_job(&self, job_id: &str, extra: &[&str]) -> String {
        let out = output(self.dispatch().arg(job_id).args(extra)).await;
        assert!(out.status.success(), "dispatch failed: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// The events item of a run (strongly consistent).
    pub async fn events(&self, job_id: &str, run_id: &str) -> Option<Item> {
        let key = lava_common::store::Key::with_sort(job_id, run_id);
        match self
            .backend
            .tables
            .get(&self.name, Table::Events, &key, true)
            .await
        {
            Ok(item) => item,
            Err(e) => panic!("cannot read events: {e}"),
        }
    }

    /// Asserts the statuses of a run's `log`; a mismatch shows the whole log.
    pub async fn assert_statuses(&self, job_id: &str, run_id: &str, want: &[&str]) {
        let log = self.log(job_id, run_id).await;
        let got: Vec<&str> = log
            .iter()
            .map(|e| e["status"].as_str().unwrap_or_default())
            .collect();
        // Each entry as JSON, cut short: an info may be hundreds of kB.
        let shown: Vec<String> = log
            .iter()
            .map(|e| {
                let text = e.to_string();
                match text.char_indices().nth(600) {
                    Some((end, _)) => format!("{}…", &text[..end]),
                    None => text,
                }
            })
            .collect();
        assert_eq!(got, want, "run {run_id} of {job_id}: {shown:#?}");
    }

    /// The statuses of a run's `log`, in order.
    pub async fn statuses(&self, job_id: &str, run_id: &str) -> Vec<String> {
        self.events(job_id, run_id)
            .await
            .and_then(|i| i.get("log").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| e["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The `log` entries of a run.
    pub async fn log(&self, job_id: &str, run_id: &str) -> Vec<Value> {
        self.events(job_id, run_id)
            .await
            .and_then(|i| i.get("log").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// An object's text.
    pub async fn object(&self, url: &str) -> String {
        match self.backend.objects.get(url).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => panic!("cannot read {url}: {e}"),
        }
    }

    /// Stores a payload object under the realm's `s3_payloads`.
    pub async fn put_payload(&self, key: &str, body: Vec<u8>) {
        let url = format!("{}/{key}", self.realm.s3_payloads());
        if let Err(e) = self.backend.objects.put(&url, body, None).await {
            panic!("cannot store {url}: {e}");
        }
    }
}
