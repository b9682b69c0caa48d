//! Running SQL for `sql` and `sqli`: their parameters, one database session
//! for all payload texts (one transaction when `transaction` is set,
//! autocommit otherwise), statements split before rendering, and each
//! result set written as CSV to `<job dir>/[<output>/]<name>.<n><suffix>`,
//! streamed in batches of `batch_size`, then uploaded to the same name
//! under the run's `s3tmp`.
//!
//! A failure names the payload text and the statement index
//! (`q.sql: statement 2: ERROR: …`); a connection that cannot be made is
//! reported against the first text's statement 0.

use std::path::PathBuf;
use std::sync::LazyLock;

use async_trait::async_trait;
use lava_common::connection::app_name;
use lava_common::db::{self, DbError, RowSink, Session};
use lava_common::render::Context;
use lava_common::sql::csv::{CsvError, Dialect, Field, Quoting};
use lava_common::sql::split::split;
use regex::Regex;
use serde_json::{Map, Value};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::{Failure, JobContext};

/// The parameter keys `sql` and `sqli` allow besides `conn_id`.
pub(super) const SQL_KEYS: [&str; 13] = [
    "batch_size",
    "delimiter",
    "dialect",
    "doublequote",
    "escapechar",
    "header",
    "jinja",
    "output",
    "quotechar",
    "quoting",
    "raw",
    "transaction",
    "vars",
];

/// `^\w+$`.
static OUTPUT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\w+$").ok());

/// One payload text: the name its outputs and result key use, and the SQL.
pub(super) struct Source {
    pub(super) name: String,
    pub(super) text: String,
}

