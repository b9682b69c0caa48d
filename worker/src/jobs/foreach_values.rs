//! The value generators of `foreach`: each turns the `foreach` parameter
//! map into the globals of each iteration (`range`, `inline`, `jsonl`,
//! `csv`, `s3list`), producing at most the number asked for. Field names
//! starting with `lava` (any case) are refused.

use serde_json::{Map, Value};

use super::{Failure, JobContext};
use lava_common::units;

/// The fields each generator type takes (`type` aside) and renders.
struct Fields {
    required: &'static [&'static str],
    optional: &'static [&'static str],
    rendered: &'static [&'static str],
}

fn fields(kind: &str) -> Option<Fields> {
    Some(match kind {
        "range" => Fields {
            required: &["stop"],
            optional: &["start", "step", "name"],
            rendered: &[],
        },
        "inline" => Fields {
            required: &["values"],
            optional: &[],
            rendered: &[],
        },
        "jsonl" | "csv" => Fields {
            required: &["filename"],
            optional: &[],
            rendered: &["filename"],
        },
        "query" => Fields {
            required: &["conn_id", "query"],
            optional: &[],
            rendered: &[],
        },
        "s3list" => Fields {
            required: &["bucket"],
            optional: &["glob", "prefix"],
            rendered: &["bucket", "prefix"],
        },
        _ => return None,
    })
}

const LAVA_NAMES: &str = "foreach field names may not start with \"lava\"";

fn check_names<'a>(mut names: impl Iterator<Item = &'a String>) -> Result<(), Failure> {
    if names.any(|k| k.to_lowercase().starts_with("lava")) {
        return Err(Failure::new(LAVA_NAMES));
    }
    Ok(())
}

/// Up to `max` iteration value maps from the generator `spec`; `jinja`
/// renders the generator's rendered fields with the run's context.
pub(super) async fn generate(
    job: &JobContext<'_>,
    spec: &Value,
    jinja: bool,
    max: usize,
) -> Result<Vec<Map<String, Value>>, Failure> {
    let Value::Object(spec) = spec else {
        return Err(Failure::new(format!(
            "Bad foreach: {}: must be a map",
            units::show(spec)
        )));
    };
    let kind = match spec.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => units::show(other),
        None => return Err(Failure::new("Missing keys: type")),
    };
    let Some(f) = fields(&kind) else {
        return Err(Failure::new(format!("No foreach handler for type {kind}")));
    };
    let mut missing: Vec<&str> = f
        .required
        .iter()
        .copied()
        .filter(|k| !spec.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(Failure::new(format!(
            "Missing keys: {}",
            missing.join(", ")
        )));
    }
    let mut unexpected: Vec<&str> = spec
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "type" && !f.required.contains(k) && !f.optional.contains(k))
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort_unstable();
        return Err(Failure::new(format!(
            "Unexpected keys: {}",
            unexpected.join(", ")
        )));
    }
    let mut spec = spec.clone();
    if jinja {
        for name in f.rendered {
            if let Some(Value::String(template)) = spec.get(*name) {
                let rendered = job
                    .services
                    .renderer
                    .render_str_async(template, &job.ctx)
                    .await
                    .map_err(|e| Failure::new(format!("foreach {name}: {e}")))?;
                spec.insert((*name).to_string(), Value::String(rendered));
            }
        }
    }
    match kind.as_str() {
        "range" => range(&spec, max),
        "inline" => inline(&spec, max),
        "jsonl" => {
            let (name, text) = read_file(job, &spec).await?;
            jsonl(&name, &text, max)
        }
        "csv" => {
            let (_, text) = read_file(job, &spec).await?;
            csv(&text, max)
        }
        "s3list" => s3list(job, &spec, max).await,
        _ => Err(Failure::new(
            "foreach query: needs the SQL job types, not supported by this worker yet",
        )),
    }
}

fn int_field(spec: &Map<String, Value>, name: &str, default: i64) -> Result<i64, Failure> {
    match spec.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| Failure::new(format!("Bad {name}: {}", units::show(v)))),
    }
}

fn range(spec: &Map<String, Value>, max: usize) -> Result<Vec<Map<String, Value>>, Failure> {
    let name = match spec.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(match v {
            Value::String(s) => s.clone(),
            other => units::show(other),
        }),
    };
    if let Some(name) = &name {
        check_names(std::iter::once(name))?;
    }
    let start = int_field(spec, "start", 0)?;
    let stop = int_field(spec, "stop", 0)?;
    let step = int_field(spec, "step", 1)?;
    if step == 0 {
        return Err(Failure::new("range() arg 3 must not be zero"));
    }
    let mut values = Vec::new();
    let mut n = start;
    while values.len() < max && ((step > 0 && n < stop) || (step < 0 && n > stop)) {
        let mut map = Map::new();
        if let Some(name) = &name {
            map.insert(name.clone(), Value::from(n));
        }
        values.push(map);
        n = match n.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(values)
}

fn inline(spec: &Map<String, Value>, max: usize) -> Result<Vec<Map<String, Value>>, Failure> {
    let bad = || Failure::new("values must be a sequence of objects");
    let Some(Value::Array(list)) = spec.get("values") else {
        return Err(bad());
    };
    let mut values = Vec::new();
    for v in list.iter().take(max) {
        let Value::Object(map) = v else {
            return Err(bad());
        };
        check_names(map.keys())?;
        values.push(map.clone());
    }
    Ok(values)
}

