//! The size of a run's events item and the shrinking of an entry that would
//! take it past the limit. DynamoDB refuses an item
//! over 400 KB; the worker keeps each events item under [`ITEM_LIMIT`] by
//! measuring what it writes. Sizes are JSON lengths, which are never below
//! DynamoDB's own count for the same value (names and strings count their
//! bytes there too; JSON adds quotes and separators), so the estimate errs
//! on the safe side.

use serde_json::{Map, Value};

/// The most an events item may hold, by this module's measure.
pub const ITEM_LIMIT: usize = 350 * 1000;

/// Room kept for the item's other attributes (keys, status, times, worker,
/// lease): they are rewritten by every event, not accumulated.
pub const OTHER_ATTRIBUTES: usize = 4 * 1024;

/// Keys the shrunk `info` carries besides what is kept of the original.
const TRUNCATED: &str = "truncated";
const RECORD: &str = "record";
const EXCERPT: &str = "excerpt";

/// A cut string keeps at least this many bytes, or the field goes.
const MIN_KEPT: usize = 64;

/// The JSON length of a value.
pub fn json_size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// The JSON length of an object.
pub fn map_size(map: &Map<String, Value>) -> usize {
    serde_json::to_vec(map).map_or(0, |v| v.len())
}

/// The room left for an entry in an item whose `log` already takes
/// `log_bytes`.
pub fn room_for_entry(log_bytes: usize) -> usize {
    ITEM_LIMIT.saturating_sub(OTHER_ATTRIBUTES + log_bytes)
}

/// `info` cut down to at most `budget` bytes: an object keeps its fields
/// and loses or cuts the largest ones first (inside nested objects too);
/// anything else becomes an object with an `excerpt` of it. The result says
/// `"truncated": true` and, when the full entry was stored, names it in
/// `record`. When even that does not fit, only those two remain (the entry
/// is still written).
pub fn shrink(info: &Value, budget: usize, record: Option<&str>) -> Value {
    let mut out = match info {
        Value::Object(map) => map.clone(),
        Value::String(text) => Map::from_iter([(EXCERPT.to_string(), Value::String(text.clone()))]),
        other => Map::from_iter([(EXCERPT.to_string(), Value::String(other.to_string()))]),
    };
    out.insert(TRUNCATED.into(), Value::Bool(true));
    match record {
        Some(url) => out.insert(RECORD.into(), Value::String(url.to_string())),
        None => out.remove(RECORD),
    };
    fit(&mut out, budget, &[TRUNCATED, RECORD]);
    Value::Object(out)
}

/// Cuts or drops the largest fields of `map` (never those in `keep`) until
/// its JSON takes at most `budget` bytes or nothing else is left.
fn fit(map: &mut Map<String, Value>, budget: usize, keep: &[&str]) {
    loop {
        let size = map_size(map);
        if size <= budget {
            return;
        }
        let excess = size - budget;
        let largest = map
            .iter()
            .filter(|(k, _)| !keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), json_size(v)))
            .max_by_key(|(_, size)| *size);
        let Some((key, field_size)) = largest else {
            return;
        };
        let target = field_size.saturating_sub(excess);
        let smaller = match map.get(&key) {
            Some(Value::String(text)) => {
                cut_to(text, text.len().saturating_sub(excess + 8)).map(Value::String)
            }
            Some(Value::Object(inner)) if target >= MIN_KEPT => {
                let mut inner = inner.clone();
                fit(&mut inner, target, &[]);
                let fits = map_size(&inner) <= target;
                fits.then_some(Value::Object(inner))
            }
            _ => None,
        };
        match smaller {
            Some(value) => map.insert(key, value),
            None => map.remove(&key),
        };
    }
}

/// The first `keep` bytes of `text` (on a character boundary) and an
/// ellipsis; `None` when too little would be left to be of use.
fn cut_to(text: &str, keep: usize) -> Option<String> {
    if keep < MIN_KEPT {
        return None;
    }
    let mut end = keep.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn small_info_is_only_marked() {
        let info = json!({"exit_status": 3, "error": "boom"});
        let out = shrink(&info, 1000, Some("s3://b/x/event-2.json"));
        assert_eq!(
            out,
            json!({"exit_status": 3, "error": "boom", "truncated": true,
                   "record": "s3://b/x/event-2.json"})
        );
    }

    #[test]
    fn the_largest_field_is_cut_first() {
        let info = json!({"exit_status": 3, "error": "e".repeat(500), "stderr": "x".repeat(5000)});
        let out = shrink(&info, 1000, None);
        assert!(json_size(&out) <= 1000, "{}", json_size(&out));
        assert_eq!(out["error"], json!("e".repeat(500)));
        assert_eq!(out["exit_status"], json!(3));
        assert_eq!(out["truncated"], json!(true));
        let stderr = out["stderr"].as_str().unwrap_or_default();
        assert!(
            stderr.starts_with("xxx") && stderr.ends_with('…'),
            "{stderr}"
        );
        assert!(out.get("record").is_none());
    }

    #[test]
    fn nested_objects_are_cut_inside() {
        let info = json!({"error": "Exit status 3",
                          "error_data": {"exit_status": 3, "stderr": "x".repeat(9000)}});
        let out = shrink(&info, 2000, Some("s3://b/x/event-4.json"));
        assert!(json_size(&out) <= 2000, "{}", json_size(&out));
        assert_eq!(out["error"], json!("Exit status 3"));
        assert_eq!(out["error_data"]["exit_status"], json!(3));
        let stderr = out["error_data"]["stderr"].as_str().unwrap_or_default();
        assert!(stderr.len() > 1500 && stderr.ends_with('…'), "{stderr}");
    }

    #[test]
    fn fields_too_large_to_cut_go() {
        let info = json!({"exit_status": 0, "diff": vec!["line\n"; 2000], "note": "kept"});
        let out = shrink(&info, 300, Some("s3://b/x/event-1.json"));
        assert_eq!(
            out,
            json!({"exit_status": 0, "note": "kept", "truncated": true,
                   "record": "s3://b/x/event-1.json"})
        );
    }

    #[test]
    fn text_becomes_an_excerpt() {
        let out = shrink(&json!("é".repeat(10_000)), 2000, None);
        assert!(json_size(&out) <= 2000);
        let excerpt = out["excerpt"].as_str().unwrap_or_default();
        assert!(excerpt.starts_with("éé") && excerpt.ends_with('…'));
        let out = shrink(&json!([1, 2, 3]), 2000, None);
        assert_eq!(out, json!({"excerpt": "[1,2,3]", "truncated": true}));
    }

    #[test]
    fn nothing_fits_leaves_the_markers() {
        let info = json!({"stderr": "x".repeat(5000)});
        let out = shrink(&info, 10, Some("s3://b/r/event-4.json"));
        assert_eq!(
            out,
            json!({"truncated": true, "record": "s3://b/r/event-4.json"})
        );
    }

    #[test]
    fn json_sizes_and_room() {
        assert_eq!(json_size(&json!({"a": "bc"})), 10);
        assert_eq!(room_for_entry(0), ITEM_LIMIT - OTHER_ATTRIBUTES);
        assert_eq!(room_for_entry(ITEM_LIMIT), 0);
    }
}
