//! Notification actions end to end, with the real worker: `slack` against
//! a webhook server on loopback, `email` through an SMTP server on loopback
//! (login, attachment, refused connections, 550 replies, `tls` without
//! STARTTLS on offer; the helpers' `lava-email` with a Bcc), and `sns`,
//! `sqs` and SES `email` on the emulator or the local backend. A failing
//! action adds `action_failed` and leaves the run complete; secrets (the
//! SMTP password, the webhook URL) reach neither the events item nor the
//! worker's log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lava_common::store::BackendSpec;
use lava_tests::{TestRealm, stderr, suite_backend};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn job(job_id: &str, on_success: Value) -> Value {
    json!({"job_id": job_id, "type": "cmd", "worker": "core", "payload": "true",
           "enabled": true, "owner": "tests", "description": "notify test",
           "on_success": on_success})
}

/// Runs one job to its end and returns its run id and the worker's log.
async fn run_job(t: &TestRealm, job_id: &str, env: &[(&str, &str)]) -> (String, String) {
    let run = t.dispatch_job(job_id, &[]).await;
    let mut cmd = t.worker("core");
    // At debug level too, no secret may reach the log.
    cmd.args(["--batch", "--level", "debug"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = lava_tests::output(&mut cmd).await;
    assert!(out.status.success(), "worker failed: {}", stderr(&out));
    (run, stderr(&out))
}

/// The `action_failed` info of a run, if any.
async fn action_failed(t: &TestRealm, job_id: &str, run: &str) -> Option<String> {
    t.log(job_id, run)
        .await
        .iter()
        .find(|e| e["status"] == json!("action_failed"))
        .map(|e| e["info"].as_str().unwrap_or_default().to_string())
}

/// The whole events item as text.
async fn events_text(t: &TestRealm, job_id: &str, run: &str) -> String {
    Value::Object(t.events(job_id, run).await.unwrap_or_default()).to_string()
}

// ---------------------------------------------------------------- Slack

/// A webhook server on loopback: records each POST body, answers with
/// `status` and `text`.
struct Webhook {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    async fn start(status: u16, text: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let _ = serve_http(stream, status, text, seen).await;
                });
            }
        });
        Self { addr, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

async fn serve_http(
    stream: TcpStream,
    status: u16,
    text: &str,
    seen: Arc<Mutex<Vec<Value>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Ok(mut s) = seen.lock() {
            s.push(value);
        }
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        reader.get_mut().write_all(reply.as_bytes()).await?;
    }
}

