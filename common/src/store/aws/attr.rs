//! Conversion between DynamoDB attribute values and the JSON maps lava works
//! with, in the shape of [`crate::store::item`]: numbers keep integer form;
//! binary values travel as `{"$binary": base64}`.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::spec::Item;
pub use crate::store::item::BINARY_KEY;
use crate::store::item::{binary_bytes, binary_value, number_from_text as number};

fn binary(blob: &Blob) -> Value {
    binary_value(blob.as_ref())
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
        Value::Object(map) => match binary_bytes(map) {
            Some(bytes) => AttributeValue::B(Blob::new(bytes)),
            None => AttributeValue::M(item_from_json(map)),
        },
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

    /// A JSON value of any shape, with keys that collide with the binary
    /// marker and strings that are (or almost are) base64.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[A-Za-z0-9+/=!]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("(\\$binary|[a-c]{1,2})", inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The engine-neutral normalisation is exactly a DynamoDB round trip.
        #[test]
        fn normalize_is_a_dynamodb_round_trip(value in any_value()) {
            let item: Item = [("v".to_string(), value.clone()), ("a".to_string(), value)]
                .into_iter()
                .collect();
            proptest::prop_assert_eq!(
                crate::store::item::normalize(&item),
                item_to_json(&item_from_json(&item))
            );
        }
    }
}