/// Python's truth of a parameter value.
fn truthy(value: Option<&Value>, default: bool) -> bool {
    match value {
        None => default,
        Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// The checked parameters.
pub(super) struct SqlParams {
    conn_id: String,
    batch_size: usize,
    /// The CSV settings, or the error Python's writer gives for them when a
    /// result set is first written.
    dialect: Result<Dialect, CsvError>,
    header: bool,
    output: Option<String>,
    raw: bool,
    transaction: bool,
    jinja: bool,
    ctx: Context,
}

/// A one-character CSV setting from a parameter or its default.
fn csv_char(
    params: &Map<String, Value>,
    key: &str,
    default: Option<&str>,
) -> Result<Option<char>, CsvError> {
    match params.get(key) {
        None => default.map(|d| Dialect::one_char(key, d)).transpose(),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Dialect::one_char(key, s).map(Some),
        Some(_) => Err(CsvError(format!("\"{key}\" must be a 1-character string"))),
    }
}

impl JobContext<'_> {
    /// The parameters of `sql` and `sqli`, checked in the original's order.
    pub(super) fn sql_params(&self) -> Result<SqlParams, Failure> {
        let params = self.params();
        let s = &self.services.settings;
        let quoting_text = match params.get("quoting") {
            None => s.sql_quoting.clone(),
            Some(Value::String(q)) => q.clone(),
            Some(other) => other.to_string(),
        }
        .to_uppercase();
        let quoting = Quoting::parse(&quoting_text)
            .ok_or_else(|| Failure::new(format!("Bad quoting style: {quoting_text}")))?;
        let output = match params.get("output") {
            None => None,
            Some(Value::String(o)) if OUTPUT.as_ref().is_some_and(|re| re.is_match(o)) => {
                Some(o.clone())
            }
            Some(_) => {
                return Err(Failure::new("Bad output parameter: Must be alphanumeric"));
            }
        };
        let vars = match params.get("vars") {
            None => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(Failure::new("vars must be a map/dict")),
        };
        let conn_id = match params.get("conn_id") {
            Some(Value::String(c)) => c.clone(),
            Some(other) => other.to_string(),
            None => return Err(Failure::new("Bad job parameters: Missing keys: conn_id")),
        };
        let batch_size = match params.get("batch_size") {
            None => s.sql_batch_size,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
            Some(Value::String(t)) => t.trim().parse::<i64>().map_err(|_| {
                Failure::new(format!(
                    "Bad batch_size: invalid literal for int() with base 10: '{t}'"
                ))
            })?,
            Some(other) => {
                return Err(Failure::new(format!("Bad batch_size: {other}")));
            }
        };
        if batch_size < 1 {
            return Err(Failure::new("Bad batch_size: Must be >= 1"));
        }
        let dialect = (|| {
            let dialect_name = match params.get("dialect") {
                None => s.sql_dialect.clone(),
                Some(Value::String(d)) => d.clone(),
                Some(_) => return Err(CsvError("unknown dialect".into())),
            };
            let delimiter = csv_char(params, "delimiter", Some(&s.sql_delimiter))?
                .ok_or_else(|| CsvError("\"delimiter\" must be a 1-character string".into()))?;
            let quotechar = csv_char(params, "quotechar", s.sql_quotechar.as_deref())?;
            let escapechar = csv_char(params, "escapechar", s.sql_escapechar.as_deref())?;
            let doublequote = truthy(params.get("doublequote"), s.sql_doublequote);
            Dialect::new(
                &dialect_name,
                delimiter,
                quotechar,
                escapechar,
                doublequote,
                quoting,
            )
        })();
        Ok(SqlParams {
            conn_id,
            batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
            dialect,
            header: truthy(params.get("header"), false),
            output,
            raw: truthy(params.get("raw"), false),
            transaction: truthy(params.get("transaction"), false),
            jinja: truthy(params.get("jinja"), true),
            ctx: self.ctx.clone().vars(&vars),
        })
    }

    /// Runs every source's statements in one session; the result map has
    /// a key per source with the S3 locations of its result files. An
    /// interrupt (the worker's shutdown, a lost lease) closes the session
    /// at once, which rolls back an open transaction.
    pub(super) async fn run_sql(
        &self,
        p: &SqlParams,
        sources: Vec<Source>,
    ) -> Result<Value, Failure> {
        tokio::select! {
            ran = self.run_sql_session(p, sources) => ran,
            () = self.cancel.interrupted() => Err(Failure::stopped()),
        }
    }

    async fn run_sql_session(&self, p: &SqlParams, sources: Vec<Source>) -> Result<Value, Failure> {
        let first = sources.first().map_or("payload", |s| s.name.as_str());
        let at_start =
            |e: &dyn std::fmt::Display| Failure::new(format!("{first}: statement 0: {e}"));
        let s = self.services;
        let app = s
            .settings
            .conn_app_name
            .as_deref()
            .and_then(|t| app_name(t, &s.realm_name, self.run.job_id(), &p.conn_id));
        let spec = db::resolve(&s.connections, &p.conn_id, app)
            .await
            .map_err(|e| at_start(&e))?;
        let mut session = Session::connect(&spec)
            .await
            .map_err(|e| at_start(&format!("Connection {}: {e}", p.conn_id)))?;
        if p.transaction
            && let Err(e) = session.begin().await
        {
            session.close().await;
            return Err(at_start(&e));
        }
        let ran = self.run_sources(&mut session, p, sources).await;
        let ended = match ran {
            Ok(output) if p.transaction => match session.commit().await {
                Ok(()) => Ok(output),
                Err(e) => Err(Failure::new(format!("Commit failed: {e}"))),
            },
            Ok(output) => Ok(output),
            Err(failure) => {
                if p.transaction
                    && let Err(e) = session.rollback().await
                {
                    tracing::warn!("rollback failed: {e}");
                }
                Err(failure)
            }
        };
        session.close().await;
        let output = ended?;
        Ok(serde_json::json!({"exit_status": 0, "output": output}))
    }

    async fn run_sources(
        &self,
        session: &mut Session,
        p: &SqlParams,
        sources: Vec<Source>,
    ) -> Result<Map<String, Value>, Failure> {
        let suffix = &self.services.settings.sql_output_suffix;
        let mut output = Map::new();
        for source in sources {
            let name = source.name;
            output.insert(name.clone(), Value::Array(Vec::new()));
            let statements = if p.raw {
                vec![source.text]
            } else {
                split(source.text.trim())
            };
            let fail = |n: usize, e: &dyn std::fmt::Display| {
                Failure::new(format!("{name}: statement {n}: {e}"))
            };
            for (n, statement) in statements.into_iter().enumerate() {
                let rendered = if p.jinja {
                    self.services
                        .renderer
                        .render_str_async(&statement, &p.ctx)
                        .await
                        .map_err(|e| fail(n, &format!("Jinja render failed: {e}")))?
                } else {
                    statement
                };
                let sql = rendered.trim().trim_end_matches(';');
                if sql.is_empty() {
                    tracing::debug!("skipping empty SQL statement {n} of {name}");
                    continue;
                }
                let base = format!("{name}.{n}{suffix}");
                let mut dir = self.run.job_dir.to_path_buf();
                let mut url = self.run.s3tmp.to_string();
                if let Some(o) = &p.output {
                    dir.push(o);
                    url = format!("{url}/{o}");
                }
                let url = format!("{url}/{base}");
                let mut sink = CsvSink {
                    dir,
                    path: None,
                    base,
                    dialect: &p.dialect,
                    header: p.header,
                    file: None,
                };
                let had_rows = session
                    .execute(sql, p.batch_size, &mut sink)
                    .await
                    .map_err(|e| fail(n, &e))?;
                if !had_rows {
                    continue;
                }
                let path = sink.finish().await.map_err(|e| fail(n, &e))?;
                if let Some(path) = path {
                    self.upload_retried(&path, &url).await?;
                    if let Some(Value::Array(list)) = output.get_mut(&name) {
                        list.push(Value::String(url));
                    }
                }
            }
        }
        Ok(output)
    }
}

/// Writes one result set as CSV.
struct CsvSink<'d> {
    dir: PathBuf,
    path: Option<PathBuf>,
    base: String,
    dialect: &'d Result<Dialect, CsvError>,
    header: bool,
    file: Option<BufWriter<tokio::fs::File>>,
}

