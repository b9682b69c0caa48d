//! The worker daemon: start-up checks, the poll loop with `--threads` job
//! slots, the heartbeat, and shutdown — SIGTERM/SIGINT/SIGHUP stop polling
//! and drain until `DRAIN_TIMEOUT`, a second signal stops at once
//! (a payload group still running then gets SIGTERM, then SIGKILL).
//! Exit codes follow sysexits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lava_common::config::Config;
use lava_common::connection::{AwsResolver, Connections};
use lava_common::dispatch::{DispatchRequest, Dispatcher};
use lava_common::logging;
use lava_common::render::Renderer;
use lava_common::spec::Realm;
use lava_common::store::{
    Backend, BackendSpec, Connector, Engine, Key, ParameterCache, QueueRef, Received, Seams,
    StoreError, Table,
};
use lava_common::{names, units};
use serde_json::{Map, Value};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cgroup;
use crate::cli::Args;
use crate::clients::ActionClients;
use crate::events::Identity;
use crate::notify;
use crate::process::{self, Interrupt};
use crate::run;
use crate::services::Services;
use crate::ses::Ses;
use crate::settings::{MailSettings, RetryMode, StartupSettings, WorkerSettings};
use crate::sns::Topics;
use crate::workdir;
use crate::worker::{Options, Worker, work_dir_name};

/// sysexits codes used by the worker.
pub mod exit {
    /// Normal end (also after a drain).
    pub const OK: u8 = 0;
    /// Bad usage.
    pub const USAGE: u8 = 64;
    /// A service still unreachable after `STARTUP_RETRY`.
    pub const UNAVAILABLE: u8 = 69;
    /// Internal error.
    pub const SOFTWARE: u8 = 70;
    /// Running as root without `--root`.
    pub const NOPERM: u8 = 77;
    /// Bad configuration (realm record, config values).
    pub const CONFIG: u8 = 78;
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    tracing::error!("{message}");
    eprintln!("lava-worker: {message}");
    code
}

