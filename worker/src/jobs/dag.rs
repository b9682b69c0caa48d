//! The `dag` job type: child jobs in-process under the dag's run id, each
//! started as soon as its own predecessors are done (at most `workers` at
//! once). The original waits for a whole ready batch before starting the
//! next; this keeps its ordering guarantees with more parallelism. A child
//! matching `can_fail` that fails still unblocks its dependents; any other
//! failure stops the scheduling, and the children already running finish
//! before the dag fails.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::orchestration::{CanFail, ChildResults, int_param, job_prefix};
use super::{ChildEnd, Failure, JobContext, JobType, Outcome, ParamKeys};

/// `dag`.
pub(super) struct Dag;

#[async_trait]
impl JobType for Dag {
    fn name(&self) -> &'static str {
        "dag"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &["job_prefix", "workers", "can_fail"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        match run(job).await {
            Ok(Some(result)) => Outcome::Success(result),
            Ok(None) => Outcome::Interrupted,
            Err(failure) => Outcome::Failed(failure),
        }
    }
}

/// The graph: nodes in the order they are first named, and for each its
/// predecessors and successors.
#[derive(Debug, Default)]
pub(super) struct Graph {
    nodes: Vec<String>,
    index: HashMap<String, usize>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
}

impl Graph {
    /// From the payload map (job → predecessor text, list, null or `[]`).
    pub(super) fn from_payload(payload: &Map<String, Value>, prefix: &str) -> Self {
        let mut g = Graph::default();
        for (job, deps) in payload {
            let node = g.node(&format!("{prefix}{job}"));
            let deps: Vec<String> = match deps {
                Value::Null | Value::Bool(false) => Vec::new(),
                Value::String(s) if s.is_empty() => Vec::new(),
                Value::String(s) => vec![s.clone()],
                Value::Array(list) => list
                    .iter()
                    .map(|d| match d {
                        Value::String(s) => s.clone(),
                        other => lava_common::units::show(other),
                    })
                    .collect(),
                other => vec![lava_common::units::show(other)],
            };
            for dep in deps {
                let pred = g.node(&format!("{prefix}{dep}"));
                if !g.preds[node].contains(&pred) {
                    g.preds[node].push(pred);
                    g.succs[pred].push(node);
                }
            }
        }
        g
    }

    fn node(&mut self, id: &str) -> usize {
        if let Some(&n) = self.index.get(id) {
            return n;
        }
        let n = self.nodes.len();
        self.nodes.push(id.to_string());
        self.index.insert(id.to_string(), n);
        self.preds.push(Vec::new());
        self.succs.push(Vec::new());
        n
    }

    /// A cycle, named as Python's `graphlib` names it (a depth-first walk
    /// along successors in the order nodes were first named; the first node
    /// repeated at the end).
    pub(super) fn cycle(&self) -> Option<Vec<String>> {
        let mut seen = HashSet::new();
        for start in 0..self.nodes.len() {
            if seen.contains(&start) {
                continue;
            }
            let mut stack: Vec<usize> = Vec::new();
            let mut its: Vec<usize> = Vec::new();
            let mut on_stack: HashMap<usize, usize> = HashMap::new();
            let mut node = start;
            loop {
                if seen.contains(&node) {
                    if let Some(&at) = on_stack.get(&node) {
                        let mut cycle: Vec<String> =
                            stack[at..].iter().map(|&n| self.nodes[n].clone()).collect();
                        cycle.push(self.nodes[node].clone());
                        return Some(cycle);
                    }
                } else {
                    seen.insert(node);
                    its.push(0);
                    on_stack.insert(node, stack.len());
                    stack.push(node);
                }
                let mut next = None;
                while let Some(&top) = stack.last() {
                    let it = its.last_mut().expect("one iterator per stack entry");
                    if let Some(&s) = self.succs[top].get(*it) {
                        *it += 1;
                        next = Some(s);
                        break;
                    }
                    on_stack.remove(&top);
                    stack.pop();
                    its.pop();
                }
                match next {
                    Some(n) => node = n,
                    None => break,
                }
            }
        }
        None
    }
}

/// How one child of the dag ended.
enum Ended {
    Child(ChildEnd),
    /// It could not be read (or is another worker's).
    Unreadable(String),
}

type Running<'a> = Pin<Box<dyn Future<Output = (usize, Ended)> + Send + 'a>>;

