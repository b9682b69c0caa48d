//! Log output for every lava program: text or JSON lines to stderr, a file,
//! journald, or syslog datagrams on `/dev/log` (as the original writes them,
//! so existing rsyslog rules and CloudWatch metric filters keep matching),
//! at a level chosen by `--level`. Lines logged inside a
//! span (a worker's run) carry the span's fields (`job_id`, `run_id`).
//! Syslog sends never block: a record that the socket cannot take at once
//! is dropped and counted, and the count is reported on stderr when a
//! later record gets through.

use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
    /// The systemd journal (native protocol, structured fields).
    Journald,
    /// Syslog datagrams on `/dev/log` with this facility number.
    Syslog(u8),
}

/// Logging settings from the common flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Level name: `debug`, `info`, `warning`, `error`, `critical`.
    pub level: String,
    /// One JSON object per line.
    pub json: bool,
    /// `--log` value, if given.
    pub target: Option<String>,
    /// Identifier that prefixes each line.
    pub tag: String,
}

/// A bad logging flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Unknown `--level`.
    #[error("bad log level {0:?}: use debug, info, warning, error or critical")]
    Level(String),
    /// A `--log` target that cannot be used.
    #[error("bad log target {target:?}: {reason}")]
    Target {
        /// The value given.
        target: String,
        /// Why.
        reason: String,
    },
}

/// Reads a level name as Python's logging names it (case-insensitive).
pub fn parse_level(name: &str) -> Result<Level, LogError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warning" | "warn" => Ok(Level::WARN),
        "error" | "critical" => Ok(Level::ERROR),
        _ => Err(LogError::Level(name.to_string())),
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// A syslog facility number from its name, as Python's `SysLogHandler` knows them.
pub fn parse_facility(name: &str) -> Option<u8> {
    let n = match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "ntp" => 12,
        "console" => 14,
        "solaris-cron" => 15,
        other => {
            let digit = other.strip_prefix("local")?;
            let d: u8 = digit.parse().ok().filter(|d| *d <= 7 && digit.len() == 1)?;
            16 + d
        }
    };
    Some(n)
}

/// Where logs go: `--log journald`, `--log @facility`,
/// `--log FILE` or `--log stderr` when given; without `--log`, journald
/// when standard error *is* the journal stream — `JOURNAL_STREAM` names
/// the `dev:inode` of stderr (`stderr_id`, from fstat(2)); a process that
/// merely inherited the variable does not match — else stderr.
pub fn choose_target(
    option: Option<&str>,
    journal_stream: Option<&str>,
    stderr_id: Option<(u64, u64)>,
) -> Result<LogTarget, LogError> {
    match option {
        None | Some("") => {}
        Some("-" | "stderr") => return Ok(LogTarget::Stderr),
        Some("journald") => return Ok(LogTarget::Journald),
        Some(t) if t.starts_with('@') => {
            return parse_facility(&t[1..])
                .map(LogTarget::Syslog)
                .ok_or_else(|| LogError::Target {
                    target: t.into(),
                    reason: "unknown syslog facility".into(),
                });
        }
        Some(path) => return Ok(LogTarget::File(PathBuf::from(path))),
    }
    let stream = journal_stream.and_then(|text| {
        let (dev, ino) = text.trim().split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    });
    match (stream, stderr_id) {
        (Some(stream), Some(stderr)) if stream == stderr => Ok(LogTarget::Journald),
        _ => Ok(LogTarget::Stderr),
    }
}

/// Device and inode of this process's standard error (fstat(2)).
pub fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The syslog socket: `LAVA_SYSLOG_SOCKET` (tests) or `/dev/log`.
fn syslog_socket_path() -> PathBuf {
    std::env::var_os("LAVA_SYSLOG_SOCKET")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
}

static CONTEXT: OnceLock<RwLock<Map<String, Value>>> = OnceLock::new();

/// Fields every JSON record carries from now on (`event_source`, `realm`,
/// `worker`, `host`: the keys the original's CloudWatch filters match).
pub fn set_context(fields: Map<String, Value>) {
    let lock = CONTEXT.get_or_init(|| RwLock::new(Map::new()));
    if let Ok(mut map) = lock.write() {
        map.extend(fields);
    }
}

