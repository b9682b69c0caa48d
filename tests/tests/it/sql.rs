//! `sql`, `sqli` and `sqlc` on this machine's PostgreSQL and MariaDB and on SQLite,
//! each test in a throwaway database dropped afterwards. The outputs of the
//! cases in `tests/golden/sql/cases.json` must equal, byte for byte, what
//! the original lava wrote for the same jobs on the same data
//! (`tests/golden/sql/regenerate.py`). Bad input fails the run with an
//! event naming the payload text and the statement, never the worker.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lava_common::db::{DbError, DbSpec, Engine, RowSink, Session, TlsMode};
use lava_common::sql::csv::Field;
use lava_tests::{TestRealm, stderr};
use serde_json::{Value, json};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/sql")
}

/// Discards result sets (setup statements).
struct Discard;

#[async_trait]
impl RowSink for Discard {
    async fn columns(&mut self, _names: &[String]) -> Result<(), DbError> {
        Ok(())
    }

    async fn rows(&mut self, _rows: &[Vec<Field>]) -> Result<(), DbError> {
        Ok(())
    }
}

fn admin_spec(engine: Engine, database: &str) -> DbSpec {
    let (port, user, database) = match engine {
        Engine::MySql => (3306, "root", database),
        _ => (5432, "postgres", database),
    };
    DbSpec {
        conn_id: "admin".into(),
        engine,
        host: "127.0.0.1".into(),
        port,
        database: Some(database.to_string()),
        user: user.into(),
        password: String::new(),
        tls: TlsMode::Off,
        ca_file: None,
        app_name: Some("lava-tests".into()),
    }
}

async fn run_all(spec: &DbSpec, statements: &[String]) {
    let mut session = Session::connect(spec)
        .await
        .unwrap_or_else(|e| panic!("connect {spec:?}: {e}"));
    for s in statements {
        if let Err(e) = session.execute(s, 100, &mut Discard).await {
            panic!("{s}: {e}");
        }
    }
    session.close().await;
}

/// A throwaway database (and, on MariaDB, a user with a password), with
/// the golden tables; dropped by [`ScratchDb::drop_now`].
struct ScratchDb {
    engine: Engine,
    name: String,
    user: String,
    password: String,
}

impl ScratchDb {
    async fn create(engine: Engine) -> Self {
        let name = format!(
            "lava_t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let (admin_db, setup, user) = match engine {
            Engine::MySql => ("mysql", "setup-mariadb.sql", name.clone()),
            _ => ("postgres", "setup-postgres.sql", "postgres".to_string()),
        };
        let mut first = vec![format!("CREATE DATABASE {name}")];
        match engine {
            Engine::MySql => first.extend([
                format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
                format!("GRANT ALL ON {name}.* TO '{user}'@'%'"),
            ]),
            _ => first.push(format!("ALTER DATABASE {name} SET timezone = 'UTC'")),
        }
        run_all(&admin_spec(engine, admin_db), &first).await;
        let text = std::fs::read_to_string(golden_dir().join(setup))
            .unwrap_or_else(|e| panic!("{setup}: {e}"));
        let statements: Vec<String> = text
            .split(";\n")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        run_all(&admin_spec(engine, &name), &statements).await;
        Self {
            engine,
            name,
            user,
            password,
        }
    }

    async fn drop_now(self) {
        let statements = match self.engine {
            Engine::MySql => vec![
                format!("DROP DATABASE IF EXISTS {}", self.name),
                format!("DROP USER IF EXISTS '{}'@'%'", self.user),
            ],
            _ => vec![format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )],
        };
        let admin = match self.engine {
            Engine::MySql => "mysql",
            _ => "postgres",
        };
        run_all(&admin_spec(self.engine, admin), &statements).await;
    }

    /// The connection item, its password in SSM parameter `parameter`.
    fn connection(&self, conn_id: &str, parameter: &str) -> Value {
        let (conn_type, port) = match self.engine {
            Engine::MySql => ("mariadb", 3306),
            _ => ("postgres", 5432),
        };
        json!({"conn_id": conn_id, "type": conn_type, "enabled": true, "host": "127.0.0.1",
               "port": port, "database": self.name, "user": self.user, "password": parameter})
    }
}

fn sqli_job(job_id: &str, payload: Value, mut parameters: Value, conn_id: &str) -> Value {
    parameters["conn_id"] = json!(conn_id);
    json!({"job_id": job_id, "type": "sqli", "worker": "core", "payload": payload,
           "enabled": true, "owner": "tests", "description": "sql test", "parameters": parameters})
}

