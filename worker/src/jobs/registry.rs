//! Finding a job type by name in the one list of job types (`TYPES`,
//! declared with the type modules in `jobs/mod.rs`), and the names of the
//! original's types not built here yet.

use super::{JobType, TYPES};

/// Job types of the original lava that this worker does not run yet: a job
/// of one of these fails with "not supported by this worker yet", which an
/// operator must not mistake for a misspelt type.
const NOT_YET: &[&str] = &[
    "db_from_s3",
    "docker",
    "redshift_unload",
    "sharepoint_get_doc",
    "sharepoint_get_list",
    "sharepoint_get_multi_doc",
    "sharepoint_put_doc",
    "sharepoint_put_list",
    "smb_get",
    "smb_put",
    "sqlv",
];

/// What a job's `type` names.
pub enum Lookup {
    /// A type this worker runs.
    Known(&'static dyn JobType),
    /// A type of the original lava not built here yet.
    NotYet,
    /// No such type.
    Unknown,
}

/// Finds a job type by name.
pub fn lookup(name: &str) -> Lookup {
    if let Some(found) = TYPES.iter().find(|t| t.name() == name) {
        return Lookup::Known(*found);
    }
    if NOT_YET.contains(&name) {
        Lookup::NotYet
    } else {
        Lookup::Unknown
    }
}

/// The names of the job types this worker runs, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|t| t.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_distinct_from_not_yet() {
        let mut seen: Vec<&str> = names().collect();
        let count = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), count, "a job type is registered twice");
        for name in names() {
            assert!(
                !NOT_YET.contains(&name),
                "{name} is built: drop it from NOT_YET"
            );
        }
        assert!(matches!(lookup("cmd"), Lookup::Known(t) if t.name() == "cmd"));
        assert!(matches!(lookup("sqlv"), Lookup::NotYet));
        assert!(matches!(lookup("cmdd"), Lookup::Unknown));
    }
}
