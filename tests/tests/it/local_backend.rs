//! The local backend (`local:<DIR>`) beyond the shared seam contract: TTL,
//! receipts and visibility, long polls, bad directories and database files,
//! schema migration, several processes sharing one queue, file transfers'
//! temporary files, and the event bus on its own.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use lava_common::provision::{self, RealmSetup};
use lava_common::spec::Item;
use lava_common::store::{
    Backend, BackendSpec, BusEvent, EventWrite, Index, Key, StoreError, Table, connect_bus,
};
use lava_tests::{lava, local_backend, output, stderr, stdout, unique};
use serde_json::{Value, json};

fn item(v: Value) -> Item {
    v.as_object().cloned().unwrap_or_default()
}

async fn open(dir: &Path) -> Result<Backend, StoreError> {
    Backend::connect(&BackendSpec::Local(dir.to_path_buf()), None).await
}

async fn realm_on(b: &Backend) -> String {
    let realm = unique("lb");
    if let Err(e) = provision::create_realm(b, &RealmSetup::new(&realm, &["core"])).await {
        panic!("create realm: {e}");
    }
    realm
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sql(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("lava.db")).unwrap_or_else(|e| panic!("sqlite: {e}"))
}

fn schema_version(dir: &Path) -> String {
    sql(dir)
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("meta: {e}"))
}

#[tokio::test]
async fn ttl_in_the_past_reads_as_absent_and_is_swept() {
    let (dir, b) = local_backend().await;
    let realm = realm_on(&b).await;
    let t = &b.tables;
    let past = now() - 10;
    let future = now() + 3600;
    for (run, ttl) in [("old", past), ("new", future)] {
        let event = item(
            json!({"job_id": "j", "run_id": run, "tu_event": "2024-01-01T00:00:00",
                                "status": "complete", "ttl": ttl}),
        );
        t.put(&realm, Table::Events, &event)
            .await
            .unwrap_or_else(|e| panic!("put: {e}"));
    }
    let state = item(json!({"state_id": "s", "value": 1, "ttl": past}));
    t.put(&realm, Table::State, &state)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    // A `ttl` on a table without TTL is just an attribute, as on DynamoDB.
    let job = item(json!({"job_id": "j", "ttl": past}));
    t.put(&realm, Table::Jobs, &job)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));

    let get = |table, key| {
        let t = t.clone();
        let realm = realm.clone();
        async move { t.get(&realm, table, &key, true).await }
    };
    assert_eq!(
        get(Table::Events, Key::with_sort("j", "old")).await,
        Ok(None)
    );
    assert!(matches!(
        get(Table::Events, Key::with_sort("j", "new")).await,
        Ok(Some(_))
    ));
    assert_eq!(get(Table::State, Key::new("s")).await, Ok(None));
    assert!(matches!(get(Table::Jobs, Key::new("j")).await, Ok(Some(_))));
    assert_eq!(t.scan(&realm, Table::Events).await.map(|v| v.len()), Ok(1));
    let by_time = t
        .query(&realm, Index::EventsByTime, "j", None)
        .await
        .unwrap_or_else(|e| panic!("query: {e}"));
    assert_eq!(by_time.len(), 1);
    assert_eq!(by_time[0]["run_id"], json!("new"));

    // An expired events item is absent for appends too: index 0 starts afresh.
    let with_log =
        item(json!({"job_id": "j", "run_id": "gone", "log": [{"status": "x"}], "ttl": past}));
    t.put(&realm, Table::Events, &with_log)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    let write = EventWrite {
        job_id: "j".into(),
        run_id: "gone".into(),
        set: item(json!({"status": "starting"})),
        entry: item(json!({"status": "starting"})),
        index: 0,
        holder: None,
        release_lease: false,
        finishes: false,
    };
    t.append_event(&realm, &write)
        .await
        .unwrap_or_else(|e| panic!("append onto an expired item: {e}"));
    let fresh = get(Table::Events, Key::with_sort("j", "gone"))
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("appended item missing"));
    assert_eq!(fresh.get("log"), Some(&json!([{"status": "starting"}])));
    assert!(
        fresh.get("ttl").is_none(),
        "the expired item's attributes are gone"
    );

    // Opening the directory again sweeps the expired rows out of the file.
    let count = || -> i64 {
        sql(dir.path())
            .query_row(
                "SELECT count(*) FROM items WHERE ttl IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("count: {e}"))
    };
    assert_eq!(count(), 3, "old event, state and the new event");
    let _again = open(dir.path())
        .await
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(count(), 1, "only the live event is left");
}