#[tokio::test]
async fn slack_styles_reach_the_webhook_and_failures_keep_the_url_secret() {
    let t = TestRealm::new(&["core"]).await;
    let hook = Webhook::start(200, "ok").await;
    let secret = format!("T000/B000/{}", uuid::Uuid::new_v4().simple());
    let url = format!("http://{}/services/{secret}", hook.addr);
    t.put_connection(
        json!({"conn_id": "chat", "type": "slack", "enabled": true, "webhook_url": url,
               "from": "lava-bot", "colour": "00ff00"}),
    )
    .await;
    t.put_job(job(
        "slacker",
        json!([
            {"action": "slack", "slack_conn": "chat", "message": "done {{ job.job_id }}",
             "subject": "Job {{ job.job_id }}", "preamble": "<!here>"},
            {"action": "slack", "slack_conn": "chat", "message": "att", "style": "attachment"},
            {"action": "slack", "slack_conn": "chat", "message": "m", "style": "plain",
             "from": "me", "colour": "good"},
        ]),
    ))
    .await;
    let (run, _) = run_job(&t, "slacker", &[]).await;
    t.assert_statuses("slacker", &run, &["starting", "running", "complete"])
        .await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let block = &bodies[0];
    assert_eq!(
        block["text"],
        json!("<!here> *lava-bot*: *Job slacker*: done slacker")
    );
    assert_eq!(
        block["blocks"][0]["text"]["text"],
        json!("<!here>\n*From*: lava-bot\n*Subject*: Job slacker")
    );
    assert_eq!(block["blocks"][1], json!({"type": "divider"}));
    assert_eq!(block["blocks"][2]["text"]["text"], json!("done slacker"));
    let when = block["blocks"][3]["elements"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        when.starts_with("Event time: <!date^")
            && when.ends_with("^{date_short_pretty} at {time}| >"),
        "{when}"
    );
    let att = &bodies[1]["attachments"][0];
    assert_eq!(att["color"], json!("#00ff00"), "hex colour gets its #");
    assert_eq!(att["author_name"], json!("lava-bot"));
    assert_eq!(att["text"], json!("att"));
    assert_eq!(att["footer"], json!("Event time"));
    assert!(att["ts"].is_i64());
    assert!(att.get("title").is_none());
    assert_eq!(bodies[2], json!({"text": "*me*: m"}));

    // A webhook that refuses: the run stays complete, the URL stays secret.
    let refusing = Webhook::start(404, "no_service").await;
    t.put_connection(json!({"conn_id": "gone", "type": "slack", "enabled": true,
               "webhook_url": format!("http://{}/services/{secret}", refusing.addr)}))
        .await;
    t.put_job(job(
        "slackfail",
        json!([{"action": "slack", "slack_conn": "gone", "message": "x"},
               {"action": "slack", "slack_conn": "chat", "message": "never"}]),
    ))
    .await;
    let (run, log) = run_job(&t, "slackfail", &[]).await;
    t.assert_statuses(
        "slackfail",
        &run,
        &["starting", "running", "complete", "action_failed"],
    )
    .await;
    assert_eq!(
        action_failed(&t, "slackfail", &run).await.as_deref(),
        Some("on_success action: slack: Connection gone: Slack response 404 - no_service")
    );
    assert_eq!(hook.bodies().len(), 3, "later actions do not run");
    assert!(!events_text(&t, "slackfail", &run).await.contains(&secret));
    assert!(!log.contains(&secret), "webhook URL in the worker log");
}

/// A webhook that takes the request and never answers: the action gives up
/// after its 10 s, and the run still completes.
#[tokio::test]
async fn a_silent_webhook_fails_the_action_not_the_run() {
    let t = TestRealm::new(&["core"]).await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let held = tokio::spawn(async move {
        let mut streams = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            streams.push(stream);
        }
    });
    t.put_connection(json!({"conn_id": "slow", "type": "slack", "enabled": true,
               "webhook_url": format!("http://{addr}/hook")}))
        .await;
    t.put_job(job(
        "silent",
        json!([{"action": "slack", "slack_conn": "slow", "message": "x"}]),
    ))
    .await;
    let (run, _) = run_job(&t, "silent", &[]).await;
    t.assert_statuses(
        "silent",
        &run,
        &["starting", "running", "complete", "action_failed"],
    )
    .await;
    assert_eq!(
        action_failed(&t, "silent", &run).await.as_deref(),
        Some(
            "on_success action: slack: Connection slow: the Slack webhook did not answer within 10 s"
        )
    );
    held.abort();
}

// ---------------------------------------------------------------- SMTP

/// One SMTP session as the server saw it: the commands, and the message.
type Session = (Vec<String>, String);

/// An SMTP server on loopback that records each session's commands and
/// message; with `reject`, recipients get 550.
struct SmtpSink {
    port: u16,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl SmtpSink {
    async fn start(reject: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sessions);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let _ = smtp_session(stream, reject, seen).await;
                });
            }
        });
        Self { port, sessions }
    }

    fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn smtp_session(
    stream: TcpStream,
    reject: bool,
    seen: Arc<Mutex<Vec<Session>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut commands = Vec::new();
    let mut data = String::new();
    reader.get_mut().write_all(b"220 sink ESMTP\r\n").await?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        commands.push(cmd.clone());
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("AUTH") {
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("RCPT") && reject {
            b"550 5.1.1 No such user here\r\n"
        } else if upper.starts_with("DATA") {
            reader.get_mut().write_all(b"354 go ahead\r\n").await?;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).await? == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            b"250 2.0.0 queued\r\n"
        } else if upper.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await?;
            break;
        } else {
            b"250 OK\r\n"
        };
        reader.get_mut().write_all(reply).await?;
    }
    if let Ok(mut s) = seen.lock() {
        s.push((commands, data));
    }
    Ok(())
}

