//! The storage seams' contract, checked against a real backend. Each check
//! takes a backend and a fresh realm, so every backend runs the same checks:
//! `aws_*` on the emulator, `local_*` on a fresh `local:<tempdir>`.

use std::path::Path;
use std::time::Duration;

use lava_common::provision::{self, RealmSetup};
use lava_common::spec::Item;
use lava_common::store::aws::{AwsObjects, Multipart};
use lava_common::store::{Backend, EventWrite, Index, Key, Lease, Objects, StoreError, Table};
use lava_tests::{backend, local_backend, unique};
use serde_json::{Value, json};

fn item(v: Value) -> Item {
    v.as_object().cloned().unwrap_or_default()
}

async fn fresh_realm(b: &Backend) -> String {
    let realm = unique("st");
    if let Err(e) = provision::create_realm(b, &RealmSetup::new(&realm, &["core"])).await {
        panic!("create realm: {e}");
    }
    realm
}

/// Items by key, scans, index queries, numbers kept as integers.
async fn check_tables(b: &Backend, realm: &str) {
    let t = &b.tables;
    for i in 0..3 {
        let job = item(
            json!({"job_id": format!("j{i}"), "type": "cmd", "worker": "core", "payload": null,
                              "dispatcher": if i < 2 { "syd" } else { "mel" }, "schedule": "0 * * * *",
                              "iteration_limit": 3, "ratio": 2.5, "nested": {"list": [1, "a", true, null]}}),
        );
        t.put(realm, Table::Jobs, &job)
            .await
            .unwrap_or_else(|e| panic!("put: {e}"));
    }
    let got = t
        .get(realm, Table::Jobs, &Key::new("j1"), true)
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    let got = got.unwrap_or_else(|| panic!("j1 missing"));
    assert_eq!(got.get("iteration_limit"), Some(&json!(3)));
    assert_eq!(got.get("ratio"), Some(&json!(2.5)));
    assert_eq!(got.get("payload"), Some(&Value::Null));
    assert_eq!(
        got.get("nested"),
        Some(&json!({"list": [1, "a", true, null]}))
    );
    assert_eq!(
        t.get(realm, Table::Jobs, &Key::new("nope"), false).await,
        Ok(None)
    );
    assert_eq!(t.scan(realm, Table::Jobs).await.map(|v| v.len()), Ok(3));
    let syd = t
        .query(realm, Index::JobsByDispatcher, "syd", None)
        .await
        .unwrap_or_else(|e| panic!("query: {e}"));
    let ids: Vec<_> = syd
        .iter()
        .map(|i| i.get("job_id").cloned().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec![json!("j0"), json!("j1")], "sorted by job_id");
    t.delete(realm, Table::Jobs, &Key::new("j0"))
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(t.scan(realm, Table::Jobs).await.map(|v| v.len()), Ok(2));
    let missing = t
        .get("no_such_realm_x", Table::Jobs, &Key::new("j"), false)
        .await;
    assert!(
        matches!(missing, Err(StoreError::TableNotFound(_))),
        "{missing:?}"
    );
}

fn event(index: usize, status: &str, holder: Option<&str>, last: bool) -> EventWrite {
    EventWrite {
        job_id: "job/a".into(),
        run_id: "run-1".into(),
        set: item(
            json!({"status": status, "ts_event": "2024-05-01T10:00:00+10:00", "worker": "core", "worker_id": null}),
        ),
        entry: item(
            json!({"ts_event": "2024-05-01T10:00:00+10:00", "tu_event": "2024-05-01T00:00:00",
                           "status": status, "info": if status == "running" { json!("Iteration 1") } else { Value::Null }}),
        ),
        index,
        holder: holder.map(str::to_string),
        release_lease: last,
        finishes: last,
    }
}

