//! Jinja rendering of job fields, actions and s3trigger values as the
//! Python original renders them.
//!
//! One [`Renderer`] holds a minijinja environment configured once: no
//! autoescaping, undefined names print as empty text (attribute access on
//! them is an error), one trailing newline of a template is dropped, values
//! print as Python's `str()` does, Python's string and dict methods work
//! (`.upper()`, `.split(':')`, `.items()`), and the `utils` object offers
//! Python's datetime classes, dateutil, `re`, `os.path` and the S3 helpers.
//! A [`Context`] holds the variables of one job run: `job`, `realm`,
//! `globals`, `state`, `vars`, `result`, `start` and `ustart`.
//!
//! Each string is an independent template, compiled per call, and each
//! render may spend at most the renderer's fuel ([`Renderer::with_fuel`]:
//! minijinja charges about one unit per instruction and per 64 bytes made),
//! so a runaway loop or recursion fails with [`RenderError::OutOfFuel`]
//! instead of spinning; `range()` gives at most 100,000 items. The `*_async`
//! methods render on tokio's blocking threads, so a long render never holds
//! up the async runtime's workers. Datetime
//! arithmetic (`ustart - ts > utils.timedelta(hours=4)`) works: see
//! `ops.rs`. What differs from Python Jinja is listed in COMPATIBILITY.md
//! beside this file.
//!
//! The modules build on one another without cycles (a test in
//! `module_graph.rs` checks): `args` and `timefmt` at the bottom; the
//! values `delta`, `datetime` and `pyuuid`; `pytype` (type names) and
//! `python` (printing) above them; then `classes`, `regex`, `ops`,
//! `filters` and `utils`, which this module puts together.

mod args;
mod classes;
mod datetime;
mod delta;
mod filters;
mod ops;
mod python;
mod pytype;
mod pyuuid;
mod regex;
mod timefmt;
mod utils;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use minijinja::machinery::{self, CompiledTemplate, TemplateConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, Output, State, UndefinedBehavior};

use self::datetime::PyDateTime;

/// A template that failed to compile or render, or rendered JSON text that
/// does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template did not compile or failed while rendering.
    #[error("Jinja render failed: {message}")]
    Template {
        /// The template text.
        template: String,
        /// minijinja's message, with the kind of error and its line.
        message: String,
    },
    /// JSON-text rendering produced text that is not JSON.
    #[error("Jinja render produced invalid JSON: {message}")]
    Json {
        /// The rendered text.
        text: String,
        /// The JSON parser's message.
        message: String,
    },
    /// The template used up its fuel: it loops, recurses or builds too much.
    #[error(
        "Jinja render ran out of fuel{} (RENDER_FUEL is {fuel}): \
         does the template loop or recurse without end?",
        .job.as_deref().map(|j| format!(" in job {j}")).unwrap_or_default()
    )]
    OutOfFuel {
        /// The template text.
        template: String,
        /// The fuel each render may spend.
        fuel: u64,
        /// The job whose context the template rendered with, when known.
        job: Option<String>,
    },
    /// The blocking task that rendered did not finish (it panicked, or the
    /// runtime is shutting down).
    #[error("Jinja render did not finish: {0}")]
    Aborted(String),
}

impl RenderError {
    /// Whether the template ran out of fuel.
    pub fn is_out_of_fuel(&self) -> bool {
        matches!(self, RenderError::OutOfFuel { .. })
    }

    fn template(template: &str, err: &minijinja::Error) -> RenderError {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        RenderError::Template {
            template: template.to_string(),
            message,
        }
    }
}

/// Paths (dotted, from the job item) that hold timestamps the original
/// keeps as datetimes, so templates can do datetime arithmetic on them.
const JOB_DATETIMES: [&str; 7] = [
    "ts_dispatch",
    "ts_start",
    "ts_ustart",
    "globals.lava.master_start",
    "globals.lava.master_ustart",
    "globals.lava.parent_start",
    "globals.lava.parent_ustart",
];

/// The same timestamps as seen through `globals`.
const GLOBALS_DATETIMES: [&str; 4] = [
    "lava.master_start",
    "lava.master_ustart",
    "lava.parent_start",
    "lava.parent_ustart",
];

