//! Bad input (issue #6 §6): the parsers lava applies to what comes off a
//! queue or out of a table never panic, and they fail with an error that
//! says what was wrong. These extend the per-module properties (random
//! text) with structured input: arbitrary JSON of the right shape.

#![allow(missing_docs)]

use lava_common::dispatch::dotted;
use lava_common::dispatch::{DispatchMessage, MessageError};
use lava_common::spec::{JOB_KEYS, JobSpec};
use lava_common::units;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        "[a-z{}% .=_-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A map with some of `keys` (each with any value) and a few other keys.
fn map_with(keys: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    (
        proptest::collection::vec(
            (proptest::sample::select(keys), any_json()),
            0..keys.len() + 2,
        ),
        proptest::collection::btree_map("[a-z_]{1,8}", any_json(), 0..3),
    )
        .prop_map(|(known, other)| {
            let mut map: Map<String, Value> = other.into_iter().collect();
            for (k, v) in known {
                map.insert(k.to_string(), v);
            }
            map
        })
}

const MESSAGE_KEYS: &[&str] = &[
    "realm",
    "worker",
    "job_id",
    "run_id",
    "ts_dispatch",
    "parameters",
    "globals",
];

fn message_error_is_clear(e: &MessageError) -> bool {
    let text = e.to_string();
    !text.trim().is_empty() && !text.contains("panicked")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any JSON object with the message's keys, any value types: a message
    /// or a clear error.
    #[test]
    fn dispatch_message_parser_handles_any_object(map in map_with(MESSAGE_KEYS)) {
        let body = Value::Object(map.clone()).to_string();
        match DispatchMessage::parse(&body) {
            Ok(msg) => {
                prop_assert!(MESSAGE_KEYS[..5].iter().all(|k| map.contains_key(*k)));
                prop_assert!(msg.timestamp().is_some());
            }
            Err(e) => prop_assert!(message_error_is_clear(&e), "{e}"),
        }
    }

    /// Any JSON at all (arrays, numbers, strings…) as a body.
    #[test]
    fn dispatch_message_parser_handles_any_json(value in any_json()) {
        if let Err(e) = DispatchMessage::parse(&value.to_string()) {
            prop_assert!(message_error_is_clear(&e), "{e}");
        }
    }

    /// A message lava writes is read back as written, whatever its parameters.
    #[test]
    fn dispatch_messages_round_trip(
        job_id in "[a-zA-Z0-9/_.-]{1,20}",
        params in proptest::collection::btree_map("[a-z]{1,6}", any_json(), 0..4),
        globals in proptest::collection::btree_map("[a-z]{1,6}", any_json(), 0..4),
    ) {
        let msg = DispatchMessage::new(
            "realm",
            "core",
            &job_id,
            params.into_iter().collect(),
            globals.into_iter().collect(),
        );
        let back = DispatchMessage::parse(&msg.to_body());
        prop_assert_eq!(back.as_ref().ok(), Some(&msg), "{:?}", back);
    }

    /// Any jobs-table item: a job or an error naming the problem.
    #[test]
    fn job_spec_from_any_item(map in map_with(JOB_KEYS)) {
        match JobSpec::from_item(map.clone()) {
            Ok(job) => {
                for key in ["job_id", "type", "worker", "payload"] {
                    prop_assert!(map.contains_key(key), "accepted without {key}");
                }
                // The accessors the worker uses never panic either.
                let _ = (job.job_id(), job.job_type(), job.worker(), job.owner(), job.payload());
                let _ = (job.enabled(), job.parameters(), job.globals(), job.state(), job.dispatcher());
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }

    /// A complete item whose fields have any type.
    #[test]
    fn job_spec_with_required_keys_of_any_type(
        fields in proptest::collection::vec(any_json(), 4),
        extra in map_with(JOB_KEYS),
    ) {
        let mut map = extra;
        for (key, value) in ["job_id", "type", "worker", "payload"].iter().zip(fields) {
            map.insert(key.to_string(), value);
        }
        let strings = ["job_id", "type", "worker"].iter().all(|k| map[*k].is_string());
        match JobSpec::from_item(map) {
            Ok(_) => prop_assert!(strings, "a non-string job_id, type or worker was accepted"),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(
                    text.starts_with("Bad job record: ") || text.starts_with("Reserved global: "),
                    "{text}"
                );
            }
        }
    }

    /// Durations, sizes and booleans from any table value.
    #[test]
    fn unit_values_from_any_json(value in any_json()) {
        if let Ok(d) = units::duration_value(&value) {
            prop_assert!(d.is_finite());
        } else if let Err(e) = units::duration_value(&value) {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Err(e) = units::size_value(&value) {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Err(e) = units::bool_value(&value) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Numbers with any unit-like suffix and padding.
    #[test]
    fn unit_text_with_any_suffix(
        n in -1e12f64..1e12,
        pad in "[ \t]{0,2}",
        unit in "[a-zA-Z]{0,3}",
    ) {
        let text = format!("{pad}{n}{pad}{unit}{pad}");
        if let Ok(d) = units::parse_duration(&text) {
            prop_assert!(d.is_finite());
            prop_assert!(["", "s", "m", "h", "d", "w"].contains(&unit.as_str()), "{text}");
        }
        if let Ok(bytes) = units::parse_size(&text) {
            prop_assert!(n >= -0.5 || bytes == 0, "{text} -> {bytes}");
        }
    }

    /// Sizes with a unit scale as documented.
    #[test]
    fn sizes_round_trip(n in 0u64..1_000_000, unit in 0usize..7) {
        let (suffix, scale) = [("B", 1), ("K", 1000), ("KB", 1000), ("M", 1_000_000), ("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30)][unit];
        prop_assert_eq!(units::parse_size(&format!("{n}{suffix}")), Ok(n * scale));
        prop_assert_eq!(units::parse_size(&format!(" {n} {suffix} ")), Ok(n * scale));
    }

    /// `-p`/`-g` options with any names and values: a map or a clear error,
    /// and every simple name lands where it says.
    #[test]
    fn dotted_names_build_maps(options in proptest::collection::vec("[a-c.=]{0,3}[=]?[a-c.=x ]{0,4}", 0..8)) {
        match dotted::build(&options) {
            Ok(map) => {
                // The last value of each name without dots is at the top.
                for option in &options {
                    let (name, _) = dotted::split_assignment(option).unwrap_or_default();
                    if !name.contains('.') {
                        let last = options
                            .iter()
                            .rev()
                            .filter_map(|o| dotted::split_assignment(o).ok())
                            .find(|(n, _)| *n == name)
                            .map(|(_, v)| v);
                        if let (Some(Value::String(found)), Some(last)) = (map.get(&name), last) {
                            prop_assert_eq!(found, &last);
                        }
                    }
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn structured_errors_name_the_problem() {
    let missing = DispatchMessage::parse(r#"{"realm": "r"}"#);
    assert!(
        missing.as_ref().is_err_and(|e| e
            .to_string()
            .contains("Missing keys: job_id, run_id, ts_dispatch, worker")),
        "{missing:?}"
    );
    let job = JobSpec::from_item(
        json!({"job_id": 7, "type": "cmd", "worker": "core", "payload": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    assert!(job.is_err_and(|e| e.to_string().contains("job_id")));
}