/// Event appends conditioned on the log length and the lease, and run
/// leases fenced by the final entry.
async fn check_events_and_leases(b: &Backend, realm: &str) {
    let t = &b.tables;
    let lease = |owner: &str, expires: i64| Lease {
        owner: owner.into(),
        expires,
    };
    let taken = t
        .acquire_lease(realm, "job/a", "run-1", &lease("w1", 1000), 500, None)
        .await
        .unwrap_or_else(|e| panic!("acquire: {e}"))
        .unwrap_or_else(|| panic!("a new run's lease is free"));
    assert_eq!(
        taken.get("lease"),
        Some(&json!({"owner": "w1", "expires": 1000}))
    );
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w2", 1100), 600, None)
            .await,
        Ok(None),
        "held by w1"
    );
    assert!(
        matches!(
            t.acquire_lease(realm, "job/a", "run-1", &lease("w1", 1200), 600, None)
                .await,
            Ok(Some(_))
        ),
        "taken again by its holder"
    );
    assert_eq!(
        t.renew_lease(realm, "job/a", "run-1", &lease("w2", 1300), None)
            .await,
        Ok(false),
        "only the holder renews"
    );
    assert!(
        matches!(
            t.acquire_lease(realm, "job/a", "run-1", &lease("w2", 2000), 1300, None)
                .await,
            Ok(Some(_))
        ),
        "expired: taken over"
    );
    assert_eq!(
        t.renew_lease(realm, "job/a", "run-1", &lease("w1", 2100), None)
            .await,
        Ok(false),
        "the old holder cannot renew a lease taken over"
    );
    assert_eq!(
        t.renew_lease(
            realm,
            "job/a",
            "run-1",
            &lease("w2", 2100),
            Some(99_999_999_999)
        )
        .await,
        Ok(true)
    );

    let stale = t
        .append_event(realm, &event(0, "starting", Some("w1"), false))
        .await;
    assert!(
        matches!(stale, Err(StoreError::ConditionFailed(_))),
        "a worker that lost the lease cannot write: {stale:?}"
    );
    t.append_event(realm, &event(0, "starting", Some("w2"), false))
        .await
        .unwrap_or_else(|e| panic!("append 0: {e}"));
    let again = t
        .append_event(realm, &event(0, "starting", Some("w2"), false))
        .await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed(_))),
        "a repeat does not append twice: {again:?}"
    );
    t.append_event(realm, &event(1, "running", Some("w2"), false))
        .await
        .unwrap_or_else(|e| panic!("append 1: {e}"));
    let skipped = t
        .append_event(realm, &event(5, "complete", Some("w2"), true))
        .await;
    assert!(matches!(skipped, Err(StoreError::ConditionFailed(_))));
    t.append_event(realm, &event(2, "complete", Some("w2"), true))
        .await
        .unwrap_or_else(|e| panic!("append 2: {e}"));
    // After the final entry: no lease for anybody, even an expired one's
    // successor, and an unfenced entry (`action_failed`) still appends.
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w3", 5000), 4000, None)
            .await,
        Ok(None),
        "a finished run takes no lease"
    );
    assert_eq!(
        t.renew_lease(realm, "job/a", "run-1", &lease("w2", 5000), None)
            .await,
        Ok(false),
        "the final entry released the lease"
    );
    t.append_event(realm, &event(3, "action_failed", None, false))
        .await
        .unwrap_or_else(|e| panic!("append 3: {e}"));

    let got = t
        .get(
            realm,
            Table::Events,
            &Key::with_sort("job/a", "run-1"),
            true,
        )
        .await;
    let got = got
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("events item missing"));
    assert_eq!(got.get("status"), Some(&json!("action_failed")));
    assert_eq!(got.get("final_status"), Some(&json!("complete")));
    assert_eq!(
        got.get("ttl"),
        Some(&json!(99_999_999_999_i64)),
        "renewal sets the ttl"
    );
    assert_eq!(got.get("worker_id"), Some(&Value::Null));
    assert!(
        got.get("lease").is_none(),
        "the final write releases the lease"
    );
    let log = got
        .get("log")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<_> = log.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(
        statuses,
        vec![
            json!("starting"),
            json!("running"),
            json!("complete"),
            json!("action_failed")
        ]
    );
    assert_eq!(log[1]["info"], json!("Iteration 1"));
}