#[tokio::test]
async fn a_stale_receipt_neither_deletes_nor_extends_the_redelivered_message() {
    let (_dir, b) = local_backend().await;
    let q = &b.queue;
    let queue = q
        .create("lava-lb-stale", 1)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    q.send(&queue, "m", 0)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let first = q
        .receive(&queue, 1, 0)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(first.len(), 1);
    let second = q
        .receive(&queue, 1, 5)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(
        second.len(),
        1,
        "redelivered after the 1 s visibility timeout"
    );
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_ne!(second[0].receipt, first[0].receipt);

    let stale_delete = q.delete(&queue, &first[0].receipt).await;
    assert!(
        matches!(&stale_delete, Err(StoreError::Service(m)) if m.starts_with("ReceiptHandleIsInvalid")),
        "{stale_delete:?}"
    );
    let stale_change = q.change_visibility(&queue, &first[0].receipt, 0).await;
    assert!(stale_change.is_err(), "{stale_change:?}");
    // Still in flight under the new receipt, which deletes it.
    assert_eq!(q.receive(&queue, 1, 0).await.map(|v| v.len()), Ok(0));
    q.delete(&queue, &second[0].receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert!(q.delete(&queue, &second[0].receipt).await.is_err());
    assert!(matches!(
        q.receive(
            &lava_common::store::QueueRef {
                name: "lava-lb-none".into(),
                url: String::new()
            },
            1,
            0
        )
        .await,
        Err(StoreError::QueueNotFound(_))
    ));
}

#[tokio::test]
async fn visibility_timeout_redelivers_and_long_polls_wake_up() {
    let (_dir, b) = local_backend().await;
    let q = &b.queue;
    let queue = q
        .create("lava-lb-vis", 1)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    // Creating again with the same timeout is harmless; another timeout is refused, as on SQS.
    assert!(q.create("lava-lb-vis", 1).await.is_ok());
    assert!(q.create("lava-lb-vis", 30).await.is_err());
    q.send(&queue, "v", 0)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = q
        .receive(&queue, 10, 0)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(got.len(), 1);
    assert_eq!(
        q.receive(&queue, 10, 0).await.map(|v| v.len()),
        Ok(0),
        "invisible"
    );
    let started = Instant::now();
    let again = q
        .receive(&queue, 10, 5)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    let waited = started.elapsed();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    assert!(
        waited < Duration::from_secs(4),
        "woken when the message became visible, not at the end of the wait: {waited:?}"
    );
    // Extending the visibility keeps it away; the extension uses the current receipt.
    q.change_visibility(&queue, &again[0].receipt, 3)
        .await
        .unwrap_or_else(|e| panic!("visibility: {e}"));
    let started = Instant::now();
    assert_eq!(q.receive(&queue, 10, 2).await.map(|v| v.len()), Ok(0));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the long poll waited"
    );
    q.delete(&queue, &again[0].receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));

    // A send from the same process reaches a receive that is already
    // waiting (its polls backed off); how fast is a benchmark figure
    // (tests/bench/local.py), not a test assertion.
    let waiter = {
        let b = b.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let got = b.queue.receive(&queue, 1, 20).await;
            (got, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent_at = Instant::now();
    q.send(&queue, "wake", 0)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let (got, done_at) = waiter.await.unwrap_or_else(|e| panic!("join: {e}"));
    let got = got.unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(got.len(), 1);
    assert!(
        done_at.duration_since(sent_at) < Duration::from_secs(15),
        "woken by the send, not by the end of the 20 s wait"
    );
    assert!(
        q.change_visibility(&queue, &got[0].receipt, 43_201)
            .await
            .is_err()
    );
    assert!(
        q.send(&queue, "late", 901).await.is_err(),
        "SQS's 900 s delay limit"
    );
}

#[tokio::test]
async fn a_missing_directory_is_created_and_an_unusable_one_is_named() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let deep = tmp.path().join("a/b/c");
    let b = open(&deep)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", deep.display()));
    assert!(deep.join("lava.db").is_file());
    assert!(deep.join("objects").is_dir());
    drop(b);

    // Tests run as root, so "unwritable" is a path under a regular file.
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    let under = file.join("sub");
    let err = open(&under).await.err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(err, Some(StoreError::BadRequest(_)))
            && text.contains(&under.display().to_string()),
        "{err:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).ok().as_deref(), Some("x"));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = tmp.path().join("lava.db");
    let junk = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&db, &junk).unwrap_or_else(|e| panic!("{e}"));
    let err = open(tmp.path()).await.err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(err, Some(StoreError::BadRequest(_)))
            && text.contains(&db.display().to_string())
            && text.contains("not a lava database"),
        "{err:?}"
    );
    assert_eq!(std::fs::read_to_string(&db).ok(), Some(junk));

    // Another program's SQLite database is refused too.
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    sql(other.path())
        .execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = open(other.path()).await.err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("not lava's")),
        "{err:?}"
    );
    let kept: String = sql(other.path())
        .query_row("SELECT text FROM notes", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept, "mine");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (dir, b) = local_backend().await;
    drop(b);
    sql(dir.path())
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let err = open(dir.path()).await.err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(err, Some(StoreError::BadRequest(_)))
            && text.contains("schema version 99")
            && text.contains(&dir.path().join("lava.db").display().to_string()),
        "{err:?}"
    );
    assert_eq!(schema_version(dir.path()), "99", "left as it was");
}

