//! Putting lava's block into a user's crontab, pure: everything outside
//! the markers is kept byte for byte, the block replaces the old one (or is
//! appended), a start marker without an end marker is an error, and a
//! block of another realm is only replaced when forced (a host serves one
//! realm, as with the original).

use super::CrontabError;
use super::render::{END, START};

/// The realm named by the `LAVA_REALM=` line of the lava block in `crontab`, if any.
pub fn block_realm(crontab: &str) -> Option<String> {
    let lines: Vec<&str> = crontab.split('\n').collect();
    let start = lines.iter().position(|l| *l == START)?;
    lines[start + 1..]
        .iter()
        .take_while(|l| **l != END)
        .find_map(|l| l.strip_prefix("LAVA_REALM="))
        .map(|r| r.trim().to_string())
}

/// The crontab with `block` in place of the old lava block, or appended
/// when there is none. A missing final newline before or after the block
/// is added (cron needs it).
pub fn merge(old: &str, block: &str, realm: &str, force: bool) -> Result<String, CrontabError> {
    let lines: Vec<&str> = old.split_inclusive('\n').collect();
    let bare = |l: &str| l.strip_suffix('\n').unwrap_or(l).to_string();
    let start = lines.iter().position(|l| bare(l) == START);
    let (head, tail) = match start {
        None => (old, ""),
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|l| bare(l) == END)
                .map(|i| start + 1 + i)
                .ok_or(CrontabError::NoEndMarker)?;
            if let Some(found) = block_realm(old)
                && found != realm
                && !force
            {
                return Err(CrontabError::OtherRealm { found });
            }
            let head_len: usize = lines[..start].iter().map(|l| l.len()).sum();
            let tail_at: usize = lines[..=end].iter().map(|l| l.len()).sum();
            (&old[..head_len], &old[tail_at..])
        }
    };
    let mut new = String::with_capacity(head.len() + block.len() + tail.len() + 2);
    for part in [head, block, tail] {
        new.push_str(part);
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(realm: &str, line: &str) -> String {
        format!("{START}\nLAVA_REALM={realm}\n{line}\n{END}\n")
    }

    #[test]
    fn appended_to_an_empty_or_foreign_crontab() {
        let b = block("prod", "@daily x");
        assert_eq!(merge("", &b, "prod", false), Ok(b.clone()));
        let old = "MAILTO=me\n0 1 * * * backup\n";
        assert_eq!(merge(old, &b, "prod", false), Ok(format!("{old}{b}")));
        // A missing final newline is added before the block.
        assert_eq!(
            merge("0 1 * * * backup", &b, "prod", false),
            Ok(format!("0 1 * * * backup\n{b}"))
        );
    }

    #[test]
    fn replaced_in_place_with_the_rest_kept_byte_for_byte() {
        let head = "# mine\r\n  0 1 * * *   odd   spacing \n\n";
        let tail = "\t# after\n5 5 * * * tail %x\n";
        let old = format!("{head}{}{tail}", block("prod", "@hourly old"));
        let new = block("prod", "@daily new");
        assert_eq!(
            merge(&old, &new, "prod", false),
            Ok(format!("{head}{new}{tail}"))
        );
        // Unchanged input gives the same bytes.
        assert_eq!(
            merge(&old, &block("prod", "@hourly old"), "prod", false),
            Ok(old.clone())
        );
        // A tail without a final newline gets one.
        let old = format!("{}last", block("prod", "@hourly old"));
        assert_eq!(merge(&old, &new, "prod", false), Ok(format!("{new}last\n")));
    }

    #[test]
    fn start_without_end_is_an_error() {
        let old = format!("a\n{START}\nLAVA_REALM=prod\nb\n");
        assert_eq!(
            merge(&old, &block("prod", "x"), "prod", false),
            Err(CrontabError::NoEndMarker)
        );
        // Markers must be whole lines.
        let old = format!("# {START}\n");
        assert!(merge(&old, &block("prod", "x"), "prod", false).is_ok());
    }

    #[test]
    fn other_realms_need_force() {
        let old = format!("a\n{}", block("test", "x"));
        assert_eq!(block_realm(&old).as_deref(), Some("test"));
        assert_eq!(
            merge(&old, &block("prod", "y"), "prod", false),
            Err(CrontabError::OtherRealm {
                found: "test".into()
            })
        );
        assert_eq!(
            merge(&old, &block("prod", "y"), "prod", true),
            Ok(format!("a\n{}", block("prod", "y")))
        );
        // A LAVA_REALM outside the block does not count.
        let old = "LAVA_REALM=test\n";
        assert_eq!(block_realm(old), None);
        assert!(merge(old, &block("prod", "y"), "prod", false).is_ok());
    }
}