/// A lease taken together with the run's first entry: appended once, never
/// by a retry of the same owner, and not on a run whose `status` is final.
async fn check_lease_with_first_entry(b: &Backend, realm: &str) {
    let t = &b.tables;
    let lease = |owner: &str, expires: i64| Lease {
        owner: owner.into(),
        expires,
    };
    let on = |run_id: &str, status: &str| EventWrite {
        run_id: run_id.into(),
        ..event(0, status, None, false)
    };
    let taken = t
        .acquire_lease(
            realm,
            "job/a",
            "run-2",
            &lease("w1", 1000),
            500,
            Some(&on("run-2", "starting")),
        )
        .await
        .unwrap_or_else(|e| panic!("acquire: {e}"))
        .unwrap_or_else(|| panic!("a new run's lease is free"));
    assert_eq!(taken.get("status"), Some(&json!("starting")));
    assert_eq!(taken.get("worker"), Some(&json!("core")));
    assert_eq!(
        taken.get("lease"),
        Some(&json!({"owner": "w1", "expires": 1000}))
    );
    let statuses = |item: &Item| -> Vec<Value> {
        item.get("log")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|e| e["status"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(statuses(&taken), vec![json!("starting")]);
    assert_eq!(
        t.acquire_lease(
            realm,
            "job/a",
            "run-2",
            &lease("w1", 1100),
            600,
            Some(&on("run-2", "starting"))
        )
        .await,
        Ok(None),
        "a retry by the holder does not append again"
    );
    assert_eq!(
        t.acquire_lease(
            realm,
            "job/a",
            "run-2",
            &lease("w1", 2000),
            1500,
            Some(&on("run-2", "starting"))
        )
        .await,
        Ok(None),
        "nor when its own lease has lapsed meanwhile"
    );
    // Expired, but the run has entries: another worker takes it plainly,
    // reads its log, and adds its own entries after.
    assert_eq!(
        t.acquire_lease(
            realm,
            "job/a",
            "run-2",
            &lease("w2", 2000),
            1500,
            Some(&on("run-2", "starting"))
        )
        .await,
        Ok(None),
        "no entry goes with the lease on a run that has a log"
    );
    let again = t
        .acquire_lease(realm, "job/a", "run-2", &lease("w2", 2000), 1500, None)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("an expired lease is taken"));
    assert_eq!(statuses(&again), vec![json!("starting")]);

    // A run another kind of worker finished (a final `status`, no
    // `final_status`): no entry is added; a plain taking still works, so
    // the caller can read the log and see it finished.
    let mut finished = item(
        json!({"job_id": "job/a", "run_id": "run-3", "status": "complete",
        "log": [{"ts_event": "2024-05-01T10:00:00+10:00", "tu_event": "2024-05-01T00:00:00",
                 "status": "complete", "info": null}]}),
    );
    t.put(realm, Table::Events, &finished)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        t.acquire_lease(
            realm,
            "job/a",
            "run-3",
            &lease("w1", 1000),
            500,
            Some(&on("run-3", "starting"))
        )
        .await,
        Ok(None),
        "a finished status refuses the first entry"
    );
    finished.insert("status".into(), json!("action_failed"));
    t.put(realm, Table::Events, &finished)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert!(
        matches!(
            t.acquire_lease(realm, "job/a", "run-3", &lease("w1", 1000), 500, None)
                .await,
            Ok(Some(_))
        ),
        "a plain taking is not refused by the status"
    );
}