/// A generator's `filename`: a local file, or an `s3://` or `file://` URL.
async fn read_file(
    job: &JobContext<'_>,
    spec: &Map<String, Value>,
) -> Result<(String, String), Failure> {
    let name = match spec.get("filename") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => units::show(other),
        None => String::new(),
    };
    let bytes = if name.contains("://") {
        job.services
            .objects
            .get(&name)
            .await
            .map_err(|e| Failure::new(format!("{name}: {e}")))?
    } else {
        tokio::fs::read(&name)
            .await
            .map_err(|e| Failure::new(format!("{name}: {e}")))?
    };
    let text = String::from_utf8(bytes).map_err(|e| Failure::new(format!("{name}: {e}")))?;
    Ok((name, text))
}

fn jsonl(name: &str, text: &str, max: usize) -> Result<Vec<Map<String, Value>>, Failure> {
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if values.len() >= max {
            break;
        }
        let map = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Failure::new(format!(
                    "{name}: line {}: not a JSON object",
                    n + 1
                )));
            }
            Err(e) => return Err(Failure::new(format!("{name}: line {}: {e}", n + 1))),
        };
        check_names(map.keys())?;
        values.push(map);
    }
    Ok(values)
}

/// CSV rows as maps keyed by the header line; all values text (a short
/// row's missing fields are null, extra fields are dropped; blank lines are
/// skipped).
fn csv(text: &str, max: usize) -> Result<Vec<Map<String, Value>>, Failure> {
    let mut rows = csv_rows(text).into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    check_names(header.iter())?;
    let mut values = Vec::new();
    for row in rows.take(max) {
        let mut map = Map::new();
        for (i, name) in header.iter().enumerate() {
            map.insert(
                name.clone(),
                row.get(i).cloned().map_or(Value::Null, Value::String),
            );
        }
        values.push(map);
    }
    Ok(values)
}

/// Splits CSV text (comma, `"` quotes with `""` inside) into rows of fields.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut row_started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                row_started = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                row_started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if row_started || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                row_started = false;
            }
            other => {
                field.push(other);
                row_started = true;
            }
        }
    }
    if row_started || !field.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

async fn s3list(
    job: &JobContext<'_>,
    spec: &Map<String, Value>,
    max: usize,
) -> Result<Vec<Map<String, Value>>, Failure> {
    let text = |name: &str| match spec.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => units::show(other),
    };
    let bucket = text("bucket");
    let prefix = text("prefix");
    let globs = match spec.get("glob") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map_or_else(|| units::show(v), str::to_string))
            .collect(),
        Some(other) => vec![units::show(other)],
    };
    let globs = globs
        .iter()
        .map(|g| super::orchestration::glob_regex(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::new(format!("Bad glob: {e}")))?;
    let objects = job
        .services
        .objects
        .list_all(&bucket, &prefix)
        .await
        .map_err(|e| Failure::new(format!("s3list {bucket}/{prefix}: {e}")))?;
    let mut values = Vec::new();
    for o in objects {
        if values.len() >= max {
            break;
        }
        if !globs.is_empty() && !globs.iter().any(|g| g.is_match(&o.key)) {
            continue;
        }
        let mut obj = Map::new();
        obj.insert("Key".into(), Value::String(o.key));
        obj.insert(
            "LastModified".into(),
            o.last_modified.map_or(Value::Null, Value::String),
        );
        obj.insert("ETag".into(), o.etag.map_or(Value::Null, Value::String));
        obj.insert("Size".into(), Value::from(o.size));
        obj.insert(
            "StorageClass".into(),
            o.storage_class.map_or(Value::Null, Value::String),
        );
        obj.insert("Bucket".into(), Value::String(bucket.clone()));
        let mut map = Map::new();
        map.insert("s3obj".into(), Value::Object(obj));
        values.push(map);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn ranges_as_python() {
        let r = range(&spec(json!({"stop": 3, "name": "n"})), 10).expect("range");
        assert_eq!(
            r,
            vec![
                spec(json!({"n": 0})),
                spec(json!({"n": 1})),
                spec(json!({"n": 2}))
            ]
        );
        let r = range(&spec(json!({"start": "5", "stop": 0, "step": -2})), 10).expect("range");
        assert_eq!(r.len(), 3);
        assert_eq!(
            range(&spec(json!({"stop": 100})), 4).expect("range").len(),
            4
        );
        assert_eq!(
            range(&spec(json!({"stop": 3, "name": "LavaX"})), 10).map_err(|f| f.error),
            Err(LAVA_NAMES.into())
        );
    }

    #[test]
    fn csv_rows_and_lines() {
        let rows = csv("a,b\n1,\"x,\"\"y\"\"\"\r\n\n3\n", 10).expect("csv");
        assert_eq!(
            rows,
            vec![
                spec(json!({"a": "1", "b": "x,\"y\""})),
                spec(json!({"a": "3", "b": null}))
            ]
        );
        assert_eq!(
            csv("x,lava_y\n1,2\n", 10).map_err(|f| f.error),
            Err(LAVA_NAMES.into())
        );
        let lines = jsonl("f", "{\"a\": 1}\n{\"b\": 2}\n", 10).expect("jsonl");
        assert_eq!(lines.len(), 2);
        assert!(
            jsonl("f", "{\"a\": 1}\nnope\n", 10)
                .map_err(|f| f.error)
                .is_err_and(|e| e.starts_with("f: line 2: "))
        );
    }
}