fn context() -> Map<String, Value> {
    CONTEXT
        .get()
        .and_then(|lock| lock.read().ok().map(|m| m.clone()))
        .unwrap_or_default()
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. Call once, early in `main`.
pub fn init(options: &LogOptions) -> Result<(), LogError> {
    let level = parse_level(&options.level)?;
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let target = choose_target(
        options.target.as_deref(),
        journal_stream.as_deref(),
        stderr_identity(),
    )?;
    let format = |style| LineFormat {
        tag: options.tag.clone(),
        json: options.json,
        pid: std::process::id(),
        style,
    };
    let plain = |style| {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(format(style))
    };
    let mut note = None;
    let layer: BoxedLayer = match target {
        LogTarget::Stderr => Box::new(plain(Style::Plain).with_writer(std::io::stderr)),
        LogTarget::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| LogError::Target {
                    target: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            Box::new(plain(Style::Plain).with_writer(Mutex::new(file)))
        }
        LogTarget::Journald => match tracing_journald::layer() {
            Ok(layer) => Box::new(
                layer
                    .with_field_prefix(None)
                    .with_syslog_identifier(options.tag.clone()),
            ),
            Err(e) => {
                note = Some(format!(
                    "journald is not available ({e}); logging to stderr"
                ));
                Box::new(plain(Style::Plain).with_writer(std::io::stderr))
            }
        },
        LogTarget::Syslog(facility) => {
            let path = syslog_socket_path();
            match SyslogSocket::connect(&path, &options.tag) {
                Ok(socket) => Box::new(plain(Style::Syslog).with_writer(SyslogMakeWriter {
                    socket: Arc::new(socket),
                    facility,
                })),
                Err(e) => {
                    note = Some(format!(
                        "cannot reach syslog at {} ({e}); logging to stderr",
                        path.display()
                    ));
                    Box::new(plain(Style::Plain).with_writer(std::io::stderr))
                }
            }
        }
    };
    let filter = LevelFilter::from_level(level);
    // A subscriber already installed (tests) is not an error.
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok();
    if let (true, Some(note)) = (installed, note) {
        tracing::warn!("{note}");
    }
    Ok(())
}

/// A non-blocking datagram socket connected to the syslog socket,
/// reconnected when syslog restarts (its socket file is then a new one).
/// A record the socket cannot take at once (syslog is slow or stopped and
/// its queue is full) is dropped and counted: logging must never hold up
/// the program, least of all the async runtime's threads.
struct SyslogSocket {
    path: PathBuf,
    /// Who reports dropped records on stderr.
    tag: String,
    /// The socket, and how many records were dropped since the last report.
    socket: Mutex<(UnixDatagram, u64)>,
}

/// A new socket connected to `path`, in non-blocking mode.
fn connect_nonblocking(path: &Path) -> std::io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl SyslogSocket {
    fn connect(path: &Path, tag: &str) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            tag: tag.to_string(),
            socket: Mutex::new((connect_nonblocking(path)?, 0)),
        })
    }

    /// Sends one datagram without waiting. A full socket drops it; another
    /// failure is retried once on a new connection, then dropped. After
    /// drops, the next datagram that gets through is followed by a note
    /// on stderr with their number.
    fn send(&self, datagram: &[u8]) {
        let Ok(mut guard) = self.socket.lock() else {
            return;
        };
        let (socket, unreported) = &mut *guard;
        let sent = match socket.send(datagram) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => match connect_nonblocking(&self.path) {
                Ok(fresh) => {
                    *socket = fresh;
                    socket.send(datagram).is_ok()
                }
                Err(_) => false,
            },
        };
        if !sent {
            *unreported += 1;
        } else if *unreported > 0 {
            eprintln!(
                "{}: WARNING: {} log record(s) dropped: the syslog socket {} was full or gone",
                self.tag,
                *unreported,
                self.path.display()
            );
            *unreported = 0;
        }
    }
}

/// Makes one [`SyslogWriter`] per record, with the record's priority.
struct SyslogMakeWriter {
    socket: Arc<SyslogSocket>,
    facility: u8,
}

impl SyslogMakeWriter {
    fn writer(&self, level: &Level) -> SyslogWriter {
        SyslogWriter {
            socket: Arc::clone(&self.socket),
            priority: u16::from(self.facility) * 8 + severity(level),
            buf: Vec::new(),
        }
    }
}

