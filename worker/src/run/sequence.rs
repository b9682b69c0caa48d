//! The run sequence of an admitted run: the static `enabled`, the
//! `starting` event, the limits (`max_run_delay`, `iteration_limit`,
//! `iteration_delay`), `globals.lava`, state expansion, `event_log`, the
//! Jinja `enabled`, the job type, the job directory, then the attempts. A
//! resumed run (a planned retry) skips what its first delivery did. The
//! same sequence runs an in-process child of `chain`, `dag` and `foreach`
//! (see [`super::child`]), in its parent's directory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use lava_common::spec::{Enabled, Status};
use lava_common::{state, timestamp, units};
use serde_json::{Map, Value};

use super::augmented::Run;
use super::record::{fail_early, final_event, lost, reject};
use super::resume::Resume;
use super::{End, attempts};
use crate::events::{Mark, RunEvents};
use crate::jobs::registry::{self, Lookup};
use crate::process::Interrupt;
use crate::workdir;
use crate::worker::Worker;

/// How an admitted run's sequence begins.
pub(super) enum Begin {
    /// Its `starting` entry is still to be written.
    Fresh,
    /// Its `starting` entry went with the lease, at this time.
    Started(DateTime<FixedOffset>),
    /// A planned retry: the run goes on with its next iteration. The checks
    /// its first delivery passed (`enabled`, `max_run_delay`) and its
    /// `event_log` are not done again.
    Resumed(Resume),
}

