//! A fault-injecting HTTP proxy for the AWS emulator: HTTP-aware, since the
//! SDK talks plain HTTP to moto on loopback.
//!
//! The lava binaries talk plain HTTP/1.1 to moto on loopback; pointed at
//! this proxy instead (`AWS_ENDPOINT_URL=http://127.0.0.1:<port>`), each of
//! their requests is read whole and then, by a seeded schedule, forwarded
//! as it is, or delayed, or answered with a closed or reset connection, or
//! forwarded with its reply lost (the emulator acts on it, the client never
//! hears), or forwarded and then left hanging with no reply on an open
//! connection (a half-open socket), or answered by the proxy itself with a
//! 500, a 503 or a throttling error. Loopback only.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How often each fault happens, per request (probabilities 0–1, summed
/// they must stay below 1; the rest are forwarded untouched).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Seed of the schedule.
    pub seed: u64,
    /// Close the connection without forwarding.
    pub drop: f64,
    /// Reset the connection (RST) without forwarding.
    pub reset: f64,
    /// Forward after a delay of up to `max_delay`.
    pub delay: f64,
    /// Longest delay.
    pub max_delay: Duration,
    /// Forward, then close without answering.
    pub lose_reply: f64,
    /// Answer 500 InternalError.
    pub error_500: f64,
    /// Answer 503 ServiceUnavailable.
    pub error_503: f64,
    /// Answer 400 ThrottlingException (S3: 503 SlowDown).
    pub throttle: f64,
    /// Forward, then hold the connection open with no reply until the
    /// client gives up. DynamoDB requests only; others drawn for it pass.
    pub hang: f64,
}

impl Faults {
    /// No faults at all.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            drop: 0.0,
            reset: 0.0,
            delay: 0.0,
            max_delay: Duration::ZERO,
            lose_reply: 0.0,
            error_500: 0.0,
            error_503: 0.0,
            throttle: 0.0,
            hang: 0.0,
        }
    }
}

/// What the proxy did to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded untouched.
    Pass,
    /// Connection closed, request not forwarded.
    Drop,
    /// Connection reset, request not forwarded.
    Reset,
    /// Forwarded after a delay.
    Delay,
    /// Forwarded, reply withheld, connection closed.
    LoseReply,
    /// Answered 500.
    Error500,
    /// Answered 503.
    Error503,
    /// Answered with a throttling error.
    Throttle,
    /// Forwarded, then no reply on a connection left open.
    Hang,
}

const KINDS: [Fault; 9] = [
    Fault::Pass,
    Fault::Drop,
    Fault::Reset,
    Fault::Delay,
    Fault::LoseReply,
    Fault::Error500,
    Fault::Error503,
    Fault::Throttle,
    Fault::Hang,
];

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; 9],
}

impl Stats {
    fn note(&self, fault: Fault) {
        if let Some(i) = KINDS.iter().position(|k| *k == fault) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests got this treatment.
    pub fn count(&self, fault: Fault) -> u64 {
        KINDS
            .iter()
            .position(|k| *k == fault)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Every kind with its count.
    pub fn summary(&self) -> Vec<(Fault, u64)> {
        KINDS.iter().map(|k| (*k, self.count(*k))).collect()
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// What it has done so far.
    pub stats: Arc<Stats>,
    gate: Arc<Gate>,
    task: tokio::task::JoinHandle<()>,
}

/// Holds S3 uploads while closed.
#[derive(Debug)]
struct Gate {
    closed: tokio::sync::watch::Sender<bool>,
    held: AtomicU64,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`host:port`).
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("proxy cannot listen: {e}"),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let stats = Arc::new(Stats::default());
        let schedule = Arc::new(Schedule {
            faults,
            state: Mutex::new(0),
        });
        if let Ok(mut state) = schedule.state.lock() {
            *state = schedule.faults.seed;
        }
        let upstream = upstream.to_string();
        let task_stats = Arc::clone(&stats);
        let gate = Arc::new(Gate {
            closed: tokio::sync::watch::Sender::new(false),
            held: AtomicU64::new(0),
        });
        let task_gate = Arc::clone(&gate);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, schedule, stats, gate) = (
                    upstream.clone(),
                    Arc::clone(&schedule),
                    Arc::clone(&task_stats),
                    Arc::clone(&task_gate),
                );
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &schedule, &stats, &gate).await;
                });
            }
        });
        Self {
            port,
            stats,
            gate,
            task,
        }
    }

    /// Closes the gate: S3 uploads wait until it opens.
    pub fn hold_uploads(&self) {
        self.gate.closed.send_replace(true);
    }

    /// Opens the gate: held uploads go on.
    pub fn release_uploads(&self) {
        self.gate.closed.send_replace(false);
    }

    /// How many uploads the gate has held so far.
    pub fn held_uploads(&self) -> u64 {
        self.gate.held.load(Ordering::Relaxed)
    }

    /// The endpoint URL to give the binaries.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The seeded sequence of draws (splitmix64).