/// The `error` of a run's failed entry.
async fn failure(t: &TestRealm, job_id: &str, run_id: &str) -> String {
    let log = t.log(job_id, run_id).await;
    log.iter()
        .find(|e| e["status"] == "failed")
        .and_then(|e| e.get("info").or_else(|| e.get("error")).cloned())
        .map(|v| v.to_string())
        .unwrap_or_else(|| panic!("{job_id} did not fail: {log:#?}"))
}

/// Every golden case, as `sqli` jobs on one engine, against the original's
/// outputs.
async fn golden_cases(engine: Engine, dir: &str) {
    let t = TestRealm::new(&["core"]).await;
    let db = ScratchDb::create(engine).await;
    let parameter = format!("/lava/{}/db", t.name);
    t.put_secret(&parameter, &db.password).await;
    t.put_connection(db.connection("db", &parameter)).await;
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("cases.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut runs = Vec::new();
    for case in &cases {
        if let Some(engines) = case.get("engines").and_then(Value::as_array)
            && !engines.iter().any(|e| e == dir)
        {
            continue;
        }
        let name = case["name"].as_str().unwrap_or_default();
        let job_id = format!("sql/{name}");
        t.put_job(sqli_job(
            &job_id,
            case["payload"].clone(),
            case["parameters"].clone(),
            "db",
        ))
        .await;
        runs.push((
            name.to_string(),
            job_id.clone(),
            t.dispatch_job(&job_id, &[]).await,
        ));
    }
    let worker = t.run_worker("core", &[]).await;
    let mut wrong = Vec::new();
    for (name, job_id, run_id) in &runs {
        let golden = golden_dir().join(dir).join(name);
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(golden.join("result.json")).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        if let Some(error) = want.get("error").and_then(Value::as_str) {
            let got = failure(&t, job_id, run_id).await;
            if !got.contains(error) || !got.contains("0: statement 0") {
                wrong.push(format!("{name}: want an error with {error:?}, got {got}"));
            }
            continue;
        }
        let statuses = t.statuses(job_id, run_id).await;
        if statuses.last().map(String::as_str) != Some("complete") {
            wrong.push(format!("{name}: {:?}", t.log(job_id, run_id).await));
            continue;
        }
        let s3tmp = format!("{}/{job_id}/{run_id}", t.realm.s3_temp());
        let Some(Value::Object(output)) = want.get("output") else {
            panic!("{name}: golden without output");
        };
        for files in output.values() {
            for file in files.as_array().into_iter().flatten() {
                let file = file.as_str().unwrap_or_default();
                let expected = std::fs::read(golden.join(file)).unwrap_or_else(|e| panic!("{e}"));
                let got = t
                    .backend
                    .objects
                    .get(&format!("{s3tmp}/{file}"))
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
                if got != expected {
                    wrong.push(format!(
                        "{name}/{file}:\n want {:?}\n got  {:?}",
                        String::from_utf8_lossy(&expected),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
        }
        // The result map: every payload text's key, with its files.
        let log = t.log(job_id, run_id).await;
        let result = log
            .iter()
            .find(|e| e["status"] == "complete")
            .map(|e| e.to_string())
            .unwrap_or_default();
        for (key, files) in output {
            for file in files.as_array().into_iter().flatten() {
                let url = format!("{s3tmp}/{}", file.as_str().unwrap_or_default());
                if !result.contains(&url) {
                    wrong.push(format!("{name}: result lacks {key}: {url}: {result}"));
                }
            }
        }
    }
    db.drop_now().await;
    assert!(
        wrong.is_empty(),
        "{}\nworker log:\n{}",
        wrong.join("\n"),
        stderr(&worker)
    );
}

#[tokio::test]
async fn sqli_outputs_match_the_original_on_postgres() {
    golden_cases(Engine::Postgres, "postgres").await;
}

#[tokio::test]
async fn sqli_outputs_match_the_original_on_mariadb() {
    golden_cases(Engine::MySql, "mariadb").await;
}

/// Collects result rows as text.
#[derive(Default)]
struct Collect(Vec<Vec<Option<String>>>);

#[async_trait]
impl RowSink for Collect {
    async fn columns(&mut self, _names: &[String]) -> Result<(), DbError> {
        Ok(())
    }

    async fn rows(&mut self, rows: &[Vec<Field>]) -> Result<(), DbError> {
        self.0.extend(
            rows.iter()
                .map(|r| r.iter().map(|f| f.text.clone()).collect()),
        );
        Ok(())
    }
}

async fn query(spec: &DbSpec, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut session = Session::connect(spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rows = Collect::default();
    session
        .execute(sql, 10, &mut rows)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    session.close().await;
    rows.0
}

#[tokio::test]
async fn transactions_and_bad_input_fail_the_run_not_the_worker() {
    let t = TestRealm::new(&["core"]).await;
    let db = ScratchDb::create(Engine::Postgres).await;
    let parameter = format!("/lava/{}/db", t.name);
    t.put_secret(&parameter, &db.password).await;
    t.put_connection(db.connection("db", &parameter)).await;
    let mut nobody = db.connection("nobody", &parameter);
    let role = format!(
        "no_such_role_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    nobody["user"] = json!(role);
    t.put_connection(nobody).await;

    // `sql`: files from the payload location, in one session.
    t.put_payload(
        "sqlt/a.sql",
        b"CREATE TABLE a (x int);\nINSERT INTO a VALUES (1), (2);\n;\nSELECT x, x * 1.5 AS y FROM a ORDER BY x;\n"
            .to_vec(),
    )
    .await;
    t.put_payload("sqlt/b.sql", b"SELECT count(*) AS n FROM a".to_vec())
        .await;
    let jobs = [
        (
            "t/files",
            "sql",
            json!("sqlt/"),
            json!({"conn_id": "db", "header": true}),
        ),
        (
            "t/tx",
            "sqli",
            json!([
                "INSERT INTO q VALUES (100, 'tx')",
                "INSERT INTO nosuch VALUES (1)"
            ]),
            json!({"conn_id": "db", "transaction": true}),
        ),
        (
            "t/auto",
            "sqli",
            json!([
                "INSERT INTO q VALUES (200, 'auto')",
                "INSERT INTO nosuch VALUES (1)"
            ]),
            json!({"conn_id": "db"}),
        ),
        (
            "t/missing",
            "sqli",
            json!("SELECT 1"),
            json!({"conn_id": "gone"}),
        ),
        (
            "t/creds",
            "sqli",
            json!("SELECT 1"),
            json!({"conn_id": "nobody"}),
        ),
        (
            "t/syntax",
            "sqli",
            json!("SELECT 1; SELEC 2;"),
            json!({"conn_id": "db"}),
        ),
        (
            "t/quote",
            "sqli",
            json!(["SELECT 1", "SELECT 'a\"b'"]),
            json!({"conn_id": "db"}),
        ),
        (
            "t/quoting",
            "sqli",
            json!("SELECT 1"),
            json!({"conn_id": "db", "quoting": "fancy"}),
        ),
        (
            "t/batch",
            "sqli",
            json!("SELECT 1"),
            json!({"conn_id": "db", "batch_size": 0}),
        ),
    ];
    let mut runs = Vec::new();
    for (job_id, job_type, payload, parameters) in &jobs {
        t.put_job(json!({"job_id": job_id, "type": job_type, "worker": "core", "payload": payload,
            "enabled": true, "owner": "tests", "description": "sql test", "parameters": parameters}))
            .await;
        runs.push(t.dispatch_job(job_id, &[]).await);
    }
    // The worker survives every failure.
    t.run_worker("core", &[]).await;

    let files = &runs[0];
    t.assert_statuses("t/files", files, &["starting", "running", "complete"])
        .await;
    let s3tmp = format!("{}/t/files/{files}", t.realm.s3_temp());
    // Statement 2 is empty and skipped; the SELECT keeps index 3.
    assert_eq!(
        t.object(&format!("{s3tmp}/a.sql.3.out")).await,
        "x|y\r\n1|1.5\r\n2|3.0\r\n"
    );
    assert_eq!(
        t.object(&format!("{s3tmp}/b.sql.0.out")).await,
        "n\r\n2\r\n"
    );
    let complete = t
        .log("t/files", files)
        .await
        .last()
        .cloned()
        .unwrap_or_default();
    let text = complete.to_string();
    assert!(text.contains(&format!("{s3tmp}/a.sql.3.out")), "{text}");

    let admin = admin_spec(Engine::Postgres, &db.name);
    let failed = |job: &str, n: usize| {
        let t = &t;
        let run = runs[n].clone();
        let job = job.to_string();
        async move { failure(t, &job, &run).await }
    };
    let tx = failed("t/tx", 1).await;
    assert!(
        tx.contains("1: statement 0: ") && tx.contains("nosuch"),
        "{tx}"
    );
    assert!(
        query(&admin, "SELECT v FROM q WHERE id = 100")
            .await
            .is_empty()
    );
    let auto = failed("t/auto", 2).await;
    assert!(auto.contains("1: statement 0: "), "{auto}");
    assert_eq!(
        query(&admin, "SELECT v FROM q WHERE id = 200").await,
        vec![vec![Some("auto".to_string())]]
    );
    let missing = failed("t/missing", 3).await;
    assert!(
        missing.contains("0: statement 0: gone: No such connection"),
        "{missing}"
    );
    let creds = failed("t/creds", 4).await;
    assert!(
        creds.contains("0: statement 0: ") && creds.contains(&role),
        "{creds}"
    );
    let syntax = failed("t/syntax", 5).await;
    assert!(
        syntax.contains("0: statement 1: ") && syntax.contains("syntax error at or near"),
        "{syntax}"
    );
    let quote = failed("t/quote", 6).await;
    assert!(
        quote.contains("1: statement 0: need to escape, but no escapechar set"),
        "{quote}"
    );
    assert!(
        failed("t/quoting", 7)
            .await
            .contains("Bad quoting style: FANCY")
    );
    assert!(
        failed("t/batch", 8)
            .await
            .contains("Bad batch_size: Must be >= 1")
    );
    db.drop_now().await;
}

#[tokio::test]
async fn sqlite_databases_run_in_process() {
    let t = TestRealm::new(&["core"]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("t.db");
    t.put_connection(
        json!({"conn_id": "lite", "type": "sqlite3", "enabled": true,
               "host": file.display().to_string(), "port": 0, "user": "x"}),
    )
    .await;
    t.put_job(sqli_job(
        "lite",
        json!("CREATE TABLE t (a int, b text, c real, d blob); INSERT INTO t VALUES (1, 'x', 2.0, x'00'), (2, NULL, 1e20, NULL); SELECT * FROM t ORDER BY a;"),
        json!({"header": true, "dialect": "unix", "quoting": "nonnumeric"}),
        "lite",
    ))
    .await;
    let run_id = t.dispatch_job("lite", &[]).await;
    t.run_worker("core", &[]).await;
    t.assert_statuses("lite", &run_id, &["starting", "running", "complete"])
        .await;
    let out = t
        .object(&format!("{}/lite/{run_id}/0.2.out", t.realm.s3_temp()))
        .await;
    assert_eq!(
        out,
        "\"a\"|\"b\"|\"c\"|\"d\"\n1|\"x\"|2.0|\"b'\\x00'\"\n2|\"\"|1e+20|\"\"\n"
    );
}

#[tokio::test]
async fn mariadb_transactions_roll_back_and_sql_files_run() {
    let t = TestRealm::new(&["core"]).await;
    let db = ScratchDb::create(Engine::MySql).await;
    let parameter = format!("/lava/{}/db", t.name);
    t.put_secret(&parameter, &db.password).await;
    t.put_connection(db.connection("db", &parameter)).await;
    t.put_job(sqli_job(
        "my/tx",
        json!([
            "INSERT INTO q VALUES (100, 'tx')",
            "INSERT INTO nosuch VALUES (1)"
        ]),
        json!({"transaction": true}),
        "db",
    ))
    .await;
    t.put_payload(
        "mysql/count.sql",
        b"SELECT COUNT(*) AS n, SUM(n) AS s FROM t;".to_vec(),
    )
    .await;
    t.put_job(json!({"job_id": "my/file", "type": "sql", "worker": "core",
        "payload": "mysql/count.sql", "enabled": true, "owner": "tests",
        "description": "sql test", "parameters": {"conn_id": "db", "header": true}}))
        .await;
    let tx = t.dispatch_job("my/tx", &[]).await;
    let file = t.dispatch_job("my/file", &[]).await;
    t.run_worker("core", &[]).await;
    let failed = failure(&t, "my/tx", &tx).await;
    assert!(
        failed.contains("1: statement 0: ") && failed.contains("nosuch"),
        "{failed}"
    );
    let admin = admin_spec(Engine::MySql, &db.name);
    assert!(
        query(&admin, "SELECT v FROM q WHERE id = 100")
            .await
            .is_empty()
    );
    t.assert_statuses("my/file", &file, &["starting", "running", "complete"])
        .await;
    assert_eq!(
        t.object(&format!(
            "{}/my/file/{file}/count.sql.0.out",
            t.realm.s3_temp()
        ))
        .await,
        "n|s\r\n4|12345680.39\r\n"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn sqlc_feeds_files_to_each_client() {
    let t = TestRealm::new(&["core"]).await;
    let pg = ScratchDb::create(Engine::Postgres).await;
    let my = ScratchDb::create(Engine::MySql).await;
    let pg_param = format!("/lava/{}/pg", t.name);
    let my_param = format!("/lava/{}/my", t.name);
    t.put_secret(&pg_param, &pg.password).await;
    t.put_secret(&my_param, &my.password).await;
    t.put_connection(pg.connection("pg", &pg_param)).await;
    t.put_connection(my.connection("my", &my_param)).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lite = dir.path().join("c.db");
    t.put_connection(
        json!({"conn_id": "lite", "type": "sqlite3", "enabled": true,
               "host": lite.display().to_string(), "port": 0, "user": "x"}),
    )
    .await;
    // A file that includes its sibling (which also runs on its own).
    t.put_payload(
        "sqlc/pg/a.sql",
        b"{% include 'b.inc' %}\nSELECT '{{ vars.x }}', current_setting('application_name');\n"
            .to_vec(),
    )
    .await;
    t.put_payload("sqlc/pg/b.inc", b"SELECT 1 AS one;".to_vec())
        .await;
    t.put_payload("sqlc/bad.sql", b"SELECT 1;\nSELEC 2;\nSELECT 3;\n".to_vec())
        .await;
    t.put_payload("sqlc/my.sql", b"SELECT COUNT(*) AS n FROM t;\n".to_vec())
        .await;
    t.put_payload(
        "sqlc/lite.sql",
        b"CREATE TABLE x (a); INSERT INTO x VALUES (7); SELECT a FROM x;\n".to_vec(),
    )
    .await;
    let jobs = [
        (
            "sqlc/pg",
            "sqlc/pg/",
            json!({"conn_id": "pg", "args": ["-A", "-t"], "vars": {"x": "ex"}}),
        ),
        (
            "sqlc/bad",
            "sqlc/bad.sql",
            json!({"conn_id": "pg", "args": ["-A", "-t"]}),
        ),
        ("sqlc/my", "sqlc/my.sql", json!({"conn_id": "my"})),
        ("sqlc/lite", "sqlc/lite.sql", json!({"conn_id": "lite"})),
    ];
    let mut runs = Vec::new();
    for (job_id, payload, parameters) in &jobs {
        t.put_job(json!({"job_id": job_id, "type": "sqlc", "worker": "core", "payload": payload,
            "enabled": true, "owner": "tests", "description": "sqlc test", "parameters": parameters}))
            .await;
        runs.push(t.dispatch_job(job_id, &[]).await);
    }
    t.run_worker("core", &[]).await;
    let out =
        |job: &str, run: &str, file: &str| format!("{}/{job}/{run}/{file}", t.realm.s3_temp());
    t.assert_statuses("sqlc/pg", &runs[0], &["starting", "running", "complete"])
        .await;
    assert_eq!(
        t.object(&out("sqlc/pg", &runs[0], "a.sql.stdout")).await,
        format!("1\nex|lv-{}-sqlc/pg\n", t.name)
    );
    assert_eq!(
        t.object(&out("sqlc/pg", &runs[0], "b.inc.stdout")).await,
        "1\n"
    );
    // ON_ERROR_STOP: psql stops at the error with a non-zero exit.
    let bad = failure(&t, "sqlc/bad", &runs[1]).await;
    assert!(bad.contains("Failed with exit status 3"), "{bad}");
    assert!(bad.contains("syntax error"), "{bad}");
    assert_eq!(
        t.object(&out("sqlc/bad", &runs[1], "bad.sql.stdout")).await,
        "1\n"
    );
    t.assert_statuses("sqlc/my", &runs[2], &["starting", "running", "complete"])
        .await;
    assert_eq!(
        t.object(&out("sqlc/my", &runs[2], "my.sql.stdout")).await,
        "n\n4\n"
    );
    t.assert_statuses("sqlc/lite", &runs[3], &["starting", "running", "complete"])
        .await;
    assert_eq!(
        t.object(&out("sqlc/lite", &runs[3], "lite.sql.stdout"))
            .await,
        "7\n"
    );
    pg.drop_now().await;
    my.drop_now().await;
}