/// The result, or `None` when a child was interrupted.
async fn run(job: &JobContext<'_>) -> Result<Option<Value>, Failure> {
    let Value::Object(payload) = job.run.job.payload() else {
        return Err(Failure::new("payload must be a map"));
    };
    let params = job.params();
    let settings = &job.services.settings;
    let mut workers = int_param(params, "workers")?.unwrap_or(settings.dag_workers);
    let max_workers = settings.dag_max_workers;
    if workers > max_workers {
        tracing::warn!(
            event_type = "job",
            "Too many DAG workers ({workers}): limiting to {max_workers}"
        );
        workers = max_workers;
    }
    if workers < 1 {
        return Err(Failure::new("max_workers must be greater than 0"));
    }
    let workers = usize::try_from(workers).unwrap_or(usize::MAX);
    let graph = Graph::from_payload(payload, &job_prefix(params));
    if let Some(cycle) = graph.cycle() {
        return Err(Failure::new(format!(
            "Jobs are in a cycle: {}",
            cycle.join(", ")
        )));
    }
    let can_fail = CanFail::from_params(params)?;

    let mut waiting_on: Vec<usize> = graph.preds.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..graph.nodes.len())
        .filter(|&n| waiting_on[n] == 0)
        .collect();
    let mut running: Vec<Running<'_>> = Vec::new();
    let mut results = ChildResults::default();
    let mut failure: Option<Failure> = None;
    let mut interrupted = false;
    loop {
        while failure.is_none() && !interrupted && running.len() < workers {
            let Some(n) = ready.pop_front() else { break };
            running.push(Box::pin(run_child(job, n, graph.nodes[n].clone())));
        }
        if running.is_empty() {
            break;
        }
        let (n, ended) = next_of(&mut running).await;
        let child_id = graph.nodes[n].clone();
        let done = match ended {
            Ended::Child(ChildEnd::Done) => {
                tracing::info!(event_type = "job", "Job {child_id} done");
                results.jobs.push(child_id);
                true
            }
            Ended::Child(ChildEnd::Interrupted) => {
                interrupted = true;
                false
            }
            Ended::Child(ChildEnd::Failed(e)) => {
                results.failed_jobs.push(child_id.clone());
                if can_fail.matches(&child_id) {
                    tracing::warn!(event_type = "job", "Job {child_id}: {e} (permitted to fail)");
                    true
                } else {
                    if failure.is_none() {
                        let text = format!("Job {child_id}: {e}");
                        failure = Some(results.failure(text.clone(), text));
                    }
                    false
                }
            }
            Ended::Unreadable(e) => {
                results.failed_jobs.push(child_id.clone());
                if failure.is_none() {
                    failure = Some(
                        results.failure(format!("{child_id}: {e}"), format!("Job {child_id} failed: {e}")),
                    );
                }
                false
            }
        };
        if done {
            for &s in &graph.succs[n] {
                waiting_on[s] -= 1;
                if waiting_on[s] == 0 {
                    ready.push_back(s);
                }
            }
        }
    }
    if interrupted {
        return Ok(None);
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(Some(results.value())),
    }
}

/// One child: skipped when a resumed run completed it before, else read
/// and run.
async fn run_child(job: &JobContext<'_>, n: usize, child_id: String) -> (usize, Ended) {
    if job.children.completed(&child_id).await {
        tracing::info!(event_type = "job", "{child_id}: completed earlier in this run - skipped");
        return (n, Ended::Child(ChildEnd::Done));
    }
    tracing::info!(event_type = "job", "Starting child job {child_id}");
    match job.children.read(&child_id).await {
        Ok(child) => (
            n,
            Ended::Child(job.children.run(child, Map::new(), None).await),
        ),
        Err(e) => (n, Ended::Unreadable(e)),
    }
}

/// Waits for the first of the running children to end, and removes it.
async fn next_of<T>(running: &mut Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> T {
    std::future::poll_fn(|cx| {
        for i in 0..running.len() {
            if let Poll::Ready(value) = running[i].as_mut().poll(cx) {
                drop(running.swap_remove(i));
                return Poll::Ready(value);
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph(v: Value) -> Graph {
        Graph::from_payload(v.as_object().expect("map"), "")
    }

    #[test]
    fn cycles_are_named_as_graphlib_names_them() {
        assert_eq!(graph(json!({"a": null, "b": "a", "c": ["a", "b"]})).cycle(), None);
        // graphlib.TopologicalSorter({'a': 'b', 'b': 'c', 'c': 'a'}) names a, c, b, a.
        assert_eq!(
            graph(json!({"a": "b", "b": "c", "c": "a"})).cycle(),
            Some(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        assert_eq!(
            graph(json!({"x": null, "a": "a"})).cycle(),
            Some(vec!["a".into(), "a".into()])
        );
        assert_eq!(
            graph(json!({"p": ["q", "a"], "a": "b", "b": "a", "q": []})).cycle(),
            Some(vec!["a".into(), "b".into(), "a".into()])
        );
    }
}