/// Runs an admitted run to its end.
pub(super) async fn run(
    w: &Arc<Worker>,
    mut run: Run,
    events: &mut RunEvents,
    cancel: &Interrupt,
    begin: Begin,
) -> End {
    let prefix = run.prefix();
    let services = &w.services;
    let resume = match &begin {
        Begin::Resumed(resume) => Some(resume.clone()),
        Begin::Fresh | Begin::Started(_) => None,
    };
    if resume.is_none() && run.job.enabled() == Enabled::Static(false) {
        tracing::info!("{prefix}: not enabled (static)");
        return final_event(
            events,
            Status::Skipped,
            Value::String("Job not enabled (static)".into()),
        )
        .await;
    }
    // `starting` went with the lease, unless admission could not tell
    // then that the run would start.
    match begin {
        Begin::Started(t) => run.ts_start = t,
        Begin::Resumed(resume) => run.ts_start = resume.ts_start,
        Begin::Fresh => match events
            .write(Status::Starting, Value::Null, Mark::Entry)
            .await
        {
            Ok(t) => run.ts_start = t,
            Err(e) => {
                tracing::error!("{prefix}: cannot record the start: {e}");
                return lost(&e).unwrap_or(End::Retry);
            }
        },
    }
    if resume.is_none() {
        tracing::info!(event_type = "job", "{prefix}: Starting");
    }

    // Limits.
    if let Some(v) = run
        .job
        .field("max_run_delay")
        .filter(|v| !v.is_null() && resume.is_none())
    {
        // Compared in seconds, never made a `Duration`: any number is a
        // valid limit, however large.
        let Ok(limit) = units::duration_value(v) else {
            return reject(events, &format!("Bad max_run_delay: {}", units::show(v))).await;
        };
        let delay = (run.ts_start - run.ts_dispatch).num_seconds() as f64;
        if delay > limit {
            return reject(
                events,
                &format!("dispatch is more than {} old", units::show(v)),
            )
            .await;
        }
    }
    let settings = &services.settings;
    let max_limit = settings.iteration_max_limit;
    let limit = match run.job.field("iteration_limit") {
        None | Some(Value::Null) => 1,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(n) => n,
            None => {
                return reject(events, &format!("Bad iteration_limit: {}", units::show(v))).await;
            }
        },
    };
    if limit > max_limit {
        return reject(events, &format!("iteration_limit must be <= {max_limit}")).await;
    }
    if limit < 1 {
        return reject(events, "iteration_limit must be >= 1").await;
    }
    let delay = match run.job.field("iteration_delay") {
        None | Some(Value::Null) => Duration::ZERO,
        Some(v) => match units::duration_value(v).map(|d| (d, units::to_duration(d))) {
            Ok((d, Ok(delay))) if d >= 0.0 => delay,
            _ => return reject(events, &format!("Bad iteration_delay: {}", units::show(v))).await,
        },
    };
    if delay > settings.iteration_max_delay.value {
        let text = &settings.iteration_max_delay.text;
        return reject(events, &format!("iteration_delay must be <= {text}")).await;
    }

    // A planned retry that came back before it is due (a copy of its
    // message, or a visibility change that failed) goes back to wait.
    if let Some(resume) = &resume {
        let due = resume.retried_at + chrono::Duration::from_std(delay).unwrap_or_default();
        let early = (due - timestamp::now_local()).to_std().unwrap_or_default();
        if !early.is_zero() {
            tracing::info!(
                "{prefix}: iteration {} is due in {early:?}",
                resume.iteration
            );
            return End::Later(early.max(events.release_lease().await));
        }
        tracing::info!(
            event_type = "job",
            "{prefix}: Resuming at iteration {}",
            resume.iteration
        );
    }

    complete_lava_globals(&mut run);

    // State expansion.
    let mut expanded = run.job.state().clone();
    for (state_id, value) in expanded.iter_mut() {
        let (tables, kms) = (services.tables.as_ref(), services.kms.as_ref());
        match state::read(tables, kms, &services.realm_name, state_id).await {
            Ok(Some(current)) => *value = current,
            Ok(None) => {}
            Err(e) => return fail_early(events, Value::String(format!("State: {e}"))).await,
        }
    }
    run.state = expanded;

    // event_log.
    if let Some(event_log) = run
        .job
        .field("event_log")
        .filter(|_| resume.is_none())
        .cloned()
    {
        let ctx = run.context(services);
        let info = match services
            .renderer
            .render_json_text_async(&event_log, &ctx)
            .await
        {
            Ok(v) => v,
            Err(e) => Value::String(format!("Error: Bad event_log: {e}")),
        };
        if let Err(e) = events.write(Status::Logging, info, Mark::Entry).await {
            tracing::error!("{prefix}: cannot record event_log: {e}");
            return lost(&e).unwrap_or(End::Retry);
        }
    }

    // Dynamic enable: the rendered text, trimmed and lower-cased, must be
    // "true"; the `skipped` info quotes it that way, as the original does.
    if let (Enabled::Template(template), None) = (run.job.enabled(), &resume) {
        let rendered = match services
            .renderer
            .render_str_async(&template, &run.context(services))
            .await
        {
            Ok(r) => r.trim().to_lowercase(),
            Err(e) => return reject(events, &format!("Bad enabled: {e}")).await,
        };
        if rendered != "true" {
            let text = format!("Job not enabled (enabled=\"{rendered}\")");
            return final_event(events, Status::Skipped, Value::String(text)).await;
        }
    }

    let type_name = run.job.job_type().to_string();
    let job_type = match registry::lookup(&type_name) {
        Lookup::Known(t) => t,
        Lookup::NotYet => {
            let text = format!("{type_name}: job type not supported by this worker yet");
            return fail_early(events, Value::String(text)).await;
        }
        Lookup::Unknown => {
            let text = format!("{type_name}: Unknown job type");
            return fail_early(events, Value::String(text)).await;
        }
    };
    // A run resumed past a limit lowered meanwhile still has its attempt.
    let first = resume.map_or(1, |r| r.iteration);
    let limit = limit.max(first);
    if !run.cleanup {
        // An in-process child: its parent's directory, kept.
        return attempts::run(w, job_type, &mut run, events, cancel, first..=limit, delay).await;
    }
    match workdir::create_run_dir(&run.job_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return reject(
                events,
                "Job temp dir already exists - possible dispatch overlap",
            )
            .await;
        }
        Err(e) => {
            return fail_early(events, Value::String(format!("Cannot create job dir: {e}"))).await;
        }
    }
    let end = attempts::run(w, job_type, &mut run, events, cancel, first..=limit, delay).await;
    if let Err(e) = workdir::remove_tree(&run.job_dir).await {
        tracing::warn!("cannot remove {}: {e}", run.job_dir.display());
    }
    end
}

/// `globals.lava` defaults for a stand-alone run: the run is its own
/// master and parent unless the dispatch said otherwise.
fn complete_lava_globals(run: &mut Run) {
    let job_id = run.job_id().to_string();
    let start = timestamp::isoformat(&run.ts_start);
    let ustart = timestamp::utc_isoformat(&run.ts_start);
    let lava = run
        .globals
        .entry("lava")
        .or_insert_with(|| Value::Object(Map::new()));
    if !lava.is_object() {
        *lava = Value::Object(Map::new());
    }
    if let Value::Object(lava) = lava {
        for (key, value) in [
            ("master_job_id", &job_id),
            ("parent_job_id", &job_id),
            ("master_start", &start),
            ("parent_start", &start),
            ("master_ustart", &ustart),
            ("parent_ustart", &ustart),
        ] {
            lava.entry(key)
                .or_insert_with(|| Value::String(value.clone()));
        }
    }
}