struct Schedule {
    faults: Faults,
    state: Mutex<u64>,
}

impl Schedule {
    /// A number in [0, 1).
    fn draw(&self) -> f64 {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&self) -> (Fault, Duration) {
        let f = &self.faults;
        let mut x = self.draw();
        for (fault, p) in [
            (Fault::Drop, f.drop),
            (Fault::Reset, f.reset),
            (Fault::Delay, f.delay),
            (Fault::LoseReply, f.lose_reply),
            (Fault::Error500, f.error_500),
            (Fault::Error503, f.error_503),
            (Fault::Throttle, f.throttle),
            (Fault::Hang, f.hang),
        ] {
            if x < p {
                let delay = if fault == Fault::Delay {
                    f.max_delay.mul_f64(self.draw())
                } else {
                    Duration::ZERO
                };
                return (fault, delay);
            }
            x -= p;
        }
        (Fault::Pass, Duration::ZERO)
    }
}

/// One HTTP message read off a stream: its raw bytes and what matters of its head.
struct Message {
    raw: Vec<u8>,
    head: String,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn first_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Buffered reading of HTTP/1.1 messages.
struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::new(),
        }
    }

    /// Reads more; false at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.inner.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Takes `n` bytes off the buffer, reading as needed.
    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (with its CRLF).
    async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads one message; `None` at a clean end of stream before it.
    /// `no_body` for replies to HEAD; `to_close` lets a reply without a
    /// length run to the end of the stream.
    async fn message(&mut self, no_body: bool, to_close: bool) -> std::io::Result<Option<Message>> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        let raw: Vec<u8> = self.buf.drain(..end).collect();
        let mut message = Message {
            head: String::from_utf8_lossy(&raw).into_owned(),
            raw,
        };
        let status = message
            .first_line()
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| message.first_line().strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok());
        let bodiless = no_body || matches!(status, Some(100..=199 | 204 | 304));
        if bodiless {
            return Ok(Some(message));
        }
        let chunked = message
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = self.line().await?;
                message.raw.extend_from_slice(&size_line);
                let text = String::from_utf8_lossy(&size_line);
                let hex = text
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let size = usize::from_str_radix(hex.trim(), 16)
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        let line = self.line().await?;
                        message.raw.extend_from_slice(&line);
                        if line == b"\r\n" {
                            return Ok(Some(message));
                        }
                    }
                }
                let data = self.take(size + 2).await?;
                message.raw.extend_from_slice(&data);
            }
        }
        if let Some(length) = message.header("content-length") {
            let n: usize = length
                .parse()
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            let body = self.take(n).await?;
            message.raw.extend_from_slice(&body);
        } else if to_close && status.is_some() {
            while self.fill().await? {}
            message.raw.append(&mut self.buf);
        }
        Ok(Some(message))
    }
}

