//! Finding an action by name in the one list of actions (`ACTIONS`,
//! declared with the action modules in `actions/mod.rs`), and the names of
//! the original's actions not built here yet.

use super::{ACTIONS, Action};

/// Actions of the original lava that this worker does not run yet.
const NOT_YET: &[&str] = &[];

/// What an action's `action` field names.
pub enum Lookup {
    /// An action this worker runs.
    Known(&'static dyn Action),
    /// An action of the original lava not built here yet.
    NotYet,
    /// No such action.
    Unknown,
}

/// Finds an action by name.
pub fn lookup(name: &str) -> Lookup {
    if let Some(found) = ACTIONS.iter().find(|a| a.name() == name) {
        return Lookup::Known(*found);
    }
    if NOT_YET.contains(&name) {
        Lookup::NotYet
    } else {
        Lookup::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_distinct_from_not_yet() {
        let mut names: Vec<&str> = ACTIONS.iter().map(|a| a.name()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an action is registered twice");
        assert!(names.iter().all(|n| !NOT_YET.contains(n)));
        assert!(matches!(lookup("event"), Lookup::Known(a) if a.name() == "event"));
        assert!(matches!(lookup("sns"), Lookup::Known(a) if a.name() == "sns"));
        assert!(matches!(lookup("mail"), Lookup::Unknown));
    }
}