/// The variables of a render: JSON values converted once into template
/// values, plus datetimes. Cheap to clone; reuse one per job run.
#[derive(Debug, Clone)]
pub struct Context {
    vars: BTreeMap<String, Value>,
    root: Value,
    /// `job.job_id`, named by an out-of-fuel error.
    job_id: Option<String>,
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl Context {
    /// An empty context (`utils` is always available).
    pub fn new() -> Context {
        let mut ctx = Context {
            vars: BTreeMap::new(),
            root: Value::UNDEFINED,
            job_id: None,
        };
        ctx.rebuild();
        ctx
    }

    /// The base context of a job run: `job` (the
    /// augmented job), `realm`, `globals` and `state` (from the job), and
    /// `start`/`ustart`.
    pub fn for_job(
        job: &serde_json::Value,
        realm: &serde_json::Value,
        start: &DateTime<FixedOffset>,
    ) -> Context {
        let empty = serde_json::Value::Object(serde_json::Map::new());
        Context::new()
            .job(job)
            .realm(realm)
            .globals(job.get("globals").unwrap_or(&empty))
            .state(job.get("state").unwrap_or(&empty))
            .start(start)
    }

    fn rebuild(&mut self) {
        self.root = Value::from(self.vars.clone());
    }

    /// Sets a template value directly.
    pub fn value(mut self, name: &str, value: Value) -> Context {
        self.vars.insert(name.to_string(), value);
        self.rebuild();
        self
    }

    /// Sets a variable from JSON.
    pub fn var(self, name: &str, value: &serde_json::Value) -> Context {
        self.value(name, python::from_json(value))
    }

    /// Sets a variable from JSON, turning the strings at the given dotted
    /// paths into datetimes when they read as ISO 8601 (as `info.event_time`
    /// of an s3trigger).
    pub fn var_with_datetimes(
        self,
        name: &str,
        value: &serde_json::Value,
        paths: &[&str],
    ) -> Context {
        self.value(name, value_with_datetimes(value, paths))
    }

    /// Sets `job`: the augmented job, with `ts_dispatch`, `ts_start`,
    /// `ts_ustart` and `globals.lava.*_start`/`*_ustart` as datetimes.
    pub fn job(mut self, job: &serde_json::Value) -> Context {
        self.job_id = job
            .get("job_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        self.var_with_datetimes("job", job, &JOB_DATETIMES)
    }

    /// Sets `realm`: the realm item.
    pub fn realm(self, realm: &serde_json::Value) -> Context {
        self.var("realm", realm)
    }

    /// Sets `globals`, with `lava.*_start`/`*_ustart` as datetimes.
    pub fn globals(self, globals: &serde_json::Value) -> Context {
        self.var_with_datetimes("globals", globals, &GLOBALS_DATETIMES)
    }

    /// Sets `state`: the job's state map after expansion.
    pub fn state(self, state: &serde_json::Value) -> Context {
        self.var("state", state)
    }

    /// Sets `vars` (`parameters.vars` of `cmd`/`exe`/`pkg` jobs).
    pub fn vars(self, vars: &serde_json::Value) -> Context {
        self.var("vars", vars)
    }

    /// Sets `result` (post-job actions).
    pub fn result(self, result: &serde_json::Value) -> Context {
        self.var("result", result)
    }

    /// Sets `start` (local, aware) and `ustart` (the same instant in UTC).
    pub fn start(self, start: &DateTime<FixedOffset>) -> Context {
        let ustart = start.with_timezone(&Utc);
        self.value("start", PyDateTime::from_fixed(start).into_value())
            .value("ustart", PyDateTime::from_utc(&ustart).into_value())
    }

    /// Sets a variable to an aware datetime.
    pub fn datetime(self, name: &str, dt: &DateTime<FixedOffset>) -> Context {
        self.value(name, datetime_value(dt))
    }
}

/// An aware datetime as a template value: prints as Python does
/// (`2024-05-01 10:00:00+10:00`) and has Python's datetime methods.
pub fn datetime_value(dt: &DateTime<FixedOffset>) -> Value {
    if dt.offset().local_minus_utc() == 0 {
        PyDateTime::from_utc(&dt.with_timezone(&Utc)).into_value()
    } else {
        PyDateTime::from_fixed(dt).into_value()
    }
}

/// A JSON value as a template value (maps and lists print as Python's).
pub fn json_value(value: &serde_json::Value) -> Value {
    python::from_json(value)
}

fn value_with_datetimes(value: &serde_json::Value, paths: &[&str]) -> Value {
    if paths.is_empty() {
        return python::from_json(value);
    }
    match value {
        serde_json::Value::Object(map) => {
            let items = map
                .iter()
                .map(|(k, v)| {
                    let here = paths.iter().any(|p| p == k);
                    let prefix = format!("{k}.");
                    let nested: Vec<&str> = paths
                        .iter()
                        .filter_map(|p| p.strip_prefix(prefix.as_str()))
                        .collect();
                    let converted = match (here, v) {
                        (true, serde_json::Value::String(s)) => {
                            match crate::timestamp::parse_strict(s) {
                                Some(dt) => datetime_value(&dt),
                                None => python::from_json(v),
                            }
                        }
                        _ => value_with_datetimes(v, &nested),
                    };
                    (Value::from(k.as_str()), converted)
                })
                .collect();
            python::PyDict::new(items).into_value()
        }
        other => python::from_json(other),
    }
}

/// Renders templates; build one and share it (it is `Send + Sync`, and a
/// clone shares the same environment).
#[derive(Clone)]
pub struct Renderer {
    inner: Arc<Inner>,
}

/// The configured environment and its fuel.
struct Inner {
    env: Environment<'static>,
    config: TemplateConfig,
    fuel: Option<u64>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("fuel", &self.inner.fuel)
            .finish_non_exhaustive()
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

/// Prints `{{ value }}` as Python's `str()`, HTML-escaped where the file
/// name asks for it.
fn python_formatter(
    out: &mut Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let pythonic = match value.kind() {
        ValueKind::Number => !value.is_integer(),
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable | ValueKind::Plain => true,
        _ => false,
    };
    if !pythonic {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = python::py_str(value);
    if matches!(state.auto_escape(), AutoEscape::None) {
        out.write_str(&text).map_err(minijinja::Error::from)
    } else {
        minijinja::escape_formatter(out, state, &Value::from(text))
    }
}

/// Whether a minijinja error, or one it wraps, is running out of fuel.
fn out_of_fuel(err: &minijinja::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<minijinja::Error>()
            .is_some_and(|m| m.kind() == ErrorKind::OutOfFuel)
        {
            return true;
        }
        current = e.source();
    }
    false
}

impl Renderer {
    /// A renderer with the environment configured as the original's, and
    /// no fuel limit.
    pub fn new() -> Renderer {
        Renderer::with_fuel(None)
    }

    /// A renderer whose every render may spend at most `fuel` (`None`: no
    /// limit). See minijinja's `Environment::set_fuel` for what costs fuel.
    pub fn with_fuel(fuel: Option<u64>) -> Renderer {
        let mut env = Environment::new();
        env.set_debug(false);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", filters::tojson);
        env.add_filter("int", filters::int);
        env.add_filter("string", filters::string);
        env.add_filter("join", filters::join);
        env.add_global("utils", utils::utils());
        env.add_function(ops::ADD, ops::add);
        env.add_function(ops::SUB, ops::sub);
        env.add_function(ops::NEG, ops::neg);
        env.add_function(ops::MOD, ops::rem);
        env.add_function(ops::MUL, ops::mul);
        env.add_filter("center", filters::center);
        env.add_filter("forceescape", minijinja::filters::escape);
        env.add_filter("truncate", filters::truncate);
        env.add_filter("abs", filters::abs);
        env.set_fuel(fuel);
        let config = TemplateConfig {
            syntax_config: SyntaxConfig::default(),
            default_auto_escape: Arc::new(|_: &str| AutoEscape::None),
        };
        Renderer {
            inner: Arc::new(Inner { env, config, fuel }),
        }
    }

    /// The fuel each render may spend (`None`: no limit).
    pub fn fuel(&self) -> Option<u64> {
        self.inner.fuel
    }

    /// Renders one template string.
    pub fn render_str(&self, template: &str, ctx: &Context) -> Result<String, RenderError> {
        self.render_with(&self.inner.env, "<string>", template, ctx, AutoEscape::None)
    }

    fn render_with(
        &self,
        env: &Environment<'_>,
        name: &str,
        template: &str,
        ctx: &Context,
        escape: AutoEscape,
    ) -> Result<String, RenderError> {
        let fail = |e: minijinja::Error| match self.inner.fuel {
            Some(fuel) if out_of_fuel(&e) => RenderError::OutOfFuel {
                template: template.to_string(),
                fuel,
                job: ctx.job_id.clone(),
            },
            _ => RenderError::template(template, &e),
        };
        let mut compiled =
            CompiledTemplate::new(name, template, &self.inner.config).map_err(fail)?;
        ops::rewrite(&mut compiled);
        let mut out = String::with_capacity(compiled.buffer_size_hint);
        machinery::eval(
            env,
            &compiled.instructions,
            ctx.root.clone(),
            &compiled.blocks,
            &mut machinery::make_string_output(&mut out),
            escape,
        )
        .map_err(fail)?;
        Ok(out)
    }

    /// Renders a template file whose `{% include %}`/`{% import %}` names
    /// refer to files in the same directory (the `sqlc`/`sqlv` payloads).
    /// HTML autoescaping applies when the name ends in `.html`, `.htm` or
    /// `.xml`, as Jinja2's `select_autoescape` does.
    pub fn render_file(&self, path: &Path, ctx: &Context) -> Result<String, RenderError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|e| RenderError::Template {
            template: path.display().to_string(),
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| Path::new(".").to_path_buf());
        let mut env = self.inner.env.clone();
        env.set_loader(minijinja::path_loader(dir));
        env.set_auto_escape_callback(html_escape);
        self.render_with(&env, &name, &text, ctx, html_escape(&name))
    }

    /// Renders every string in a JSON value, keys included, each as its own
    /// template ("leaf rendering": unlike [`Renderer::render_json_text`], a
    /// rendered quote or backslash cannot break the JSON).
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, RenderError> {
        Ok(match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.render_str(s, ctx)?),
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(self.render_str(k, ctx)?, self.render_value(v, ctx)?);
                }
                serde_json::Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// The original's JSON-text rendering (`event_log`, and where
    /// compatibility needs it): the value is encoded as JSON the way
    /// Python's `json.dumps` does, rendered as one template, and parsed back.
    pub fn render_json_text(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, RenderError> {
        let text = python::to_json(&python::from_json(value), python::JsonOptions::default())
            .map_err(|e| RenderError::template("", &e))?;
        let rendered = self.render_str(&text, ctx)?;
        serde_json::from_str(&rendered).map_err(|e| RenderError::Json {
            text: rendered.clone(),
            message: e.to_string(),
        })
    }

    /// Runs `render` with this renderer on tokio's blocking threads, never
    /// on the async runtime's workers: a render is CPU work of unbounded
    /// length (up to its fuel) and would otherwise hold up every other task
    /// of that worker thread, such as another run's lease renewals. The
    /// inputs are moved in (a [`Context`] and the renderer are cheap to
    /// clone), so `spawn_blocking` needs no borrow of the caller's.
    /// Only a task that did not finish is an error here: `render`'s own
    /// result, a `Result` itself as a rule, is handed back whole.
    pub async fn off_runtime<T, F>(&self, render: F) -> Result<T, RenderError>
    where
        T: Send + 'static,
        F: FnOnce(&Renderer) -> T + Send + 'static,
    {
        let renderer = self.clone();
        tokio::task::spawn_blocking(move || render(&renderer))
            .await
            .map_err(|e| RenderError::Aborted(e.to_string()))
    }

    /// [`Renderer::render_str`] off the async runtime's threads.
    pub async fn render_str_async(
        &self,
        template: &str,
        ctx: &Context,
    ) -> Result<String, RenderError> {
        let (template, ctx) = (template.to_string(), ctx.clone());
        self.off_runtime(move |r| r.render_str(&template, &ctx))
            .await?
    }

    /// [`Renderer::render_value`] off the async runtime's threads.
    pub async fn render_value_async(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, RenderError> {
        let (value, ctx) = (value.clone(), ctx.clone());
        self.off_runtime(move |r| r.render_value(&value, &ctx))
            .await?
    }

    /// [`Renderer::render_json_text`] off the async runtime's threads.
    pub async fn render_json_text_async(
        &self,
        value: &serde_json::Value,
        ctx: &Context,
    ) -> Result<serde_json::Value, RenderError> {
        let (value, ctx) = (value.clone(), ctx.clone());
        self.off_runtime(move |r| r.render_json_text(&value, &ctx))
            .await?
    }
}

/// Jinja2's `select_autoescape(['html', 'htm', 'xml'])`.
fn html_escape(name: &str) -> AutoEscape {
    let lower = name.to_ascii_lowercase();
    if [".html", ".htm", ".xml"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        AutoEscape::Html
    } else {
        AutoEscape::None
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod module_graph;
