//! The storage seams' contract, checked against a real backend. Each check
//! takes a backend and a fresh realm, so every backend runs the same checks:
//! `aws_*` on the emulator, `local_*` on a fresh `local:<tempdir>`.

use std::time::Duration;

use lava_common::provision::{self, RealmSetup};
use lava_common::spec::Item;
use lava_common::store::{Backend, EventWrite, Index, Key, Lease, StoreError, Table};
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

fn event(index: usize, status: &str, release: bool) -> EventWrite {
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
        release_lease: release,
    }
}

/// Event appends conditioned on the log length, and run leases.
async fn check_events_and_leases(b: &Backend, realm: &str) {
    let t = &b.tables;
    let lease = |owner: &str, expires: i64| Lease {
        owner: owner.into(),
        expires,
    };
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w1", 1000), 500)
            .await,
        Ok(true)
    );
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w2", 1100), 600)
            .await,
        Ok(false),
        "held by w1"
    );
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w1", 1200), 600)
            .await,
        Ok(true),
        "renewal"
    );
    assert_eq!(
        t.acquire_lease(realm, "job/a", "run-1", &lease("w2", 2000), 1300)
            .await,
        Ok(true),
        "expired: taken over"
    );

    t.append_event(realm, &event(0, "starting", false))
        .await
        .unwrap_or_else(|e| panic!("append 0: {e}"));
    let again = t.append_event(realm, &event(0, "starting", false)).await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed(_))),
        "a repeat does not append twice: {again:?}"
    );
    t.append_event(realm, &event(1, "running", false))
        .await
        .unwrap_or_else(|e| panic!("append 1: {e}"));
    let skipped = t.append_event(realm, &event(5, "complete", true)).await;
    assert!(matches!(skipped, Err(StoreError::ConditionFailed(_))));
    t.append_event(realm, &event(2, "complete", true))
        .await
        .unwrap_or_else(|e| panic!("append 2: {e}"));

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
    assert_eq!(got.get("status"), Some(&json!("complete")));
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
        vec![json!("starting"), json!("running"), json!("complete")]
    );
    assert_eq!(log[1]["info"], json!("Iteration 1"));
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