/// Runs the worker until it is told to stop (or, with `--batch`, the queue is empty).
pub async fn run(args: Args) -> u8 {
    if let Err(e) = args.common.init_logging() {
        return fail(exit::USAGE, e);
    }
    // Orphans of payloads (double-forked daemons) come to the worker, not to
    // init, so it can account for them and reap them.
    if let Err(e) = process::become_subreaper() {
        tracing::warn!("cannot become a child subreaper: {e}");
    }
    process::spawn_reaper();
    if nix::unistd::geteuid().is_root() && !args.root {
        return fail(
            exit::NOPERM,
            "You should not run the lava worker as root (use --root to insist)",
        );
    }
    if args.daemon {
        return fail(
            exit::USAGE,
            "--daemon is not supported: run lava-worker under systemd (lava-worker@.service)",
        );
    }
    let (Some(realm_name), Some(worker_name)) = (args.common.realm.clone(), args.worker.clone())
    else {
        return fail(
            exit::USAGE,
            "both -r/--realm and -w/--worker are required (or LAVA_REALM and LAVA_WORKER)",
        );
    };
    // The keys the original's CloudWatch metric filters match.
    let mut context = Map::new();
    context.insert("event_source".into(), "lava-worker".into());
    context.insert("realm".into(), realm_name.clone().into());
    context.insert("worker".into(), worker_name.clone().into());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    context.insert("host".into(), host.into());
    logging::set_context(context);
    if let Err(e) = names::check_realm(&realm_name)
        .and_then(|()| names::check_worker(&realm_name, &worker_name))
    {
        return fail(exit::USAGE, e);
    }
    if args.wait > 20 {
        return fail(
            exit::USAGE,
            format!("--wait must be 0 to 20 seconds, not {}", args.wait),
        );
    }
    if args.heartbeat != 0 && args.heartbeat < 30 {
        return fail(
            exit::USAGE,
            format!(
                "--heartbeat must be 0 or at least 30 seconds, not {}",
                args.heartbeat
            ),
        );
    }
    if args.threads == 0 {
        return fail(exit::USAGE, "--threads must be at least 1");
    }
    // A cgroup leaf per run when the worker's cgroup is delegated to it.
    cgroup::init();
    let spec = match BackendSpec::parse(&args.common.backend) {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    // One connector builds the storage seams and the action clients, so
    // they share one AWS configuration (or one opened local store).
    let connector = Connector::new(args.common.profile.as_deref());
    let seams = Seams::from(&spec);
    let backend = match Backend::assemble(&seams, &connector).await {
        Ok(b) => b,
        Err(e) => return fail(exit::USAGE, e),
    };
    let startup_retry = match StartupSettings::load(&Config::from_env(&Map::new())) {
        Ok(s) => s.startup_retry,
        Err(e) => return fail(exit::CONFIG, e),
    };
    let queue_name = args
        .queue
        .clone()
        .unwrap_or_else(|| names::queue_name(&realm_name, &worker_name));
    let started = Instant::now();
    let (queue, queue_visibility, realm) = loop {
        match start_up(&backend, &queue_name, &realm_name).await {
            Ok(found) => break found,
            Err(StartError::Config(message)) => return fail(exit::CONFIG, message),
            Err(StartError::Unavailable(message)) => {
                if started.elapsed() >= startup_retry {
                    return fail(exit::UNAVAILABLE, message);
                }
                tracing::warn!("{message}; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    // Every setting the worker reads is converted here, once: a bad value
    // refuses start-up rather than failing runs later.
    let config = Config::from_env(&realm.config());
    let settings = match WorkerSettings::load(&config) {
        Ok(s) => s,
        Err(e) => return fail(exit::CONFIG, e),
    };
    let drain_timeout = match &args.drain_timeout {
        Some(text) => match units::parse_duration(text).and_then(units::to_duration) {
            Ok(d) => d,
            Err(e) => return fail(exit::USAGE, format!("--drain-timeout: {e}")),
        },
        None => settings.drain_timeout,
    };
    let delayed_retries = settings.retry_mode == RetryMode::Delayed && !args.batch;
    let work_dir = PathBuf::from(&settings.tmpdir)
        .join(&realm_name)
        .join(work_dir_name(&worker_name, std::process::id()));
    if let Err(e) = workdir::create_private(&work_dir) {
        return fail(
            exit::CONFIG,
            format!("cannot create {}: {e}", work_dir.display()),
        );
    }
    let bus = match connector.bus(&seams.bus).await {
        Ok(bus) => bus,
        Err(e) => return fail(exit::USAGE, e),
    };
    let mail = match MailSettings::load(&config) {
        Ok(s) => s,
        Err(e) => return fail(exit::CONFIG, e),
    };
    // SNS and SES live where the event bus does.
    let (topics, ses) = match &seams.bus {
        Engine::Aws => {
            let aws = connector.aws_config().await;
            (Topics::aws(aws), Ses::Aws(Box::new(aws.clone())))
        }
        Engine::Local(_) => (Topics::Local, Ses::Local),
    };
    let parameters = ParameterCache::new(
        connector.secrets(&seams.secrets).await,
        settings.param_cache_ttl,
        settings.param_cache_entries(),
    );
    let connections = Connections::new(
        &realm_name,
        Arc::clone(&backend.tables),
        parameters,
        AwsResolver::new(args.common.profile.as_deref(), settings.aws_connections()),
    );
    let worker = Arc::new(Worker {
        services: Services {
            dispatcher: Dispatcher::new(backend.clone(), &realm_name),
            connections,
            realm_name,
            worker_name: worker_name.clone(),
            realm,
            renderer: Renderer::with_fuel(settings.render_fuel_limit()),
            tables: Arc::clone(&backend.tables),
            objects: Arc::clone(&backend.objects),
            kms: connector.kms(&seams.kms).await,
            settings,
            backend_spec: spec,
            dev: args.dev,
        },
        clients: ActionClients {
            bus,
            queue: Arc::clone(&backend.queue),
            topics,
            ses,
            mail,
        },
        queues: Arc::clone(&backend.queue),
        identity: Arc::new(Identity::detect(&worker_name)),
        queue,
        queue_visibility,
        work_dir: work_dir.clone(),
        options: Options {
            threads: args.threads,
            retries: args.retries,
            delayed_retries,
        },
        config_dump: config.dump(),
        active: Default::default(),
        stopping: Default::default(),
    });
    if args.jump_start {
        jump_start(&worker).await;
    }
    let code = serve(&worker, &args, drain_timeout).await;
    if let Err(e) = std::fs::remove_dir_all(&work_dir) {
        tracing::warn!("cannot remove {}: {e}", work_dir.display());
    }
    code
}

/// Jump-start (`-j`): dispatches every `lavasched`
/// job of this worker whose `enabled` is the boolean `true`, with delay
/// `JUMPSTART_DELAY` (truncated to whole seconds), so the dispatcher host
/// gets its first crontab. Nothing is sent while the suppression file
/// (`NO_DISPATCH`) exists: a host told not to dispatch must not start
/// schedules either (the original dispatches). Failures are logged; the
/// worker starts anyway.
async fn jump_start(w: &Worker) {
    let s = &w.services;
    let file = s.settings.no_dispatch.clone().unwrap_or_default();
    if !file.is_empty() && std::path::Path::new(&file).exists() {
        tracing::warn!(
            event_type = "worker",
            "Jumpstart: suppressed by presence of {file}"
        );
        return;
    }
    // Truncated to whole seconds and saturated: no range check here, as the
    // original; the queue refuses a delay it cannot take.
    let delay_secs = u32::try_from(s.settings.jumpstart_delay.as_secs()).unwrap_or(u32::MAX);
    let items = match s.tables.scan(&s.realm_name, Table::Jobs).await {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(
                event_type = "worker",
                "Jumpstart: cannot read the jobs table: {e}"
            );
            return;
        }
    };
    let mut job_ids: Vec<String> = items
        .iter()
        .filter(|item| {
            item.get("type").and_then(Value::as_str) == Some("lavasched")
                && item.get("worker").and_then(Value::as_str) == Some(s.worker_name.as_str())
                && item.get("enabled") == Some(&Value::Bool(true))
        })
        .filter_map(|item| {
            item.get("job_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    job_ids.sort();
    for job_id in job_ids {
        let request = DispatchRequest {
            job_id: job_id.clone(),
            worker: Some(s.worker_name.clone()),
            delay_secs,
            ..DispatchRequest::default()
        };
        match s.dispatcher.dispatch(&request).await {
            Ok(sent) => tracing::info!(event_type = "worker", job_id = %job_id,
                run_id = %sent.message.run_id,
                "Jumpstart: Dispatched {job_id} to {} (run {}, delay {delay_secs}s)",
                s.worker_name, sent.message.run_id),
            Err(e) => tracing::error!(event_type = "worker", job_id = %job_id,
                "Jumpstart: Cannot dispatch {job_id}: {e}"),
        }
    }
}

enum StartError {
    Config(String),
    Unavailable(String),
}

/// Resolves the queue and reads the realm record.
async fn start_up(
    backend: &Backend,
    queue_name: &str,
    realm_name: &str,
) -> Result<(QueueRef, u32, Realm), StartError> {
    let unavailable = |e: StoreError| StartError::Unavailable(e.to_string());
    let queue = backend
        .queue
        .resolve(queue_name)
        .await
        .map_err(unavailable)?;
    let visibility = backend
        .queue
        .visibility_timeout(&queue)
        .await
        .map_err(unavailable)?;
    let item = backend
        .tables
        .get(realm_name, Table::Realms, &Key::new(realm_name), false)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StartError::Config(format!("No such realm: {realm_name}")))?;
    let realm = Realm::from_item(item).map_err(|e| StartError::Config(e.to_string()))?;
    Ok((queue, visibility, realm))
}

/// The poll loop and the drain.
async fn serve(w: &Arc<Worker>, args: &Args, drain_timeout: Duration) -> u8 {
    let interrupt = Interrupt::new();
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            return fail(
                exit::SOFTWARE,
                format!("cannot install signal handlers: {e}"),
            );
        }
    };
    let heartbeat = (args.heartbeat > 0)
        .then(|| spawn_heartbeat(Arc::clone(w), Duration::from_secs(args.heartbeat)));
    tracing::info!(
        event_type = "worker",
        "Worker ready: realm={} worker={} queue={} threads={}",
        w.services.realm_name,
        w.services.worker_name,
        w.queue.name,
        args.threads
    );
    notify::ready(&format!("Polling {}", w.queue.name));
    let slots = Arc::new(Semaphore::new(args.threads));
    let mut runs = JoinSet::new();
    let mut backoff = Duration::from_millis(200);
    let mut first_signal = None;
    loop {
        while runs.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p,
            s = signals.next(w) => { first_signal = Some(s); break; }
        };
        let Ok(permit) = permit else { break };
        // One receive takes a message for each free slot (SQS gives at most
        // 10 at a time): a busy queue is not drained one request at a time.
        let mut permits = vec![permit];
        while permits.len() < 10 {
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let want = u32::try_from(permits.len()).unwrap_or(1);
        // A connection that never answers must not stall the loop.
        let limit = Duration::from_secs(u64::from(args.wait) + 60);
        let receive = async {
            tokio::time::timeout(limit, w.queues.receive(&w.queue, want, args.wait))
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "no answer to a receive in {limit:?}"
                    )))
                })
        };
        tokio::pin!(receive);
        let received = tokio::select! {
            r = &mut receive => r,
            s = signals.next(w) => {
                first_signal = Some(s);
                // Stop polling, but let the poll in flight end: abandoned,
                // it could still take a message that nobody would run.
                hand_back(w, receive, args.wait).await;
                break;
            }
        };
        match received {
            Ok(messages) if messages.is_empty() => {
                backoff = Duration::from_millis(200);
                drop(permits);
                if args.batch {
                    break;
                }
                if args.sleep > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(args.sleep.unsigned_abs())) => {}
                        s = signals.next(w) => { first_signal = Some(s); break; }
                    }
                }
            }
            Ok(messages) => {
                backoff = Duration::from_millis(200);
                // One slot per message; the slots left over go back.
                for (msg, permit) in messages.into_iter().zip(permits) {
                    let (w, interrupt) = (Arc::clone(w), interrupt.clone());
                    runs.spawn(async move {
                        run::handle(w, msg, interrupt).await;
                        drop(permit);
                    });
                }
            }
            Err(e) => {
                // Never fatal: back off, exponential with jitter, 10 s cap.
                drop(permits);
                tracing::warn!(
                    event_type = "worker",
                    "receive failed: {e}; retrying in {backoff:?}"
                );
                tokio::select! {
                    () = tokio::time::sleep(jitter(backoff)) => {}
                    s = signals.next(w) => { first_signal = Some(s); break; }
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    w.stopping.cancel();
    let code = drain(
        w,
        &mut runs,
        &mut signals,
        &interrupt,
        first_signal,
        drain_timeout,
    )
    .await;
    if let Some(h) = heartbeat {
        h.cancel();
    }
    tracing::info!(event_type = "worker", "Finishing");
    code
}

/// Waits for a receive that a stop signal interrupted and makes what it
/// got visible again at once, for another worker.
async fn hand_back(
    w: &Worker,
    receive: impl std::future::Future<Output = Result<Vec<Received>, StoreError>>,
    wait: u32,
) {
    let limit = Duration::from_secs(u64::from(wait) + 30);
    let Ok(Ok(messages)) = tokio::time::timeout(limit, receive).await else {
        return;
    };
    for msg in messages {
        if let Err(e) = w.queues.change_visibility(&w.queue, &msg.receipt, 0).await {
            tracing::warn!(message_id = %msg.message_id, "cannot hand a message back: {e}");
        }
    }
}

/// Waits for the running jobs. After a stop signal they
/// have until `drain_timeout`; then each group gets SIGTERM and, after
/// `KILL_GRACE`, SIGKILL. A further signal kills them at once and makes the
/// exit code 128 + its number. Without a signal (`--batch` at an empty
/// queue) the jobs run to their end, unless a signal starts the drain.
async fn drain(
    w: &Arc<Worker>,
    runs: &mut JoinSet<()>,
    signals: &mut Signals,
    interrupt: &Interrupt,
    first_signal: Option<Stop>,
    drain_timeout: Duration,
) -> u8 {
    let kill_grace = w.services.settings.kill_grace;
    // systemd waits TimeoutStopSec; past that, only as long as we ask for.
    let extend =
        |left: Duration, what: &str| notify::stopping(left + kill_grace + NOTIFY_MARGIN, what);
    let announce = |signal: Stop, running: usize| {
        tracing::info!(
            event_type = "worker",
            "{}: draining {running} running job(s), at most {drain_timeout:?}",
            signal.name()
        );
        extend(drain_timeout, "Draining");
    };
    let mut extend_ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + NOTIFY_PERIOD, NOTIFY_PERIOD);
    // How long stopped jobs get to record their interruption before they are abandoned.
    let give_up_after = w.services.settings.kill_grace + Duration::from_secs(60);
    let far = Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = tokio::time::sleep(if first_signal.is_some() {
        drain_timeout
    } else {
        far
    });
    let abandon = tokio::time::sleep(far);
    tokio::pin!(deadline, abandon);
    if let Some(signal) = first_signal {
        announce(signal, runs.len());
    }
    let mut signalled = first_signal.is_some();
    let mut hard = false;
    let mut code = exit::OK;
    loop {
        tokio::select! {
            next = runs.join_next() => if next.is_none() { break },
            () = &mut deadline, if !interrupt.is_interrupted() => {
                tracing::warn!(event_type = "worker", "drain deadline reached: stopping {} job(s)", runs.len());
                interrupt.deadline();
                extend(Duration::ZERO, "Stopping jobs");
                abandon.as_mut().reset(tokio::time::Instant::now() + give_up_after);
            }
            s = signals.next(w), if !hard => {
                if signalled {
                    tracing::warn!(event_type = "worker", "second signal ({}): stopping {} job(s) now", s.name(), runs.len());
                    code = 128 + s.number();
                    hard = true;
                    interrupt.kill_now();
                    extend(Duration::ZERO, "Stopping jobs");
                    abandon.as_mut().reset(tokio::time::Instant::now() + give_up_after);
                } else {
                    signalled = true;
                    announce(s, runs.len());
                    deadline.as_mut().reset(tokio::time::Instant::now() + drain_timeout);
                }
            }
            _ = extend_ticks.tick(), if signalled && !interrupt.is_interrupted() => {
                let left = deadline.deadline().saturating_duration_since(tokio::time::Instant::now());
                extend(left, "Draining");
            }
            () = &mut abandon => {
                tracing::error!(event_type = "worker", "{} job(s) did not stop; abandoning them (their messages come back after the visibility timeout)", runs.len());
                runs.abort_all();
                abandon.as_mut().reset(tokio::time::Instant::now() + far);
            }
        }
    }
    code
}

