//! Bad input for the crontab builder (issue #6 §6): jobs, schedules,
//! arguments and env of any content give a block or a clear error, never a
//! panic, and the block never holds a line that cron would split or
//! misread (a raw newline or other control character, a bare `%`).

#![allow(missing_docs)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lava_dispatcher::crontab::render::{END, START};
use lava_dispatcher::crontab::{Options, build};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Text that likes to break crontab lines.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z0-9/_.-]{1,10}",
        1 => ".{0,12}",
        2 => "[a-z %\\\\'\"$`;&|*\n\r\t\u{0}\u{7f}\u{85}\u{2028}-]{0,12}",
    ]
}

/// Mostly good values, sometimes anything.
fn mostly(good: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![4 => Just(good.to_string()), 1 => nasty_text()]
}

fn schedule_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("* * * * *".to_string()),
        3 => Just("0-59/15 * * * *".to_string()),
        3 => Just("@daily".to_string()),
        3 => Just("30 2 * * mon-fri".to_string()),
        1 => "[0-9*/,@a-z -]{0,16}",
        1 => "[0-9* \n%]{0,12}",
        1 => nasty_text(),
    ]
}

fn schedule() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        schedule_text().prop_map(Value::String),
        proptest::collection::vec(schedule_text().prop_map(Value::String), 0..3)
            .prop_map(Value::Array),
        (schedule_text(), nasty_text(), nasty_text()).prop_map(|(crontab, from, to)| {
            serde_json::json!([{"crontab": crontab, "from": from, "to": to}])
        }),
        any::<i64>().prop_map(Value::from),
        Just(serde_json::json!({"x": 1})),
    ]
}

fn job() -> impl Strategy<Value = Map<String, Value>> {
    (
        proptest::option::weighted(
            0.95,
            prop_oneof![3 => "[a-z0-9/_.%-]{1,12}", 1 => nasty_text()],
        ),
        proptest::option::weighted(0.95, mostly("core")),
        schedule(),
        any::<bool>(),
    )
        .prop_map(|(job_id, worker, schedule, numeric_id)| {
            let mut item = Map::new();
            match (job_id, numeric_id) {
                (Some(id), false) => {
                    item.insert("job_id".into(), Value::String(id));
                }
                (Some(_), true) => {
                    item.insert("job_id".into(), Value::from(7));
                }
                (None, _) => {}
            }
            if let Some(w) = worker {
                item.insert("worker".into(), Value::String(w));
            }
            item.insert("schedule".into(), schedule);
            item
        })
}

fn options() -> impl Strategy<Value = Options> {
    (
        prop_oneof![4 => Just("prod".to_string()), 1 => "[A-Za-z0-9_.-]{0,8}"],
        mostly("/usr/bin/lava-dispatch"),
        proptest::collection::btree_map(
            prop_oneof![4 => "[A-Z_]{1,8}", 1 => nasty_text()],
            prop_oneof![4 => "[a-z0-9/:_ %-]{0,10}", 1 => nasty_text()],
            0..3,
        ),
        proptest::collection::vec(
            prop_oneof![
                Just("--check-dispatch".to_string()),
                Just("--level".to_string()),
                nasty_text()
            ],
            0..3,
        ),
        mostly("aws"),
    )
        .prop_map(|(realm, dispatcher_path, env, args, backend)| Options {
            realm,
            dispatcher_path,
            env: env.into_iter().collect::<BTreeMap<_, _>>(),
            args,
            backend,
            now: DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            force: false,
        })
}

/// True when every `%` of a line is written `\%`.
fn percents_escaped(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b != b'%' || (i > 0 && bytes[i - 1] == b'\\'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn crontab_blocks_are_always_well_formed(
        jobs in proptest::collection::vec(job(), 0..6),
        options in options(),
    ) {
        match build(&jobs, &options) {
            Ok(built) => {
                let block = &built.block;
                prop_assert!(block.ends_with('\n'), "{block:?}");
                prop_assert!(
                    !block.chars().any(|c| c != '\n' && c.is_control()),
                    "control character in {block:?}"
                );
                let lines: Vec<&str> = block.trim_end_matches('\n').split('\n').collect();
                prop_assert_eq!(lines.first().copied(), Some(START));
                prop_assert_eq!(lines.last().copied(), Some(END));
                let body = &lines[1..lines.len() - 1];
                let env: Vec<&&str> = body
                    .iter()
                    .take_while(|l| {
                        l.split_once('=').is_some_and(|(name, _)| {
                            !name.is_empty()
                                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        }) && !l.contains(" >/dev/null")
                    })
                    .collect();
                let schedule_lines = &body[env.len()..];
                prop_assert_eq!(schedule_lines.len(), built.lines, "{}", block);
                prop_assert!(env.iter().any(|l| l.starts_with("LAVA_REALM=")), "{block}");
                for line in schedule_lines {
                    prop_assert!(line.ends_with(" >/dev/null"), "{line:?}");
                    prop_assert!(line.contains(" --check-dispatch "), "{line:?}");
                    prop_assert_eq!(line.matches(" --check-dispatch ").count(), 1, "{}", line);
                    prop_assert!(percents_escaped(line), "bare % in {line:?}");
                }
                for skipped in &built.skipped {
                    prop_assert!(!skipped.reason.is_empty());
                    prop_assert!(!skipped.to_string().is_empty());
                }
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }
}
