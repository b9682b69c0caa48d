//! Post-job actions: one file each behind the [`Action`] trait, listed in one
//! [`registry`]. The list that runs is the job's `on_success`, `on_retry` or
//! `on_fail` if the job has the key, else the realm's; actions run in order
//! and the first error stops the list. An action sees its run through
//! [`RunTarget`], the worker's [`Services`] and the [`ActionClients`].

mod bound;
mod fields;
pub mod registry;

/// Declares the action modules and lists their actions in `ACTIONS`.
macro_rules! actions {
    ($($module:ident :: $action:ident),* $(,)?) => {
        $(mod $module;)*
        /// Every action this worker runs.
        static ACTIONS: &[&dyn Action] = &[$(&$module::$action),*];
    };
}

// The registry: the one list of the actions this worker runs. A new action
// is one file under `actions/` and one line here.
actions! {
    log::Log,
    dispatch::Dispatch,
    state::State,
    event::Event,
    sns::Sns,
    sqs::Sqs,
    email::Email,
    slack::Slack,
}

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};
use lava_common::render::Context;
use lava_common::spec::Item;
use lava_common::units;
use serde_json::{Map, Value};

use crate::clients::ActionClients;
use crate::services::Services;
pub use fields::ActionKeys;
use registry::Lookup;

/// Which list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionList {
    /// After `complete`.
    OnSuccess,
    /// After `retrying`.
    OnRetry,
    /// After the final `failed`.
    OnFail,
}

impl ActionList {
    /// The job and realm field that holds the list.
    pub fn key(self) -> &'static str {
        match self {
            ActionList::OnSuccess => "on_success",
            ActionList::OnRetry => "on_retry",
            ActionList::OnFail => "on_fail",
        }
    }
}

/// The run an action list belongs to, as actions see it (`Sync`, since an
/// action holds its context across the renders it awaits).
pub trait RunTarget: Send + Sync {
    /// The job id.
    fn job_id(&self) -> &str;
    /// The run id.
    fn run_id(&self) -> &str;
    /// The job's own item (for its action lists).
    fn job_item(&self) -> &Item;
    /// Time of the run's `starting` event.
    fn ts_start(&self) -> &DateTime<FixedOffset>;
    /// The run's globals; a `dispatch` action records itself as the parent
    /// in `globals.lava`, and later actions see that.
    fn globals_mut(&mut self) -> &mut Map<String, Value>;
    /// The run's base render context, from its current globals.
    fn context(&self, services: &Services) -> Context;
}

/// What one action works with.
pub struct ActionContext<'a> {
    /// The worker's services.
    pub services: &'a Services,
    /// The action clients.
    pub clients: &'a ActionClients,
    /// The run.
    pub run: &'a mut dyn RunTarget,
    /// The render context: the run's, with `result`.
    pub ctx: Context,
    /// The attempt's result (or failure info).
    pub result: &'a Value,
    /// The action's own fields.
    pub fields: &'a Map<String, Value>,
    /// Where the action stands: its list's key and its index there.
    pub place: (&'static str, usize),
}

/// One kind of action.
#[async_trait]
pub trait Action: Send + Sync {
    /// The action's name, as its `action` field gives it.
    fn name(&self) -> &'static str;

    /// The fields it requires and allows, checked before [`Action::run`].
    fn keys(&self) -> ActionKeys;

    /// Carries the action out; the error is the `action_failed` text's tail.
    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String>;
}

/// Runs the selected list with `result` in the render context. The error
/// text is the `action_failed` info: "<list> action: <action>: <error>".
pub async fn run_list(
    services: &Services,
    clients: &ActionClients,
    run: &mut dyn RunTarget,
    list: ActionList,
    result: &Value,
) -> Result<(), String> {
    let key = list.key();
    let actions = match run
        .job_item()
        .get(key)
        .or_else(|| services.realm.field(key))
    {
        None => return Ok(()),
        Some(Value::Array(actions)) => actions.clone(),
        Some(_) => return Err(format!("{key}: action must be a list")),
    };
    for (index, action) in actions.into_iter().enumerate() {
        let Value::Object(fields) = action else {
            return Err(format!("{key} action: Missing keys: action"));
        };
        let Some(kind) = fields.get("action").map(units::show) else {
            return Err(format!("{key} action: Missing keys: action"));
        };
        let outcome = match registry::lookup(&kind) {
            Lookup::Known(action) => {
                let ctx = run.context(services).result(result);
                let mut a = ActionContext {
                    services,
                    clients,
                    run: &mut *run,
                    ctx,
                    result,
                    fields: &fields,
                    place: (key, index),
                };
                match action.keys().check(&fields) {
                    Ok(()) => action.run(&mut a).await,
                    Err(e) => Err(e),
                }
            }
            Lookup::NotYet => Err("not supported by this worker yet".to_string()),
            Lookup::Unknown => Err("unknown action".to_string()),
        };
        outcome.map_err(|e| format!("{key} action: {kind}: {e}"))?;
    }
    Ok(())
}
