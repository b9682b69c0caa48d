//! Items as every tables engine returns them. lava's items are JSON maps;
//! DynamoDB gives them back in one canonical shape (keys sorted at every
//! level, numbers re-read from their text so integers stay integers, binary
//! values as `{"$binary": base64}` with canonical base64), and every other
//! engine normalises what it stores to that same shape, so code above the
//! seams never sees a difference between engines.

use serde_json::{Map, Number, Value};

use crate::spec::Item;

/// The JSON key that marks a binary value: `{"$binary": "<base64>"}`.
pub const BINARY_KEY: &str = "$binary";

/// Number text (as DynamoDB stores numbers) to a JSON number: integers stay
/// integers, others become floats; text that is no number stays text.
pub fn number_from_text(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number)
}

/// A binary value as JSON: `{"$binary": "<base64>"}`.
pub fn binary_value(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    map.insert(
        BINARY_KEY.into(),
        Value::String(aws_smithy_types::base64::encode(bytes)),
    );
    Value::Object(map)
}

/// The bytes of a binary value: a map whose only key is `$binary`, holding
/// valid base64. Any other map is an ordinary map.
pub fn binary_bytes(map: &Map<String, Value>) -> Option<Vec<u8>> {
    if map.len() != 1 {
        return None;
    }
    match map.get(BINARY_KEY) {
        Some(Value::String(b64)) => aws_smithy_types::base64::decode(b64).ok(),
        _ => None,
    }
}

/// One value in the canonical shape.
pub fn normalize_value(value: &Value) -> Value {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => value.clone(),
        Value::Number(n) => number_from_text(&n.to_string()),
        Value::Array(list) => Value::Array(list.iter().map(normalize_value).collect()),
        Value::Object(map) => match binary_bytes(map) {
            Some(bytes) => binary_value(&bytes),
            None => Value::Object(normalize(map)),
        },
    }
}

/// An item in the canonical shape: keys sorted, every value normalised.
pub fn normalize(item: &Item) -> Item {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), normalize_value(&item[k])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_integer_form() {
        assert_eq!(number_from_text("5"), json!(5));
        assert_eq!(number_from_text("-7"), json!(-7));
        assert_eq!(
            number_from_text("18446744073709551615"),
            json!(18446744073709551615u64)
        );
        assert_eq!(number_from_text("1e3"), json!(1000.0));
        assert_eq!(number_from_text("2.5"), json!(2.5));
        assert_eq!(number_from_text("not a number"), json!("not a number"));
    }

    #[test]
    fn keys_sorted_at_every_level_and_binary_canonical() {
        let item =
            json!({"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": {"$binary": "AAEC"}, "e": ""});
        let item = item.as_object().cloned().unwrap_or_default();
        let out = normalize(&item);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "e"]);
        let inner: Vec<&str> = out["b"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(inner, ["a", "z"]);
        let deep: Vec<&str> = out["b"]["a"][0]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(deep, ["x", "y"]);
        assert_eq!(out["a"], json!({"$binary": "AAEC"}));
        assert_eq!(out["e"], json!(""));
        assert_eq!(binary_bytes(&Map::new()), None);
        let not_binary = json!({"$binary": "not base64!"});
        let not_binary = not_binary.as_object().cloned().unwrap_or_default();
        assert_eq!(binary_bytes(&not_binary), None);
        assert_eq!(
            normalize_value(&Value::Object(not_binary.clone())),
            Value::Object(not_binary)
        );
    }
}
