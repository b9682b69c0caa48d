//! CLI helpers of the database connections, for `sqlc` (SQL on stdin) and
//! the `connections` of `exe`/`pkg`: `psql` for PostgreSQL and Redshift
//! (`ON_ERROR_STOP`, the password in a `.pgpass` file, `PGSSLMODE`, and
//! `PGAPPNAME` built from `LAVA_REALM`/`LAVA_JOB_ID` when the caller has
//! not set it), `mysql` (an option file with user and password; `--ssl` for
//! the MariaDB client, `--ssl-mode=required` for MySQL's) and `sqlite3`
//! (`-bail -batch` on a local database file).

use std::path::{Path, PathBuf};

use lava_common::connection;
use lava_common::db::{DbSpec, Engine, TlsMode};

use super::{Helper, HelperError, RunInfo, sh_quote};

/// psql reads passwords up to this length from a password file.
const PSQL_MAX_PASSWORD_FILE: usize = 99;

/// The helper for `spec`.
pub(super) async fn helper(
    dir: &Path,
    spec: &DbSpec,
    run: &RunInfo<'_>,
) -> Result<Helper, HelperError> {
    match spec.engine {
        Engine::Postgres | Engine::Redshift => Ok(psql(dir, spec, run)),
        Engine::MySql => mysql(dir, spec).await,
        Engine::Sqlite => sqlite(spec),
    }
}

fn other(spec: &DbSpec, reason: &str) -> HelperError {
    HelperError::Connection(connection::ConnError::other(&spec.conn_id, reason))
}

/// A `.pgpass` field: `\` and `:` escaped.
fn pgpass_field(text: &str) -> String {
    text.replace('\\', "\\\\").replace(':', "\\:")
}

fn psql(dir: &Path, spec: &DbSpec, run: &RunInfo<'_>) -> Helper {
    let database = spec.database.clone().unwrap_or_default();
    let mut script = String::from("#!/bin/bash\n");
    // The application name with the realm and job id of the run, expanded
    // by the shell when the caller has not set PGAPPNAME.
    if let Some(name) = run
        .app_name_template
        .and_then(|t| connection::app_name(t, "${LAVA_REALM}", "${LAVA_JOB_ID}", &spec.conn_id))
    {
        let name = name.replace('`', "");
        script.push_str(&format!(
            "if [ -z \"${{PGAPPNAME:-}}\" ]; then export PGAPPNAME=\"{name}\"; fi\n"
        ));
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    if spec.password.len() < PSQL_MAX_PASSWORD_FILE {
        let line = format!(
            "{}:{}:{}:{}:{}\n",
            pgpass_field(&spec.host),
            spec.port,
            pgpass_field(&database),
            pgpass_field(&spec.user),
            pgpass_field(&spec.password)
        );
        files.push((PathBuf::from(".pgpass"), line.into_bytes()));
        script.push_str(&format!(
            "export PGPASSFILE={}\n",
            sh_quote(&dir.join(".pgpass").display().to_string())
        ));
    } else {
        files.push((
            PathBuf::from(".pgpassword"),
            spec.password.clone().into_bytes(),
        ));
        script.push_str(&format!(
            "PGPASSWORD=\"$(cat {})\"\nexport PGPASSWORD\n",
            sh_quote(&dir.join(".pgpassword").display().to_string())
        ));
    }
    let mode = if spec.tls == TlsMode::Off {
        "prefer"
    } else {
        "require"
    };
    script.push_str(&format!("export PGSSLMODE={mode}\n"));
    script.push_str(&format!(
        "exec psql -h {} -p {} -d {} -U {} --no-psqlrc --set=sslmode={mode} --quiet --set ON_ERROR_STOP=on --pset footer=off \"$@\"\n",
        sh_quote(&spec.host),
        spec.port,
        sh_quote(&database),
        sh_quote(&spec.user),
    ));
    Helper {
        script_name: "psql",
        script,
        dirs: Vec::new(),
        files,
    }
}

/// Whether `mysql` on the PATH is MariaDB's client (`None`: no client).
/// Spawned registered, so the worker's orphan reaper leaves its exit
/// status to this wait.
async fn mariadb_client() -> Option<bool> {
    let mut cmd = tokio::process::Command::new("mysql");
    cmd.arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let (child, _registration) = lava_common::children::spawn(&mut cmd).ok()?;
    let out = child.wait_with_output().await.ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .to_ascii_lowercase()
            .contains("mariadb")
    })
}

async fn mysql(dir: &Path, spec: &DbSpec) -> Result<Helper, HelperError> {
    let mariadb = mariadb_client()
        .await
        .ok_or_else(|| other(spec, "No mysql client available"))?;
    let conf = format!("[client]\nuser={}\npassword={}\n", spec.user, spec.password);
    let mut script = format!(
        "#!/bin/bash\nexec mysql --defaults-file={} --batch --host={} --port={} --connect-timeout=10",
        sh_quote(&dir.join(".mysql.conf").display().to_string()),
        sh_quote(&spec.host),
        spec.port
    );
    if let Some(db) = &spec.database {
        script.push_str(&format!(" --database={}", sh_quote(db)));
    }
    if spec.tls != TlsMode::Off {
        script.push_str(if mariadb {
            " --ssl"
        } else {
            " --ssl-mode=required"
        });
    }
    if let Some(ca) = &spec.ca_file {
        script.push_str(&format!(" --ssl-ca={}", sh_quote(ca)));
    }
    script.push_str(" \"$@\"\n");
    Ok(Helper {
        script_name: "mysql",
        script,
        dirs: Vec::new(),
        files: vec![(PathBuf::from(".mysql.conf"), conf.into_bytes())],
    })
}

fn sqlite(spec: &DbSpec) -> Result<Helper, HelperError> {
    if spec.host.contains(['\'', '"', '\\']) || spec.host.is_empty() {
        return Err(other(spec, "Invalid database file (host parameter)"));
    }
    if spec.host.starts_with("s3://") {
        return Err(other(
            spec,
            "SQLite databases in S3 are not supported by this worker yet",
        ));
    }
    Ok(Helper {
        script_name: "sqlite3",
        script: format!(
            "#!/bin/bash\nexec sqlite3 -bail -batch \"$@\" {}\n",
            sh_quote(&spec.host)
        ),
        dirs: Vec::new(),
        files: Vec::new(),
    })
}
