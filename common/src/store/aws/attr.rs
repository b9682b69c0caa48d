//! Conversion between DynamoDB attribute values and the JSON maps lava works
//! with. Numbers keep integer form; binary values travel as `{"$binary": base64}`.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::spec::Item;

/// The JSON key that marks a binary attribute.
pub const BINARY_KEY: &str = "$binary";

/// DynamoDB number text to a JSON number: integers stay integers.
fn number(text: &str) -> Value {
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

fn binary(blob: &Blob) -> Value {
    let mut map = Map::new();
    map.insert(
        BINARY_KEY.into(),
        Value::String(aws_smithy_types::base64::encode(blob.as_ref())),
    );
    Value::Object(map)
}

/// One attribute value as JSON. Sets become lists.
pub fn to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(list) => Value::Array(list.iter().map(to_json).collect()),
        AttributeValue::M(map) => Value::Object(item_to_json(map)),
        AttributeValue::Ss(set) => Value::Array(set.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(set) => Value::Array(set.iter().map(|n| number(n)).collect()),
        AttributeValue::B(blob) => binary(blob),
        AttributeValue::Bs(set) => Value::Array(set.iter().map(binary).collect()),
        _ => Value::Null,
    }
}

/// A DynamoDB item as a JSON map, keys sorted.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Item {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), to_json(&item[k])))
        .collect()
}

/// A JSON value as an attribute value.
pub fn from_json(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(list) => AttributeValue::L(list.iter().map(from_json).collect()),
        Value::Object(map) => {
            if map.len() == 1
                && let Some(Value::String(b64)) = map.get(BINARY_KEY)
                && let Ok(bytes) = aws_smithy_types::base64::decode(b64)
            {
                return AttributeValue::B(Blob::new(bytes));
            }
            AttributeValue::M(item_from_json(map))
        }
    }
}

/// A JSON map as a DynamoDB item.
pub fn item_from_json(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(k, v)| (k.clone(), from_json(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_integers_and_binary() {
        let v = json!({"a": 5, "b": 2.5, "c": [true, null, "x"], "d": {"$binary": "AAEC"}, "e": {"f": -7}});
        let item = v.as_object().cloned().unwrap_or_default();
        let back = item_to_json(&item_from_json(&item));
        assert_eq!(Value::Object(back), v);
        assert_eq!(number("5"), json!(5));
        assert_eq!(
            number("18446744073709551615"),
            json!(18446744073709551615u64)
        );
        assert_eq!(number("1e3"), json!(1000.0));
        assert!(matches!(
            from_json(&json!({"$binary": "AAEC"})),
            AttributeValue::B(_)
        ));
    }
}
