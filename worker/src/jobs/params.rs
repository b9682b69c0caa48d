//! The one check of a job's parameter keys: which keys a job type requires
//! and which it allows, with the original's "Bad job parameters" texts.

use serde_json::{Map, Value};

use super::outcome::Failure;

/// The parameter keys a job type takes.
#[derive(Debug, Clone, Copy)]
pub struct ParamKeys {
    /// Keys that must be present.
    pub required: &'static [&'static str],
    /// Other keys that may be present.
    pub allowed: &'static [&'static str],
}

impl ParamKeys {
    /// "Bad job parameters: Missing keys: …", then "… Unexpected keys: …",
    /// each list sorted.
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), Failure> {
        let mut missing: Vec<&str> = self
            .required
            .iter()
            .copied()
            .filter(|k| !params.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(Failure::new(format!(
                "Bad job parameters: Missing keys: {}",
                missing.join(", ")
            )));
        }
        let mut unexpected: Vec<&str> = params
            .keys()
            .map(String::as_str)
            .filter(|k| !self.required.contains(k) && !self.allowed.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(Failure::new(format!(
                "Bad job parameters: Unexpected keys: {}",
                unexpected.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_then_unexpected() {
        let keys = ParamKeys {
            required: &["b", "a"],
            allowed: &["c"],
        };
        let params = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            keys.check(&params(json!({"c": 1}))).map_err(|f| f.error),
            Err("Bad job parameters: Missing keys: a, b".into())
        );
        assert_eq!(
            keys.check(&params(json!({"a": 1, "b": 2, "z": 3, "d": 4})))
                .map_err(|f| f.error),
            Err("Bad job parameters: Unexpected keys: d, z".into())
        );
        assert!(keys.check(&params(json!({"a": 1, "b": 2, "c": 3}))).is_ok());
    }
}