/// Serves one client connection, request by request.
async fn serve(
    client: TcpStream,
    upstream: &str,
    schedule: &Schedule,
    stats: &Stats,
    gate: &Gate,
) -> std::io::Result<()> {
    let (read, mut write) = client.into_split();
    let mut requests = Reader::new(read);
    while let Some(request) = requests.message(false, false).await? {
        if request.first_line().starts_with("PUT ") && *gate.closed.borrow() {
            gate.held.fetch_add(1, Ordering::Relaxed);
            let mut closed = gate.closed.subscribe();
            let _ = closed.wait_for(|closed| !closed).await;
        }
        let (mut fault, delay) = schedule.next();
        let dynamodb = request
            .header("x-amz-target")
            .is_some_and(|t| t.starts_with("DynamoDB"));
        if fault == Fault::Hang && !dynamodb {
            fault = Fault::Pass;
        }
        stats.note(fault);
        match fault {
            Fault::Drop => return Ok(()),
            Fault::Reset => {
                let stream = requests
                    .inner
                    .reunite(write)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                reset(stream);
                return Ok(());
            }
            Fault::Error500 | Fault::Error503 | Fault::Throttle => {
                write.write_all(&error_reply(fault, &request)).await?;
                if request.wants_close() {
                    return Ok(());
                }
                continue;
            }
            Fault::Hang => {
                // The emulator acts on it; the client waits for a reply that
                // never comes, until it closes the connection.
                let _ = forward(upstream, &request).await;
                while requests.fill().await.unwrap_or(false) {}
                return Ok(());
            }
            Fault::Delay => tokio::time::sleep(delay).await,
            Fault::Pass | Fault::LoseReply => {}
        }
        let reply = forward(upstream, &request).await?;
        if fault == Fault::LoseReply {
            return Ok(());
        }
        write.write_all(&reply.raw).await?;
        if request.wants_close() || reply.wants_close() {
            return Ok(());
        }
    }
    Ok(())
}

/// Sends a request to the emulator on a connection of its own and reads the reply.
async fn forward(upstream: &str, request: &Message) -> std::io::Result<Message> {
    let stream = TcpStream::connect(upstream).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(&request.raw).await?;
    let head_only = request.first_line().starts_with("HEAD ");
    let mut replies = Reader::new(read);
    replies
        .message(head_only, true)
        .await?
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
}

/// Closes a connection with RST instead of FIN.
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// The proxy's own error reply, in the protocol of the request: the JSON
/// protocols (DynamoDB, SQS) carry `X-Amz-Target`; S3 speaks XML.
fn error_reply(fault: Fault, request: &Message) -> Vec<u8> {
    let json = request.header("x-amz-target").is_some();
    let (status, code) = match (fault, json) {
        (Fault::Error500, true) => ("500 Internal Server Error", "InternalServerError"),
        (Fault::Error500, false) => ("500 Internal Server Error", "InternalError"),
        (Fault::Throttle, true) => ("400 Bad Request", "ThrottlingException"),
        (Fault::Throttle, false) => ("503 Slow Down", "SlowDown"),
        (_, true) => ("503 Service Unavailable", "ServiceUnavailable"),
        (_, false) => ("503 Service Unavailable", "ServiceUnavailable"),
    };
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>"
            ),
        )
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-ErrorType: {code}\r\nx-amzn-RequestId: proxy\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_seeded_and_honours_rates() {
        let faults = Faults {
            drop: 0.1,
            throttle: 0.2,
            ..Faults::none(7)
        };
        let run = || {
            let s = Schedule {
                faults: faults.clone(),
                state: Mutex::new(faults.seed),
            };
            (0..10_000).map(|_| s.next().0).collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "same seed, same schedule");
        let drops = a.iter().filter(|f| **f == Fault::Drop).count();
        let throttles = a.iter().filter(|f| **f == Fault::Throttle).count();
        assert!((800..1200).contains(&drops), "{drops}");
        assert!((1700..2300).contains(&throttles), "{throttles}");
        assert!(!a.contains(&Fault::Reset));
    }
}