/// Collects one formatted record and sends it as one datagram when dropped:
/// `<PRI>`, the record without its newline, and a NUL, as Python's
/// `SysLogHandler` does.
struct SyslogWriter {
    socket: Arc<SyslogSocket>,
    priority: u16,
    buf: Vec<u8>,
}

/// The syslog severity of a level (Python's `SysLogHandler.mapPriority`).
fn severity(level: &Level) -> u16 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<'a> MakeWriter<'a> for SyslogMakeWriter {
    type Writer = SyslogWriter;

    fn make_writer(&'a self) -> SyslogWriter {
        self.writer(&Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogWriter {
        self.writer(meta.level())
    }
}

impl std::io::Write for SyslogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogWriter {
    fn drop(&mut self) {
        while self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.is_empty() {
            return;
        }
        let mut datagram = format!("<{}>", self.priority).into_bytes();
        datagram.extend_from_slice(&self.buf);
        datagram.push(0);
        self.socket.send(&datagram);
    }
}

/// The line layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `<tag>: <LEVEL>: <message> k=v…`, or the JSON object.
    Plain,
    /// `<tag>[<pid>]: <LEVEL>: <message> k=v…`, or `<tag>: ` and the JSON object.
    Syslog,
}

/// Formats one record: `<tag>: <LEVEL>: <message> k=v…` or a JSON object.
struct LineFormat {
    tag: String,
    json: bool,
    pid: u32,
    style: Style,
}

#[derive(Default)]
struct Fields {
    message: String,
    extra: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra
                .insert(field.name().into(), Value::String(value.into()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.extra.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.extra.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.extra.insert(field.name().into(), Value::from(value));
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        // Fields of the enclosing spans (outermost first), then the event's own.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&formatted.fields)
                {
                    fields.extra.extend(map);
                }
            }
        }
        event.record(&mut fields);
        let level = level_name(event.metadata().level());
        if self.json {
            let now = chrono::Local::now();
            let mut record = Map::new();
            record.insert(
                "localtime".into(),
                Value::String(now.format("%Y-%m-%d %H:%M:%S").to_string()),
            );
            record.insert(
                "timestamp".into(),
                Value::String(
                    now.with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%S%.6f")
                        .to_string(),
                ),
            );
            record.insert("level".into(), Value::String(level.into()));
            record.insert("message".into(), Value::String(fields.message));
            record.insert("pid".into(), Value::from(self.pid));
            record.insert("tag".into(), Value::String(self.tag.clone()));
            record.extend(context());
            record.extend(fields.extra);
            if self.style == Style::Syslog {
                write!(writer, "{}: ", self.tag)?;
            }
            writeln!(writer, "{}", Value::Object(record))
        } else {
            match self.style {
                Style::Plain => write!(writer, "{}: {}: {}", self.tag, level, fields.message)?,
                Style::Syslog => write!(
                    writer,
                    "{}[{}]: {}: {}",
                    self.tag, self.pid, level, fields.message
                )?,
            }
            for (k, v) in &fields.extra {
                write!(writer, " {k}={}", crate::units::show(v))?;
            }
            writeln!(writer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let stderr = Some((64769, 1234));
        let choose = |opt: Option<&str>, stream: Option<&str>| choose_target(opt, stream, stderr);
        // Without --log: journald only when stderr is the journal stream itself.
        assert_eq!(choose(None, Some("64769:1234")), Ok(LogTarget::Journald));
        assert_eq!(choose(None, Some(" 64769:1234\n")), Ok(LogTarget::Journald));
        assert_eq!(
            choose(None, Some("64769:999")),
            Ok(LogTarget::Stderr),
            "inherited by a child"
        );
        assert_eq!(choose(None, Some("1:1234")), Ok(LogTarget::Stderr));
        assert_eq!(choose(None, Some("garbage")), Ok(LogTarget::Stderr));
        assert_eq!(choose(None, None), Ok(LogTarget::Stderr));
        assert_eq!(
            choose(Some(""), Some("64769:1234")),
            Ok(LogTarget::Journald)
        );
        assert_eq!(
            choose_target(None, Some("64769:1234"), None),
            Ok(LogTarget::Stderr),
            "stderr closed"
        );
        // --log wins.
        assert_eq!(
            choose(Some("stderr"), Some("64769:1234")),
            Ok(LogTarget::Stderr)
        );
        assert_eq!(choose(Some("-"), None), Ok(LogTarget::Stderr));
        assert_eq!(choose(Some("journald"), None), Ok(LogTarget::Journald));
        assert_eq!(choose(Some("@local0"), None), Ok(LogTarget::Syslog(16)));
        assert_eq!(choose(Some("@LOCAL7"), None), Ok(LogTarget::Syslog(23)));
        assert_eq!(choose(Some("@daemon"), None), Ok(LogTarget::Syslog(3)));
        assert!(choose(Some("@local8"), None).is_err());
        assert!(choose(Some("@"), None).is_err());
        assert_eq!(
            choose(Some("/var/log/x.log"), Some("64769:1234")),
            Ok(LogTarget::File(PathBuf::from("/var/log/x.log")))
        );
    }

    #[test]
    fn stderr_identity_is_fstat_of_fd_2() {
        use std::os::unix::fs::MetadataExt;
        let expected = std::fs::metadata("/proc/self/fd/2").map(|m| (m.dev(), m.ino()));
        assert_eq!(stderr_identity(), expected.ok());
    }

    #[test]
    fn syslog_datagrams_are_the_originals() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let socket = SyslogSocket::connect(&path, "test").unwrap_or_else(|e| panic!("{e}"));
        let make = SyslogMakeWriter {
            socket: Arc::new(socket),
            facility: 16,
        };
        for (level, text) in [
            (Level::INFO, "lava-worker: {\"a\": 1}\n"),
            (Level::ERROR, "x[1]: ERROR: bad\n"),
        ] {
            let mut w = make.writer(&level);
            std::io::Write::write_all(&mut w, text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"<134>lava-worker: {\"a\": 1}\0");
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"<131>x[1]: ERROR: bad\0");
        // Syslog restarted: a new socket at the same path still gets records.
        drop(server);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        drop(make.writer(&Level::WARN));
        let mut w = make.writer(&Level::WARN);
        std::io::Write::write_all(&mut w, b"again\n").unwrap_or_else(|e| panic!("{e}"));
        drop(w);
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"<132>again\0");
    }

    #[test]
    fn syslog_sends_to_a_full_socket_never_block() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("log");
        // A syslog that never reads: its queue fills after a few records.
        let server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let socket =
            Arc::new(SyslogSocket::connect(&path, "test").unwrap_or_else(|e| panic!("{e}")));
        let make = SyslogMakeWriter {
            socket: Arc::clone(&socket),
            facility: 16,
        };
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for n in 0..5_000 {
                let mut w = make.writer(&Level::INFO);
                let line = format!("record {n} {}\n", "x".repeat(200));
                std::io::Write::write_all(&mut w, line.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let _ = done.send(make);
        });
        // A generous bound: a blocking send would never return at all.
        let make = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("syslog sends blocked on a full socket"));
        let unreported = || socket.socket.lock().map(|g| g.1).unwrap_or(u64::MAX);
        let dropped = unreported();
        assert!(dropped > 0 && dropped < 5_000, "{dropped} dropped");
        // The first records got through whole, as always.
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert!(buf[..n].starts_with(b"<134>record 0 x"), "{:?}", &buf[..n]);
        assert_eq!(buf[n - 1], 0);
        // Once syslog reads again, records get through and the count of
        // dropped ones is reported (and reset).
        server
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        while server.recv(&mut buf).is_ok() {}
        let mut w = make.writer(&Level::WARN);
        std::io::Write::write_all(&mut w, b"back\n").unwrap_or_else(|e| panic!("{e}"));
        drop(w);
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"<132>back\0");
        assert_eq!(unreported(), 0, "reported once a record got through");
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("user"), Some(1));
        assert_eq!(parse_facility("security"), Some(4));
        assert_eq!(parse_facility("local3"), Some(19));
        assert_eq!(parse_facility("local03"), None);
        assert_eq!(parse_facility("nope"), None);
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("INFO"), Ok(Level::INFO));
        assert_eq!(parse_level("warning"), Ok(Level::WARN));
        assert_eq!(parse_level("critical"), Ok(Level::ERROR));
        assert!(parse_level("loud").is_err());
    }
}
