//! Where the worker's log goes: syslog datagrams as the original writes them
//! (so existing rsyslog rules keep matching), run lines carrying `job_id`
//! and `run_id`, and payloads that do not inherit the worker's journal
//! stream.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use lava_tests::TestRealm;
use serde_json::{Value, json};

/// Every datagram on a bound socket until it stays quiet for a second.
fn datagrams(socket: &UnixDatagram) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

fn hello_job(t: &TestRealm) -> impl std::future::Future<Output = ()> + '_ {
    t.put_job(json!({"job_id": "hello", "type": "cmd", "worker": "core",
                     "payload": "sh -c 'echo js=${JOURNAL_STREAM:-none}'",
                     "enabled": true, "owner": "tests", "description": "logs"}))
}

#[tokio::test]
async fn syslog_json_datagrams_carry_run_fields() {
    let t = TestRealm::new(&["core"]).await;
    hello_job(&t).await;
    let run_id = t.dispatch_job("hello", &[]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("log");
    let socket = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = lava_tests::output(
        t.worker("core")
            .args([
                "--batch",
                "--log",
                "@local0",
                "--log-json",
                "--tag",
                "lava-w1",
            ])
            .env("LAVA_SYSLOG_SOCKET", &path),
    )
    .await;
    assert!(out.status.success(), "{}", lava_tests::stderr(&out));
    t.assert_statuses("hello", &run_id, &["starting", "running", "complete"])
        .await;
    let grams = tokio::task::spawn_blocking(move || datagrams(&socket))
        .await
        .unwrap_or_default();
    assert!(!grams.is_empty(), "nothing on the syslog socket");
    let mut run_lines = 0;
    for gram in &grams {
        let text = String::from_utf8_lossy(gram);
        // `<PRI>` (local0: 128 + severity), the tag, the JSON, a NUL.
        assert!(text.starts_with("<13") && text.ends_with('\0'), "{text:?}");
        let body = text
            .split_once(">lava-w1: ")
            .map(|(_, b)| b.trim_end_matches('\0'))
            .unwrap_or_else(|| panic!("no tag: {text:?}"));
        let record: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(record["event_source"], json!("lava-worker"), "{record}");
        assert_eq!(record["realm"], json!(t.name));
        assert_eq!(record["worker"], json!("core"));
        assert_eq!(record["tag"], json!("lava-w1"));
        assert!(record["host"].is_string() && record["timestamp"].is_string());
        let message = record["message"].as_str().unwrap_or_default();
        if message.contains(&run_id) {
            run_lines += 1;
            assert_eq!(record["job_id"], json!("hello"), "{record}");
            assert_eq!(record["run_id"], json!(run_id), "{record}");
        }
    }
    assert!(run_lines >= 3, "Starting, Running, Complete: {grams:?}");
    assert!(
        lava_tests::stderr(&out).is_empty(),
        "nothing on stderr: {}",
        lava_tests::stderr(&out)
    );
}

#[tokio::test]
async fn syslog_text_datagrams_and_no_journal_stream_for_payloads() {
    let t = TestRealm::new(&["core"]).await;
    hello_job(&t).await;
    let run_id = t.dispatch_job("hello", &[]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("log");
    let socket = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = lava_tests::output(
        t.worker("core")
            .args(["--batch", "--log", "@local0"])
            .env("LAVA_SYSLOG_SOCKET", &path)
            // A journal stream that is not this stderr: ignored, and never passed on.
            .env("JOURNAL_STREAM", "1:1"),
    )
    .await;
    assert!(out.status.success(), "{}", lava_tests::stderr(&out));
    let stdout = t
        .object(&format!("{}/hello/{run_id}/stdout", t.realm.s3_temp()))
        .await;
    assert_eq!(stdout, "js=none\n");
    let grams = tokio::task::spawn_blocking(move || datagrams(&socket))
        .await
        .unwrap_or_default();
    let texts: Vec<String> = grams
        .iter()
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    let complete = texts
        .iter()
        .find(|l| l.contains("): Complete"))
        .unwrap_or_else(|| panic!("no Complete line: {texts:?}"));
    assert!(
        complete.starts_with("<134>lava-worker[") && complete.contains("]: INFO: Job hello ("),
        "{complete:?}"
    );
    assert!(
        complete.contains("job_id=hello") && complete.contains(&format!("run_id={run_id}")),
        "{complete:?}"
    );
    assert!(complete.ends_with('\0'));
}

#[tokio::test]
async fn journald_falls_back_to_stderr_without_a_journal() {
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        return; // a real journal: nothing to fall back from
    }
    let t = TestRealm::new(&["core"]).await;
    let out = lava_tests::output(t.worker("core").args(["--batch", "--log", "journald"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", lava_tests::stderr(&out));
    let err = lava_tests::stderr(&out);
    assert!(
        err.contains("journald is not available") && err.contains("logging to stderr"),
        "{err}"
    );
    assert!(err.contains("Worker ready"), "{err}");
}

/// `--level` reads `LAVA_LOGLEVEL` (the worker falls back on `LAVA_LEVEL`),
/// and variables a payload inherits from its worker (`LAVA_WORKER`,
/// `LAVA_QUEUE`) do not redirect the jobs it dispatches.
#[tokio::test]
async fn loglevel_from_the_environment_and_no_redirect_by_inherited_variables() {
    let short = Duration::from_secs(3);
    let t = TestRealm::new(&["core", "other"]).await;
    t.put_cmd_job("j", "core").await;
    let other_queue = lava_common::names::queue_name(&t.name, "other");
    let out = lava_tests::output(
        t.dispatch()
            .env("LAVA_LOGLEVEL", "debug")
            .env("LAVA_WORKER", "other")
            .env("LAVA_QUEUE", &other_queue)
            .arg("j"),
    )
    .await;
    let err = lava_tests::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DEBUG: sent"), "debug lines shown: {err}");
    let msgs = t.drain("core", 1, short).await;
    assert_eq!(msgs.len(), 1, "on the job's own worker queue");
    assert_eq!(msgs[0]["worker"], json!("core"));
    assert!(t.drain("other", 1, Duration::from_secs(1)).await.is_empty());

    // LAVA_LOGLEVEL=warning hides info lines; --level wins over it.
    let out = lava_tests::output(t.dispatch().env("LAVA_LOGLEVEL", "warning").arg("j")).await;
    assert!(out.status.success(), "{}", lava_tests::stderr(&out));
    assert!(
        lava_tests::stderr(&out).is_empty(),
        "{}",
        lava_tests::stderr(&out)
    );
    let out = lava_tests::output(
        t.dispatch()
            .env("LAVA_LOGLEVEL", "warning")
            .args(["--level", "info", "j"]),
    )
    .await;
    assert!(
        lava_tests::stderr(&out).contains("INFO: j@"),
        "{}",
        lava_tests::stderr(&out)
    );
    assert_eq!(t.drain("core", 2, short).await.len(), 2);

    // The worker: LAVA_LEVEL when LAVA_LOGLEVEL is not set.
    let out =
        lava_tests::output(t.worker("core").arg("--batch").env("LAVA_LEVEL", "warning")).await;
    assert_eq!(out.status.code(), Some(0), "{}", lava_tests::stderr(&out));
    assert!(
        !lava_tests::stderr(&out).contains("Worker ready"),
        "info hidden: {}",
        lava_tests::stderr(&out)
    );
    let out = lava_tests::output(
        t.worker("core")
            .arg("--batch")
            .env("LAVA_LEVEL", "warning")
            .env("LAVA_LOGLEVEL", "info"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", lava_tests::stderr(&out));
    assert!(
        lava_tests::stderr(&out).contains("Worker ready"),
        "LAVA_LOGLEVEL first: {}",
        lava_tests::stderr(&out)
    );
}
