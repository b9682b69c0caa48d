//! Run ids: a fresh random one (UUIDv4) for each new dispatch, and derived
//! ones (UUIDv5) for runs that must keep their id when the step that starts
//! them is repeated, so that the repeat finds the run already there instead
//! of starting a second one.

use uuid::Uuid;

/// The namespace of every derived run id (fixed for ever: changing it
/// would give a repeated step a new run).
const NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7661_2d72_756e_2d69_642d_7631_0001);

/// A new run id, as lower-case hyphenated text.
pub fn fresh() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// The run id derived from `kind` and its inputs, as lower-case hyphenated
/// text: the same inputs give the same id. Kinds in use:
/// `dispatch-action` (parent run id, action list, index), `dispatch-job`
/// (parent run id, index in the payload, target job id).
pub fn derived(kind: &str, inputs: &[&str]) -> String {
    // NUL cannot occur in the inputs' text forms, so the name is unambiguous.
    let mut name = kind.to_string();
    for input in inputs {
        name.push('\0');
        name.push_str(input);
    }
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived("dispatch-action", &["r1", "on_success", "0"]);
        assert_eq!(a, derived("dispatch-action", &["r1", "on_success", "0"]));
        assert_ne!(a, derived("dispatch-action", &["r1", "on_success", "1"]));
        assert_ne!(a, derived("dispatch-action", &["r1", "on_fail", "0"]));
        // Inputs cannot run into one another.
        assert_ne!(derived("k", &["a", "bc"]), derived("k", &["ab", "c"]));
        let id = Uuid::parse_str(&a).expect("uuid");
        assert_eq!(id.get_version_num(), 5);
        assert_eq!(a, a.to_lowercase());
        assert_ne!(fresh(), fresh());
    }
}
