//! A unified diff of two crontabs, formatted as Python's
//! `difflib.unified_diff(old, new, "Old", "New", n=…)` formats it for the
//! original's `crontab.diff`: header and hunk lines end in `\n`, content
//! lines do not.

use std::ops::Range;

use similar::{Algorithm, DiffTag, capture_diff_slices, group_diff_ops};

/// The diff from `old` to `new` with `context` lines around each change;
/// empty when they are equal.
pub fn unified(old: &str, new: &str, context: usize) -> Vec<String> {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let ops = capture_diff_slices(Algorithm::Myers, &old, &new);
    let groups = group_diff_ops(ops, context);
    let mut out = Vec::new();
    for group in groups {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        if out.is_empty() {
            out.push("--- Old\n".to_string());
            out.push("+++ New\n".to_string());
        }
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        out.push(format!(
            "@@ -{} +{} @@\n",
            hunk_range(&old_range),
            hunk_range(&new_range)
        ));
        for op in &group {
            let (tag, old_lines, new_lines) = op.as_tag_tuple();
            match tag {
                DiffTag::Equal => out.extend(old[old_lines].iter().map(|l| format!(" {l}"))),
                DiffTag::Delete => out.extend(old[old_lines].iter().map(|l| format!("-{l}"))),
                DiffTag::Insert => out.extend(new[new_lines].iter().map(|l| format!("+{l}"))),
                DiffTag::Replace => {
                    out.extend(old[old_lines].iter().map(|l| format!("-{l}")));
                    out.extend(new[new_lines].iter().map(|l| format!("+{l}")));
                }
            }
        }
    }
    out
}

/// difflib's `_format_range_unified`: `start` alone for one line,
/// `start,0` (one before) for none, else `start,length`.
fn hunk_range(range: &Range<usize>) -> String {
    let length = range.len();
    match length {
        1 => format!("{}", range.start + 1),
        0 => format!("{},0", range.start),
        _ => format!("{},{length}", range.start + 1),
    }
}

/// The diff as text, one line each (content lines get their `\n`).
pub fn to_text(diff: &[String]) -> String {
    diff.iter()
        .map(|l| {
            if l.ends_with('\n') {
                l.clone()
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_give_nothing() {
        assert!(unified("a\nb\n", "a\nb\n", 1).is_empty());
    }

    #[test]
    fn difflib_format() {
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "a\nB\nc\nd\ne\nf\ng\n";
        assert_eq!(
            unified(old, new, 1),
            [
                "--- Old\n",
                "+++ New\n",
                "@@ -1,3 +1,3 @@\n",
                " a",
                "-b",
                "+B",
                " c",
                "@@ -6 +6,2 @@\n",
                " f",
                "+g",
            ]
        );
        assert_eq!(
            unified("", "x\n", 1),
            ["--- Old\n", "+++ New\n", "@@ -0,0 +1 @@\n", "+x"]
        );
        assert_eq!(
            to_text(&unified("x\n", "", 1)),
            "--- Old\n+++ New\n@@ -1 +0,0 @@\n-x\n"
        );
    }
}