#[tokio::test]
async fn an_older_schema_is_migrated() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    sql(tmp.path())
        .execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '0'), ('note', 'kept');",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let b = open(tmp.path())
        .await
        .unwrap_or_else(|e| panic!("open a version 0 file: {e}"));
    assert_eq!(schema_version(tmp.path()), "1");
    let note: String = sql(tmp.path())
        .query_row("SELECT value FROM meta WHERE key = 'note'", [], |r| {
            r.get(0)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(note, "kept");
    let realm = realm_on(&b).await;
    let got = b
        .tables
        .get(&realm, Table::Realms, &Key::new(realm.clone()), true)
        .await;
    assert!(matches!(got, Ok(Some(_))), "{got:?}");
}

/// Four consumer processes drain one queue while 200 producer processes
/// (`lava-dispatch`) send to it: every message is processed exactly once.
#[tokio::test]
async fn several_processes_share_a_queue_without_losing_or_doubling() {
    const MESSAGES: usize = 200;
    const CONSUMERS: usize = 4;
    const PARALLEL_SENDERS: usize = 8;
    let (dir, b) = local_backend().await;
    let realm = realm_on(&b).await;
    let spec = format!("local:{}", dir.path().display());
    let queue = lava_common::names::queue_name(&realm, "core");

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let mut cmd = lava("queue-drain");
            cmd.args([&spec, &queue, "6"]);
            tokio::spawn(async move { output(&mut cmd).await })
        })
        .collect();

    let mut sent = HashSet::new();
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..MESSAGES {
        if pending.len() >= PARALLEL_SENDERS
            && let Some(done) = pending.join_next().await
        {
            sent.insert(done.unwrap_or_else(|e| panic!("join: {e}")));
        }
        let mut cmd = lava("lava-dispatch");
        cmd.args(["--backend", &spec, "-r", &realm, "-w", "core"])
            .arg(format!("job/{i}"));
        pending.spawn(async move {
            let out = output(&mut cmd).await;
            assert!(out.status.success(), "lava-dispatch: {}", stderr(&out));
            stdout(&out).trim().to_string()
        });
    }
    while let Some(done) = pending.join_next().await {
        sent.insert(done.unwrap_or_else(|e| panic!("join: {e}")));
    }
    assert_eq!(sent.len(), MESSAGES, "200 distinct run ids dispatched");

    let mut seen = Vec::new();
    let mut per_consumer = Vec::new();
    for consumer in consumers {
        let out = consumer.await.unwrap_or_else(|e| panic!("join: {e}"));
        assert!(out.status.success(), "queue-drain: {}", stderr(&out));
        let lines: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        per_consumer.push(lines.len());
        for line in lines {
            assert_eq!(line["receive_count"], json!(1), "no redelivery: {line}");
            let body: Value = serde_json::from_str(line["body"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("body: {e}"));
            seen.push(body["run_id"].as_str().unwrap_or_default().to_string());
        }
    }
    let distinct: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        MESSAGES,
        "processed once each; per consumer {per_consumer:?}"
    );
    assert_eq!(distinct, sent, "exactly the dispatched runs");
    assert_eq!(
        b.queue
            .receive(
                &b.queue
                    .resolve(&queue)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
                10,
                0
            )
            .await
            .map(|v| v.len()),
        Ok(0)
    );
}

