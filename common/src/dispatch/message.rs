//! The dispatch message: the JSON body on `lava-<realm>-<worker>`, written
//! key for key as the original writes it and read as strictly as the
//! original worker reads it.

use std::io;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{run_id, timestamp};

/// A dispatch message. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchMessage {
    /// Realm of the receiving worker.
    pub realm: String,
    /// Worker fleet that must run it.
    pub worker: String,
    /// The job to run.
    pub job_id: String,
    /// The run's UUID v4, lower-case, hyphenated.
    pub run_id: String,
    /// Dispatch time, ISO 8601 with offset.
    pub ts_dispatch: String,
    /// Parameters merged over the job's; omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Globals merged over the job's; omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<Map<String, Value>>,
}

/// Why a message body is not a dispatch message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not a JSON object, or a field of the wrong type.
    #[error("Malformed dispatch message: {0}")]
    Malformed(String),
    /// `ts_dispatch` is not a date-time.
    #[error("Bad timestamp in dispatch message: {0}")]
    BadTimestamp(String),
}

const REQUIRED: &[&str] = &["realm", "worker", "job_id", "run_id", "ts_dispatch"];
const OPTIONAL: &[&str] = &["parameters", "globals"];

impl DispatchMessage {
    /// A new message for a run dispatched now, with a fresh run id.
    pub fn new(
        realm: &str,
        worker: &str,
        job_id: &str,
        parameters: Map<String, Value>,
        globals: Map<String, Value>,
    ) -> Self {
        Self {
            realm: realm.into(),
            worker: worker.into(),
            job_id: job_id.into(),
            run_id: run_id::fresh(),
            ts_dispatch: timestamp::isoformat(&timestamp::now_local()),
            parameters: Some(parameters).filter(|m| !m.is_empty()),
            globals: Some(globals).filter(|m| !m.is_empty()),
        }
    }

    /// The body as the original writes it: keys in wire order, Python's
    /// default separators (`, ` and `: `) and ASCII-only escapes.
    pub fn to_body(&self) -> String {
        python_json(self)
    }

    /// Reads a body with the worker's checks: a JSON object, exactly the
    /// known keys, string fields, map `parameters`/`globals`, a readable
    /// `ts_dispatch`. Realm, worker and run id are checked by the caller.
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(MessageError::Malformed("not a JSON object".into()));
        };
        let mut missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| !map.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(MessageError::Malformed(format!(
                "Missing keys: {}",
                missing.join(", ")
            )));
        }
        let mut unexpected: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !REQUIRED.contains(k) && !OPTIONAL.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(MessageError::Malformed(format!(
                "Unexpected keys: {}",
                unexpected.join(", ")
            )));
        }
        let msg: Self = serde_json::from_value(Value::Object(map))
            .map_err(|e| MessageError::Malformed(e.to_string()))?;
        if msg.timestamp().is_none() {
            return Err(MessageError::BadTimestamp(msg.ts_dispatch));
        }
        Ok(msg)
    }

    /// `ts_dispatch` read leniently.
    pub fn timestamp(&self) -> Option<DateTime<FixedOffset>> {
        timestamp::parse_lenient(&self.ts_dispatch)
    }
}

/// Serialises like Python's `json.dumps` with default arguments.
pub fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Writing to a Vec cannot fail, and our types serialise infallibly.
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// `json.dumps` defaults: `, ` and `: ` separators, non-ASCII as `\uXXXX`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_matches_python_layout() {
        let msg = DispatchMessage {
            realm: "prod".into(),
            worker: "core".into(),
            job_id: "etl/load-sales".into(),
            run_id: "0f6c4d7e-5a0b-4a53-9a0e-1f7d2c9b8e11".into(),
            ts_dispatch: "2024-05-01T10:00:00+10:00".into(),
            parameters: json!({"timeout": "20m", "vars": {"region": "north"}})
                .as_object()
                .cloned(),
            globals: json!({"country": "Ecuador", "café": "naïve ☕ 𝄞"})
                .as_object()
                .cloned(),
        };
        assert_eq!(
            msg.to_body(),
            r#"{"realm": "prod", "worker": "core", "job_id": "etl/load-sales", "run_id": "0f6c4d7e-5a0b-4a53-9a0e-1f7d2c9b8e11", "ts_dispatch": "2024-05-01T10:00:00+10:00", "parameters": {"timeout": "20m", "vars": {"region": "north"}}, "globals": {"country": "Ecuador", "caf\u00e9": "na\u00efve \u2615 \ud834\udd1e"}}"#
        );
        assert_eq!(DispatchMessage::parse(&msg.to_body()), Ok(msg));
    }

    #[test]
    fn empty_maps_are_omitted_and_run_ids_are_v4() {
        let msg = DispatchMessage::new("r", "w", "j", Map::new(), Map::new());
        let body = msg.to_body();
        assert!(
            !body.contains("parameters") && !body.contains("globals"),
            "{body}"
        );
        let id = uuid::Uuid::parse_str(&msg.run_id).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(msg.run_id, msg.run_id.to_lowercase());
    }

    #[test]
    fn parse_is_strict() {
        let ok = r#"{"realm": "r", "worker": "w", "job_id": "j", "run_id": "x", "ts_dispatch": "2024-05-01T10:00:00+10:00"}"#;
        assert!(DispatchMessage::parse(ok).is_ok());
        let cases = [
            ("[]", "Malformed dispatch message: not a JSON object"),
            (
                "{",
                "Malformed dispatch message: EOF while parsing an object at line 1 column 1",
            ),
            (
                r#"{"realm": "r"}"#,
                "Malformed dispatch message: Missing keys: job_id, run_id, ts_dispatch, worker",
            ),
            (
                r#"{"realm": "r", "worker": "w", "job_id": "j", "run_id": "x", "ts_dispatch": "2024-05-01", "x-trace": 1}"#,
                "Malformed dispatch message: Unexpected keys: x-trace",
            ),
            (
                r#"{"realm": "r", "worker": "w", "job_id": "j", "run_id": "x", "ts_dispatch": "soon"}"#,
                "Bad timestamp in dispatch message: soon",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                DispatchMessage::parse(body)
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some(want),
                "{body}"
            );
        }
        let bad_params = r#"{"realm": "r", "worker": "w", "job_id": "j", "run_id": "x", "ts_dispatch": "2024-05-01", "parameters": [1]}"#;
        assert!(DispatchMessage::parse(bad_params).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(body in ".{0,200}") {
            let _ = DispatchMessage::parse(&body);
        }
    }
}