fn io_error(path: &std::path::Path, e: &std::io::Error) -> DbError {
    DbError(format!("Cannot write {}: {e}", path.display()))
}

impl CsvSink<'_> {
    fn dialect(&self) -> Result<&Dialect, DbError> {
        self.dialect.as_ref().map_err(|e| DbError(e.to_string()))
    }

    async fn write(&mut self, text: &str) -> Result<(), DbError> {
        let (Some(file), Some(path)) = (self.file.as_mut(), self.path.as_ref()) else {
            return Err(DbError("result file not open".into()));
        };
        file.write_all(text.as_bytes())
            .await
            .map_err(|e| io_error(path, &e))
    }

    /// Flushes and closes the file; its path, if one was written.
    async fn finish(&mut self) -> Result<Option<PathBuf>, DbError> {
        if let (Some(mut file), Some(path)) = (self.file.take(), self.path.clone()) {
            file.flush().await.map_err(|e| io_error(&path, &e))?;
            file.into_inner()
                .sync_all()
                .await
                .map_err(|e| io_error(&path, &e))?;
            return Ok(Some(path));
        }
        Ok(None)
    }
}

#[async_trait]
impl RowSink for CsvSink<'_> {
    async fn columns(&mut self, names: &[String]) -> Result<(), DbError> {
        let dialect = self.dialect()?.clone();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error(&self.dir, &e))?;
        let path = self.dir.join(&self.base);
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_error(&path, &e))?;
        self.file = Some(BufWriter::with_capacity(64 * 1024, file));
        self.path = Some(path);
        if self.header {
            let fields: Vec<Field> = names.iter().map(Field::text).collect();
            let row = dialect.row(&fields).map_err(|e| DbError(e.to_string()))?;
            self.write(&row).await?;
        }
        Ok(())
    }

    async fn rows(&mut self, rows: &[Vec<Field>]) -> Result<(), DbError> {
        let dialect = self.dialect()?.clone();
        let mut text = String::new();
        for row in rows {
            text.push_str(&dialect.row(row).map_err(|e| DbError(e.to_string()))?);
        }
        self.write(&text).await
    }
}

/// The payload of `sql` and `sqlc`: file names, as a non-empty string or a
/// non-empty list of strings.
pub(super) fn payload_files(payload: &Value) -> Result<Vec<String>, Failure> {
    match payload {
        Value::String(s) if !s.trim().is_empty() => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => string_list(list),
        _ => Err(Failure::new("payload required")),
    }
}

/// Every item of a payload list, which must all be strings.
pub(super) fn string_list(list: &[Value]) -> Result<Vec<String>, Failure> {
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| Failure::new("Bad payload: must be string or list of strings"))
        })
        .collect()
}