/// Uploads are written under `<DIR>/partial` and renamed into place;
/// neither they nor downloads leave a temporary file behind, and a key that
/// is a "directory" of other keys cannot be uploaded to.
#[tokio::test]
async fn transfers_leave_no_temporary_files() {
    let (dir, b) = local_backend().await;
    let realm = realm_on(&b).await;
    let root = b
        .objects
        .bucket_url(&lava_common::names::default_bucket(&realm));
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let source = work.path().join("payload.sh");
    std::fs::write(&source, "echo hi").unwrap_or_else(|e| panic!("{e}"));
    let url = format!("{root}/p/payload.sh");
    assert_eq!(b.objects.upload(&url, &source, None).await, Ok(7));
    let partial: Vec<_> = std::fs::read_dir(dir.path().join("partial"))
        .map(|list| list.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(partial.is_empty(), "left in partial/: {partial:?}");

    let back = work.path().join("back.sh");
    assert_eq!(b.objects.download(&url, &back).await, Ok(7));
    assert_eq!(std::fs::read(&back).ok(), Some(b"echo hi".to_vec()));
    let mut names: Vec<String> = std::fs::read_dir(work.path())
        .map(|list| {
            list.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert_eq!(names, ["back.sh", "payload.sh"]);

    let onto_dir = b.objects.upload(&format!("{root}/p"), &source, None).await;
    assert!(
        matches!(onto_dir, Err(StoreError::BadRequest(_))),
        "{onto_dir:?}"
    );
}

/// The event bus connects on its own, without the rest of the backend, and
/// appends each event as one JSON line to `<DIR>/events.jsonl`.
#[tokio::test]
async fn the_event_bus_connects_on_its_own() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bus = connect_bus(&BackendSpec::Local(dir.path().to_path_buf()), None)
        .await
        .unwrap_or_else(|e| panic!("connect_bus: {e}"));
    let event = BusEvent {
        source: "lava.lb".into(),
        detail_type: "Lava Job Action".into(),
        detail: json!({"job_id": "j"}).to_string(),
        resources: vec![],
        bus: None,
    };
    bus.put(&event).await.unwrap_or_else(|e| panic!("put: {e}"));
    let text = std::fs::read_to_string(dir.path().join("events.jsonl"))
        .unwrap_or_else(|e| panic!("events.jsonl: {e}"));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["source"], json!("lava.lb"));
    assert_eq!(lines[0]["detail-type"], json!("Lava Job Action"));
    assert_eq!(lines[0]["detail"], json!({"job_id": "j"}));
}