/// Standard base64.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn smtp_delivers_with_login_and_attachment_without_showing_the_password() {
    let t = TestRealm::new(&["core"]).await;
    let sink = SmtpSink::start(false).await;
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let pname = format!("/lava/{}/smtp", t.name);
    t.put_secret(&pname, &password).await;
    t.put_connection(
        json!({"conn_id": "mail", "type": "email", "subtype": "smtp", "enabled": true,
               "host": "127.0.0.1", "port": sink.port, "user": "robot", "password": pname,
               "from": "Lava <lava@example.com>", "reply_to": ["ops@example.com"]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("report.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap_or_else(|e| panic!("{e}"));
    t.put_job(job(
        "mailer",
        json!([{"action": "email", "email_conn": "mail",
                "to": ["a@example.com", "B <b@example.com>"],
                "subject": "Run of {{ job.job_id }}", "message": "All fine in {{ realm.realm }}",
                "attachments": [file.to_string_lossy()]}]),
    ))
    .await;
    let (run, log) = run_job(&t, "mailer", &[]).await;
    t.assert_statuses("mailer", &run, &["starting", "running", "complete"])
        .await;
    let sessions = sink.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (commands, data) = &sessions[0];
    let auth = base64(format!("\0robot\0{password}").as_bytes());
    assert!(
        commands.contains(&format!("AUTH PLAIN {auth}")),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"MAIL FROM:<lava@example.com>".to_string()),
        "{commands:?}"
    );
    assert!(commands.contains(&"RCPT TO:<a@example.com>".to_string()));
    assert!(commands.contains(&"RCPT TO:<b@example.com>".to_string()));
    assert!(data.contains("Subject: Run of mailer"), "{data}");
    assert!(data.contains("From: Lava <lava@example.com>"), "{data}");
    assert!(data.contains("Reply-To: ops@example.com"), "{data}");
    assert!(data.contains(&format!("All fine in {}", t.name)), "{data}");
    assert!(data.contains("filename=\"report.csv\""), "{data}");
    assert!(data.contains("Content-Type: text/csv"), "{data}");
    assert!(data.replace("\r\n", "\n").contains("a,b\n1,2\n"), "{data}");
    assert!(!log.contains(&password), "password in the worker log");
    assert!(!events_text(&t, "mailer", &run).await.contains(&password));
}

#[tokio::test]
async fn smtp_refused_or_rejected_records_action_failed() {
    let t = TestRealm::new(&["core"]).await;
    // A port nothing listens on: bind, note it, close.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().map(|a| a.port()).unwrap_or_default()
    };
    let rejecting = SmtpSink::start(true).await;
    // `tls` requires STARTTLS, which this server does not offer.
    let plain = SmtpSink::start(false).await;
    for (id, port, tls) in [
        ("refused", closed, false),
        ("rejecting", rejecting.port, false),
        ("notls", plain.port, true),
    ] {
        t.put_connection(
            json!({"conn_id": id, "type": "email", "subtype": "smtp", "enabled": true,
                   "host": "127.0.0.1", "port": port, "tls": tls, "from": "lava@example.com"}),
        )
        .await;
        t.put_job(job(
            id,
            json!([{"action": "email", "email_conn": id, "to": "x@example.com",
                    "subject": "s", "message": "m"}]),
        ))
        .await;
        let (run, _) = run_job(&t, id, &[]).await;
        t.assert_statuses(
            id,
            &run,
            &["starting", "running", "complete", "action_failed"],
        )
        .await;
        let info = action_failed(&t, id, &run).await.unwrap_or_default();
        assert!(
            info.starts_with(&format!("on_success action: email: {id}: ")),
            "{info}"
        );
        if id == "rejecting" {
            assert!(info.contains("550"), "{info}");
        }
    }
    assert!(rejecting.sessions().iter().all(|(_, data)| data.is_empty()));
    let plain = plain.sessions();
    assert!(
        plain
            .iter()
            .all(|(commands, data)| data.is_empty()
                && !commands.iter().any(|c| c.starts_with("MAIL"))),
        "nothing sent without TLS: {plain:?}"
    );
}

#[tokio::test]
async fn email_action_fields_are_checked() {
    let t = TestRealm::new(&["core"]).await;
    t.put_job(job(
        "badmail",
        json!([{"action": "email", "to": "x@example.com", "subject": "s", "message": "m",
                "attachments": ["/etc/hostname"]}]),
    ))
    .await;
    t.put_job(job(
        "extra",
        json!([{"action": "email", "to": "x@example.com", "subject": "s", "message": "m",
                "cc": "y@example.com"}]),
    ))
    .await;
    let (run, _) = run_job(&t, "badmail", &[]).await;
    assert_eq!(
        action_failed(&t, "badmail", &run).await.as_deref(),
        Some("on_success action: email: email_conn must be specified to enable attachments")
    );
    let (run, _) = run_job(&t, "extra", &[]).await;
    assert_eq!(
        action_failed(&t, "extra", &run).await.as_deref(),
        Some("on_success action: email: Unexpected keys: cc")
    );
}

// ---------------------------------------------------------------- SNS, SQS, SES

/// Receives the one message of a queue.
async fn one_message(t: &TestRealm, name: &str) -> String {
    let queue = t
        .backend
        .queue
        .resolve(name)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let got = t
        .backend
        .queue
        .receive(&queue, 10, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 1, "{name}: {got:?}");
    got[0].body.clone()
}

#[tokio::test]
async fn sqs_action_sends_to_a_queue_by_name_and_by_url() {
    let t = TestRealm::new(&["core"]).await;
    let by_name = format!("lava-{}-notes", t.name);
    let by_url = format!("lava-{}-more", t.name);
    t.backend
        .queue
        .create(&by_name, 30)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url_queue = t
        .backend
        .queue
        .create(&by_url, 30)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Queue URLs are SQS's; the local backend's queues go by name.
    let second = match suite_backend() {
        BackendSpec::Aws => url_queue.url,
        BackendSpec::Local(_) => by_url.clone(),
    };
    t.put_job(job(
        "queuer",
        json!([
            {"action": "sqs", "queue": by_name, "message": {"job": "{{ job.job_id }}", "n": 1}},
            {"action": "sqs", "queue": second, "message": "run {{ job.run_id }}",
             "delay": "0s"},
        ]),
    ))
    .await;
    let (run, _) = run_job(&t, "queuer", &[]).await;
    t.assert_statuses("queuer", &run, &["starting", "running", "complete"])
        .await;
    // A map is JSON-encoded as Python does, then rendered.
    assert_eq!(
        one_message(&t, &by_name).await,
        r#"{"job": "queuer", "n": 1}"#
    );
    assert_eq!(one_message(&t, &by_url).await, format!("run {run}"));
}

#[tokio::test]
async fn sns_and_bare_ses_reach_their_service() {
    let t = TestRealm::new(&["core"]).await;
    let topic_name = format!("lava-{}-notices", t.name);
    let subject = format!("Subject {} {}", t.name, "x".repeat(120));
    let mail_subject = format!("Mail for {}", t.name);
    let local_dir = match suite_backend() {
        BackendSpec::Local(dir) => Some(dir),
        BackendSpec::Aws => None,
    };
    let (topic, sub_queue) = match &local_dir {
        None => aws_topic(&t, &topic_name).await,
        Some(_) => (
            format!("arn:aws:sns:us-east-1:123456789012:{topic_name}"),
            String::new(),
        ),
    };
    if local_dir.is_none() {
        let config = lava_common::store::aws::sdk_config(None).await;
        let ses = aws_sdk_ses::Client::new(&config);
        ses.verify_email_identity()
            .email_address("sender@example.com")
            .send()
            .await
            .unwrap_or_else(|e| panic!("verify: {e}"));
    }
    t.put_job(job(
        "noticer",
        json!([
            {"action": "sns", "topic": topic, "subject": subject,
             "message": {"job": "{{ job.job_id }}", "ok": true}},
            {"action": "email", "to": "ops@example.com", "from": "sender@example.com",
             "subject": mail_subject, "message": "<HTML><b>{{ job.job_id }}</b></HTML>"},
        ]),
    ))
    .await;
    let (run, _) = run_job(&t, "noticer", &[]).await;
    // On the local backend the first action fails (no SNS), which ends the
    // list; the run is complete all the same.
    let ended: &[&str] = match &local_dir {
        None => &["starting", "running", "complete"],
        Some(_) => &["starting", "running", "complete", "action_failed"],
    };
    t.assert_statuses("noticer", &run, ended).await;
    let cut: String = subject.chars().take(100).collect();
    match &local_dir {
        None => {
            let envelope: Value = serde_json::from_str(&one_message(&t, &sub_queue).await)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(envelope["Subject"], json!(cut));
            assert_eq!(
                envelope["Message"],
                json!(r#"{"job": "noticer", "ok": true}"#)
            );
            let sent = moto_ses_messages().await;
            let mail = sent
                .iter()
                .find(|m| m["subject"] == json!(mail_subject))
                .unwrap_or_else(|| panic!("no SES message {mail_subject}"));
            assert_eq!(mail["source"], json!("sender@example.com"));
            assert_eq!(mail["body"], json!("<HTML><b>noticer</b></HTML>"));
            assert_eq!(
                mail["destinations"]["ToAddresses"],
                json!(["ops@example.com"])
            );
        }
        Some(_) => {
            // The local backend has no SNS (nor SES).
            assert_eq!(
                action_failed(&t, "noticer", &run).await.as_deref(),
                Some("on_success action: sns: not available on the local backend")
            );
        }
    }
}

/// An SNS topic with an SQS queue subscribed (raw delivery off: the queue
/// gets SNS's JSON envelope). Returns the topic ARN and the queue name.
async fn aws_topic(t: &TestRealm, name: &str) -> (String, String) {
    let config = lava_common::store::aws::sdk_config(None).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create topic: {e}"));
    let arn = topic.topic_arn().unwrap_or_default().to_string();
    let queue = format!("{name}-sub");
    t.backend
        .queue
        .create(&queue, 30)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e}"));
    (arn, queue)
}

/// The emulator's record of sent SES messages (`/moto-api/data.json`).
async fn moto_ses_messages() -> Vec<Value> {
    let data = http_get(&format!("{}/moto-api/data.json", lava_tests::endpoint())).await;
    let all: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("data.json: {e}"));
    let mut out: Vec<Value> = all["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    out.extend(
        all["ses"]["RawMessage"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    out
}

/// A plain HTTP GET on loopback; returns the body.
async fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = TcpStream::connect(host)
        .await
        .unwrap_or_else(|e| panic!("{host}: {e}"));
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn ses_connection_sends_a_raw_message_on_aws() {
    let t = TestRealm::new(&["core"]).await;
    let config = lava_common::store::aws::sdk_config(None).await;
    aws_sdk_ses::Client::new(&config)
        .verify_email_identity()
        .email_address("conn@example.com")
        .send()
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    t.put_connection(
        json!({"conn_id": "ses", "type": "email", "enabled": true, "from": "conn@example.com"}),
    )
    .await;
    let subject = format!("Raw for {}", t.name);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "attached text").unwrap_or_else(|e| panic!("{e}"));
    t.put_job(job(
        "rawmail",
        json!([{"action": "email", "email_conn": "ses", "to": "dest@example.com",
                "subject": subject, "message": "body of {{ job.job_id }}",
                "attachments": [file.to_string_lossy()]}]),
    ))
    .await;
    let (run, _) = run_job(&t, "rawmail", &[]).await;
    t.assert_statuses("rawmail", &run, &["starting", "running", "complete"])
        .await;
    let sent = moto_ses_messages().await;
    let raw = sent
        .iter()
        .find(|m| m["raw_data"].as_str().is_some_and(|r| r.contains(&subject)))
        .unwrap_or_else(|| panic!("no raw SES message {subject}"));
    assert_eq!(raw["source"], json!("conn@example.com"));
    // The emulator adds the header recipients to the destinations we send.
    assert_eq!(raw["destinations"][0], json!("dest@example.com"));
    let data = raw["raw_data"].as_str().unwrap_or_default();
    assert!(data.contains("body of rawmail"), "{data}");
    assert!(data.contains("filename=\"notes.txt\""), "{data}");
}

/// The payload: sends one mail (with a Bcc) and one Slack message through
/// the connection helpers, which run `lava-email` and `lava-slack`.
const HELPERS: &str = r#"#!/bin/bash
set -eu
printf 'Body from %s\n' "$LAVA_JOB_ID" | "$LAVA_CONN_MAIL" --to to@example.com --bcc hidden@example.com -s "Helper mail"
printf 'Slack from the helper' | "$LAVA_CONN_CHAT" -s "Helper" --style plain
if "$LAVA_CONN_MAIL" -s "no body" --to to@example.com </dev/null 2>err.txt; then echo "empty body sent"; exit 1; fi
cat err.txt
"#;

#[tokio::test]
async fn email_and_slack_helpers_run_lava_email_and_lava_slack() {
    let t = TestRealm::new(&["core"]).await;
    let sink = SmtpSink::start(false).await;
    let hook = Webhook::start(200, "ok").await;
    t.put_connection(
        json!({"conn_id": "mail", "type": "email", "subtype": "smtp", "enabled": true,
               "host": "127.0.0.1", "port": sink.port, "from": "helper@example.com"}),
    )
    .await;
    t.put_connection(json!({"conn_id": "chat", "type": "slack", "enabled": true,
               "webhook_url": format!("http://{}/hook", hook.addr)}))
        .await;
    t.put_payload("notify/helpers.sh", HELPERS.as_bytes().to_vec())
        .await;
    t.put_job(json!({"job_id": "helpers", "type": "exe", "worker": "core",
        "payload": "notify/helpers.sh", "enabled": true, "owner": "tests",
        "description": "notify helpers", "parameters": {"connections": {"mail": "mail", "chat": "chat"}}}))
    .await;
    let bin_dir = lava_tests::bin("lava-email")
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let (run, _) = run_job(&t, "helpers", &[("PATH", &path)]).await;
    t.assert_statuses("helpers", &run, &["starting", "running", "complete"])
        .await;
    let sessions = sink.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (commands, data) = &sessions[0];
    assert!(
        commands.contains(&"RCPT TO:<hidden@example.com>".to_string()),
        "{commands:?}"
    );
    assert!(
        !data.to_ascii_lowercase().contains("hidden@"),
        "Bcc in a header: {data}"
    );
    assert!(data.contains("Subject: Helper mail"), "{data}");
    assert!(data.contains("Body from helpers"), "{data}");
    assert_eq!(
        hook.bodies(),
        vec![json!({"text": format!("*lava@{}*: *Helper*: Slack from the helper", t.name)})]
    );
    let s3tmp = format!("{}/helpers/{run}", t.realm.s3_temp());
    let out = t.object(&format!("{s3tmp}/helpers.sh.stdout")).await;
    assert_eq!(
        out,
        "lava-email: Cannot send email: subject and message must be specified\n"
    );
}

#[tokio::test]
async fn sqs_action_sets_fifo_ids_on_aws() {
    let t = TestRealm::new(&["core"]).await;
    let config = lava_common::store::aws::sdk_config(None).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = format!("lava-{}-ordered.fifo", t.name);
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
        .queue_url()
        .unwrap_or_default()
        .to_string();
    t.put_job(job(
        "fifo",
        json!([{"action": "sqs", "queue": name, "message": "m {{ job.job_id }}",
                "group_id": "g-{{ job.job_id }}", "dedup_id": "d-{{ job.run_id }}"}]),
    ))
    .await;
    let (run, _) = run_job(&t, "fifo", &[]).await;
    t.assert_statuses("fifo", &run, &["starting", "running", "complete"])
        .await;
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    let messages = got.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].body(), Some("m fifo"));
    let attrs = messages[0].attributes().cloned().unwrap_or_default();
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    assert_eq!(
        attrs.get(&A::MessageGroupId).map(String::as_str),
        Some("g-fifo")
    );
    assert_eq!(
        attrs.get(&A::MessageDeduplicationId).cloned(),
        Some(format!("d-{run}"))
    );
}