/// Send with delay, receive counts, visibility, delete.
async fn check_queue(b: &Backend, realm: &str) {
    let q = &b.queue;
    let name = lava_common::names::queue_name(realm, "core");
    let queue = q
        .resolve(&name)
        .await
        .unwrap_or_else(|e| panic!("resolve: {e}"));
    assert!(matches!(
        q.resolve("lava-nope-nope").await,
        Err(StoreError::QueueNotFound(_))
    ));
    q.send(&queue, "first", 0)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let got = q
        .receive(&queue, 1, 2)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].body.as_str(), got[0].receive_count), ("first", 1));
    q.change_visibility(&queue, &got[0].receipt, 0)
        .await
        .unwrap_or_else(|e| panic!("visibility: {e}"));
    let again = q
        .receive(&queue, 1, 2)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2, "redelivery counts");
    q.delete(&queue, &again[0].receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(q.receive(&queue, 1, 1).await.map(|v| v.len()), Ok(0));

    q.send(&queue, "later", 2)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(
        q.receive(&queue, 1, 0).await.map(|v| v.len()),
        Ok(0),
        "delayed"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = q
        .receive(&queue, 1, 2)
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert_eq!(later.len(), 1);
    q.delete(&queue, &later[0].receipt)
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
}

/// Put, get and list by prefix (not descending past the next `/`).
async fn check_objects(b: &Backend, realm: &str) {
    let o = &b.objects;
    let bucket = lava_common::names::default_bucket(realm);
    let root = format!("{}/payloads", o.bucket_url(&bucket));
    for key in [
        "demo/run.sh",
        "demo/run.sh.bak",
        "demo/sub/deep.sh",
        "other.sh",
    ] {
        o.put(&format!("{root}/{key}"), key.as_bytes().to_vec(), None)
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
    assert_eq!(
        o.get(&format!("{root}/demo/run.sh")).await,
        Ok(b"demo/run.sh".to_vec())
    );
    let listed = o
        .list(&format!("{root}/demo/run.sh"))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    let urls: Vec<_> = listed.iter().map(|i| i.url.clone()).collect();
    assert_eq!(
        urls,
        vec![
            format!("{root}/demo/run.sh"),
            format!("{root}/demo/run.sh.bak")
        ]
    );
    assert_eq!(listed[0].size, 11);
    let top = o
        .list(&format!("{root}/demo/"))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(top.len(), 2, "demo/sub/ is not descended into: {top:?}");
    assert!(matches!(
        o.get(&format!("{root}/missing")).await,
        Err(StoreError::ObjectNotFound(_))
    ));
}

/// `len` bytes that differ from part to part and from offset to offset, so
/// a part sent twice, dropped or out of order shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Names of the entries of a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let list = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut names: Vec<String> = list
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The size of a file a little above two 5 MiB parts, so an upload with
/// [`small_parts`] goes up in three parts, the last one short.
const BIG: usize = 12 * 1024 * 1024 + 4321;

/// Multipart above 5 MiB, in S3's smallest parts.
fn small_parts() -> Multipart {
    Multipart {
        threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
    }
}

/// Files streamed up and down: a file above the multipart threshold comes
/// back byte for byte; an empty one too; a download replaces an existing
/// file whole; a missing object gives `ObjectNotFound` and leaves no file;
/// a missing local file is an error naming it, and stores nothing.
async fn check_transfers(o: &dyn Objects, realm: &str) {
    let bucket = lava_common::names::default_bucket(realm);
    let root = format!("{}/transfers", o.bucket_url(&bucket));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = dir.path();
    let source = dir.join("big.bin");
    let body = pattern(BIG);
    std::fs::write(&source, &body).unwrap_or_else(|e| panic!("write: {e}"));

    let url = format!("{root}/big.bin");
    assert_eq!(o.upload(&url, &source, None).await, Ok(BIG as u64));
    let listed = o.list(&url).await.unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].size, BIG as u64);
    let back = dir.join("back.bin");
    std::fs::write(&back, b"an older, shorter file").unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(o.download(&url, &back).await, Ok(BIG as u64));
    let got = read(&back);
    assert_eq!(got.len(), BIG);
    assert!(
        got == body,
        "the downloaded file differs from the uploaded one"
    );

    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap_or_else(|e| panic!("write: {e}"));
    let empty_url = format!("{root}/empty");
    assert_eq!(o.upload(&empty_url, &empty, None).await, Ok(0));
    let empty_back = dir.join("empty.back");
    assert_eq!(o.download(&empty_url, &empty_back).await, Ok(0));
    assert_eq!(read(&empty_back), b"");

    let small = dir.join("small.sh");
    std::fs::write(&small, b"echo hello").unwrap_or_else(|e| panic!("write: {e}"));
    let small_url = format!("{root}/small.sh");
    assert_eq!(o.upload(&small_url, &small, None).await, Ok(10));
    assert_eq!(o.get(&small_url).await, Ok(b"echo hello".to_vec()));

    let before = entries(dir);
    let nowhere = dir.join("missing.bin");
    let missing = o.download(&format!("{root}/missing.bin"), &nowhere).await;
    assert!(
        matches!(missing, Err(StoreError::ObjectNotFound(_))),
        "{missing:?}"
    );
    assert!(!nowhere.exists(), "a failed download left {nowhere:?}");
    assert_eq!(entries(dir), before, "a failed download left a file behind");

    let absent = dir.join("no-such-file");
    let absent_url = format!("{root}/absent");
    let failed = o.upload(&absent_url, &absent, None).await;
    let Err(StoreError::BadRequest(text)) = &failed else {
        panic!("uploading a missing file: {failed:?}");
    };
    assert!(
        text.contains("no-such-file"),
        "the error names the file: {text}"
    );
    assert!(matches!(
        o.get(&absent_url).await,
        Err(StoreError::ObjectNotFound(_))
    ));
}