/// How often a draining worker renews its stop timeout with systemd.
const NOTIFY_PERIOD: Duration = Duration::from_secs(30);
/// Time asked of systemd beyond the drain and the kill grace (final event writes).
const NOTIFY_MARGIN: Duration = Duration::from_secs(60);

/// Up to ±25 % of a delay, so many workers do not retry in step.
fn jitter(delay: Duration) -> Duration {
    let spread = (uuid::Uuid::new_v4().as_u128() % 500) as f64 / 1000.0 - 0.25;
    delay.mul_f64(1.0 + spread)
}

/// The signals the worker acts on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

/// A stop request.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Int,
    Hup,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Hup => "SIGHUP",
            Stop::Int => "SIGINT",
            Stop::Term => "SIGTERM",
        }
    }

    fn number(self) -> u8 {
        match self {
            Stop::Hup => 1,
            Stop::Int => 2,
            Stop::Term => 15,
        }
    }
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// The next stop request; SIGUSR1 is answered on the way (status log).
    async fn next(&mut self, w: &Worker) -> Stop {
        loop {
            tokio::select! {
                _ = self.term.recv() => return Stop::Term,
                _ = self.int.recv() => return Stop::Int,
                _ = self.hup.recv() => return Stop::Hup,
                _ = self.usr1.recv() => {
                    let runs = w.active.run_ids();
                    tracing::info!(event_type = "worker", "status: realm={} worker={} queue={} work_dir={} threads={} running={} runs=[{}]",
                        w.services.realm_name, w.services.worker_name, w.queue.name, w.work_dir.display(),
                        w.options.threads, runs.len(), runs.join(", "));
                    for line in &w.config_dump {
                        tracing::info!(event_type = "worker", "config {line}");
                    }
                }
            }
        }
    }
}

/// Touches the heartbeat file and logs the heartbeat line.
fn spawn_heartbeat(w: Arc<Worker>, period: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let file = w.work_dir.join(&w.services.settings.heartbeat_file);
            if let Err(e) = std::fs::write(&file, b"") {
                tracing::warn!("cannot touch {}: {e}", file.display());
            }
            tracing::info!(
                event_type = "heartbeat",
                "heartbeat realm={} worker={}",
                w.services.realm_name,
                w.services.worker_name
            );
        }
    });
    token
}
