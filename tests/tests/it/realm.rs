//! `lava-realm` against the emulator: create, import (all or nothing), export.

use lava_tests::{lava, output, stderr, stdout, unique};
use serde_json::{Value, json};

#[tokio::test]
async fn aws_create_import_export_round_trip() {
    let realm = unique("rt");
    let out =
        output(lava("lava-realm").args(["create", "--realm", &realm, "-w", "core", "-w", "batch"]))
            .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let bucket = format!("lava-{}", realm.to_lowercase().replace('_', "-"));
    assert_eq!(
        created["s3_payloads"],
        json!(format!("s3://{bucket}/payloads"))
    );
    assert_eq!(created["s3_temp"], json!(format!("s3://{bucket}/tmp")));
    // Creating again is harmless.
    let out = output(lava("lava-realm").args(["create", "--realm", &realm, "-w", "core"])).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let yaml = dir.path().join("jobs.yaml");
    std::fs::write(
        &yaml,
        "jobs:\n  - job_id: demo/hello\n    type: cmd\n    worker: core\n    payload: echo hello\n    enabled: true\n    iteration_limit: 2\n    x-note: kept\nconnections:\n  - conn_id: db\n    type: postgres\n    enabled: true\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = output(lava("lava-realm").args(["import", "-r", &realm]).arg(&yaml)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("job demo/hello: Missing owner"),
        "warnings shown: {}",
        stderr(&out)
    );

    let out = output(lava("lava-realm").args(["export", "-r", &realm])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["realm"]["realm"], json!(realm));
    assert_eq!(doc["jobs"][0]["job_id"], json!("demo/hello"));
    assert_eq!(
        doc["jobs"][0]["iteration_limit"],
        json!(2),
        "integers stay integers"
    );
    assert_eq!(doc["jobs"][0]["x-note"], json!("kept"));
    assert_eq!(doc["connections"][0]["conn_id"], json!("db"));

    // The export imports again unchanged (JSON and YAML).
    let out = output(lava("lava-realm").args(["export", "-r", &realm, "--format", "yaml"])).await;
    assert!(out.status.success());
    let again = dir.path().join("export.yaml");
    std::fs::write(&again, stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    let out = output(
        lava("lava-realm")
            .args(["import", "-r", &realm])
            .arg(&again),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = output(lava("lava-realm").args(["export", "-r", &realm])).await;
    let doc2: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc, doc2);
}

#[tokio::test]
async fn a_bad_item_writes_nothing() {
    let realm = unique("rt");
    let out = output(lava("lava-realm").args(["create", "--realm", &realm, "-w", "core"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("jobs.json");
    std::fs::write(
        &file,
        r#"[{"job_id": "good", "type": "cmd", "worker": "core", "payload": "true"},
            {"job_id": "bad", "type": "cmd", "worker": "core", "payload": "x", "globals": {"lava_x": 1}}]"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = output(lava("lava-realm").args(["import", "-r", &realm]).arg(&file)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("job bad: Reserved global: lava_x"),
        "{}",
        stderr(&out)
    );
    let out = output(lava("lava-realm").args(["export", "-r", &realm])).await;
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["jobs"], json!([]), "nothing written");

    let out = output(lava("lava-realm").args(["create", "--realm", "bad-name"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad realm name \"bad-name\""),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn local_backend_round_trip() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A directory that does not exist yet is created.
    let root = dir.path().join("lava");
    let backend = format!("local:{}", root.display());
    let realm = unique("lr");
    let out = output(lava("lava-realm").args([
        "create",
        "--backend",
        &backend,
        "--realm",
        &realm,
        "-w",
        "core",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let root = std::fs::canonicalize(&root).unwrap_or_else(|e| panic!("{e}"));
    let bucket = format!("lava-{}", realm.to_lowercase().replace('_', "-"));
    let objects = root.join("objects").join(&bucket);
    assert_eq!(
        created["s3_payloads"],
        json!(format!("file://{}/payloads", objects.display()))
    );
    assert_eq!(
        created["s3_temp"],
        json!(format!("file://{}/tmp", objects.display()))
    );
    assert!(objects.is_dir(), "the bucket is a directory");
    assert!(root.join("lava.db").is_file());
    // Creating again is harmless; LAVA_BACKEND works as --backend.
    let out = output(
        lava("lava-realm")
            .env("LAVA_BACKEND", &backend)
            .args(["create", "--realm", &realm, "-w", "core"]),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let yaml = dir.path().join("jobs.yaml");
    std::fs::write(
        &yaml,
        "jobs:\n  - job_id: demo/hello\n    type: cmd\n    worker: core\n    owner: me\n    payload: echo hello\n    enabled: true\n    iteration_limit: 2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = output(
        lava("lava-realm")
            .args(["import", "--backend", &backend, "-r", &realm])
            .arg(&yaml),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out =
        output(lava("lava-realm").args(["export", "--backend", &backend, "-r", &realm])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["realm"], created);
    assert_eq!(doc["jobs"][0]["job_id"], json!("demo/hello"));
    assert_eq!(doc["jobs"][0]["iteration_limit"], json!(2));

    // Another realm is unknown on this directory, as on DynamoDB.
    let out =
        output(lava("lava-realm").args(["export", "--backend", &backend, "-r", "nope"])).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lava.nope.jobs"), "{}", stderr(&out));
}

/// The example files load into a realm as they are, and export gives back
/// the connections with their secrets still named, never read.
#[tokio::test]
async fn the_packaged_examples_import_and_export_secrets_by_name() {
    let t = lava_tests::TestRealm::new(&["core"]).await;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples");
    for file in ["jobs.yaml", "connections.yaml"] {
        let out = output(
            lava("lava-realm")
                .args(["import", "-r", &t.name])
                .arg(examples.join(file)),
        )
        .await;
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
    let out = output(lava("lava-realm").args(["export", "-r", &t.name])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(examples.join("connections.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let file: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut want = file["connections"].as_array().cloned().unwrap_or_default();
    want.sort_by_key(|c| c["conn_id"].as_str().unwrap_or_default().to_string());
    assert_eq!(doc["connections"], Value::Array(want));
    assert!(
        doc["jobs"]
            .as_array()
            .is_some_and(|jobs| jobs.iter().any(|j| j["job_id"] == json!("demo/hello"))),
        "{doc}"
    );
}