#[tokio::test]
async fn aws_tables() {
    let b = backend().await;
    let realm = fresh_realm(&b).await;
    check_tables(&b, &realm).await;
}

#[tokio::test]
async fn aws_events_and_leases() {
    let b = backend().await;
    let realm = fresh_realm(&b).await;
    check_events_and_leases(&b, &realm).await;
    check_lease_with_first_entry(&b, &realm).await;
}

#[tokio::test]
async fn aws_queue() {
    let b = backend().await;
    let realm = fresh_realm(&b).await;
    check_queue(&b, &realm).await;
}

#[tokio::test]
async fn aws_objects() {
    let b = backend().await;
    let realm = fresh_realm(&b).await;
    check_objects(&b, &realm).await;
}

#[tokio::test]
async fn aws_transfers() {
    let b = backend().await;
    let realm = fresh_realm(&b).await;
    let config = lava_common::store::aws::sdk_config(None).await;
    let objects = AwsObjects::new(&config).with_multipart(small_parts());
    check_transfers(&objects, &realm).await;
    // The big file really went up in three parts: S3 gives a multipart
    // object an ETag ending in `-<parts>`.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let head = s3
        .head_object()
        .bucket(lava_common::names::default_bucket(&realm))
        .key("transfers/big.bin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("head: {e:?}"));
    let etag = head.e_tag().unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-3"), "ETag {etag}");
    let pending = s3
        .list_multipart_uploads()
        .bucket(lava_common::names::default_bucket(&realm))
        .send()
        .await
        .unwrap_or_else(|e| panic!("list uploads: {e:?}"));
    assert!(pending.uploads().is_empty(), "{:?}", pending.uploads());
}

#[tokio::test]
async fn local_tables() {
    let (_dir, b) = local_backend().await;
    let realm = fresh_realm(&b).await;
    check_tables(&b, &realm).await;
}

#[tokio::test]
async fn local_events_and_leases() {
    let (_dir, b) = local_backend().await;
    let realm = fresh_realm(&b).await;
    check_events_and_leases(&b, &realm).await;
    check_lease_with_first_entry(&b, &realm).await;
}

#[tokio::test]
async fn local_queue() {
    let (_dir, b) = local_backend().await;
    let realm = fresh_realm(&b).await;
    check_queue(&b, &realm).await;
}

#[tokio::test]
async fn local_objects() {
    let (_dir, b) = local_backend().await;
    let realm = fresh_realm(&b).await;
    check_objects(&b, &realm).await;
}

#[tokio::test]
async fn local_transfers() {
    let (_dir, b) = local_backend().await;
    let realm = fresh_realm(&b).await;
    check_transfers(b.objects.as_ref(), &realm).await;
}