#[tokio::test]
async fn email_limits_fail_the_action() {
    let t = TestRealm::new(&["core"]).await;
    let sink = SmtpSink::start(false).await;
    t.put_connection(
        json!({"conn_id": "mail", "type": "email", "subtype": "smtp", "enabled": true,
               "host": "127.0.0.1", "port": sink.port, "from": "lava@example.com"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let small = dir.path().join("a.txt");
    let big = dir.path().join("b.txt");
    std::fs::write(&small, "1234").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&big, "123456789").unwrap_or_else(|e| panic!("{e}"));
    let mail = |files: Vec<String>| {
        json!([{"action": "email", "email_conn": "mail", "to": "x@example.com",
                "subject": "s", "message": "m", "attachments": files}])
    };
    let path = |p: &std::path::Path| p.display().to_string();
    t.put_job(job("many", mail(vec![path(&small), path(&small)])))
        .await;
    t.put_job(job("large", mail(vec![path(&big)]))).await;
    let limits = [
        ("LAVA_EMAIL_MAX_ATTACHMENTS", "1"),
        ("LAVA_EMAIL_MAX_ATTACHMENT_SIZE", "8"),
    ];
    let (run, _) = run_job(&t, "many", &limits).await;
    assert_eq!(
        action_failed(&t, "many", &run).await.as_deref(),
        Some("on_success action: email: Too many email attachments (max 1)")
    );
    let (run, _) = run_job(&t, "large", &limits).await;
    assert_eq!(
        action_failed(&t, "large", &run).await,
        Some(format!(
            "on_success action: email: Attachment {} exceeds 8 bytes",
            big.display()
        ))
    );
    assert!(sink.sessions().iter().all(|(_, data)| data.is_empty()));
}

#[tokio::test]
async fn bare_ses_sender_from_settings_or_a_verified_domain() {
    let t = TestRealm::new(&["core"]).await;
    let local_dir = match suite_backend() {
        BackendSpec::Local(dir) => Some(dir),
        BackendSpec::Aws => None,
    };
    let domain = match &local_dir {
        // The local backend has no SES: no identities either.
        Some(_) => String::new(),
        None => {
            let config = lava_common::store::aws::sdk_config(None).await;
            let ses = aws_sdk_ses::Client::new(&config);
            ses.verify_domain_identity()
                .domain("notify.example")
                .send()
                .await
                .unwrap_or_else(|e| panic!("verify: {e}"));
            ses.verify_email_identity()
                .email_address("configured@example.com")
                .send()
                .await
                .unwrap_or_else(|e| panic!("verify: {e}"));
            let listed = ses
                .list_identities()
                .identity_type(aws_sdk_ses::types::IdentityType::Domain)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list: {e}"));
            listed.identities().first().cloned().unwrap_or_default()
        }
    };
    let by_domain = format!("By domain {}", t.name);
    let by_setting = format!("By setting {}", t.name);
    t.put_job(job(
        "guess",
        json!([{"action": "email", "to": ["a@example.com"], "subject": by_domain,
                "message": "plain text"}]),
    ))
    .await;
    t.put_job(job(
        "configured",
        json!([{"action": "email", "to": "a@example.com", "subject": by_setting,
                "message": "plain text", "region": "us-east-1"}]),
    ))
    .await;
    let ended: &[&str] = match &local_dir {
        None => &["starting", "running", "complete"],
        Some(_) => &["starting", "running", "complete", "action_failed"],
    };
    let (guess, _) = run_job(&t, "guess", &[]).await;
    t.assert_statuses("guess", &guess, ended).await;
    let (run, _) = run_job(
        &t,
        "configured",
        &[("LAVA_SES_FROM", "configured@example.com")],
    )
    .await;
    t.assert_statuses("configured", &run, ended).await;
    if local_dir.is_some() {
        for (job_id, run) in [("guess", &guess), ("configured", &run)] {
            assert_eq!(
                action_failed(&t, job_id, run).await.as_deref(),
                Some("on_success action: email: not available on the local backend"),
                "{job_id}"
            );
        }
        return;
    }
    let sent = moto_ses_messages().await;
    let source_of = |subject: &str| {
        sent.iter()
            .find(|m| m["subject"] == json!(subject))
            .map(|m| (m["source"].clone(), m["body"].clone()))
            .unwrap_or_else(|| panic!("no message {subject}: {sent:?}"))
    };
    assert_eq!(
        source_of(&by_domain),
        (
            json!(format!("lava.{}@{domain}", t.name)),
            json!("plain text")
        )
    );
    assert_eq!(source_of(&by_setting).0, json!("configured@example.com"));
}
