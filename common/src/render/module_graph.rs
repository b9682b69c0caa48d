//! Test-only guard on the layering of `render`: reads every
//! `src/render/*.rs`, builds the graph of which module refers to which
//! (`super::x`, `self::x` in `mod.rs`, `crate::render::x`, grouped imports
//! such as `use super::{a, b}`, and bare `x::` paths where `x` is in scope),
//! and fails naming the cycle when the modules refer to one another in a
//! loop. A reference to an item of `mod.rs` itself (`super::Context`, or
//! a glob `use super::*`) is an edge to the node `mod`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which module refers to which: node name (file stem, `mod` for
/// `mod.rs`) to the nodes it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The tokens that matter for paths; comments, strings, character
/// literals and numbers are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

fn tokens(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal: '\n', '\'', '\u{7f}'.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label: the name follows as an identifier.
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if (word == "r" || word == "br") && (at(i) == '"' || at(i) == '#') {
                let mut hashes = 0;
                while at(i + hashes) == '#' {
                    hashes += 1;
                }
                if at(i + hashes) == '"' {
                    // A raw string: ends at '"' followed by the same hashes.
                    i += hashes + 1;
                    while i < chars.len() {
                        if chars[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                            i += hashes + 1;
                            break;
                        }
                        i += 1;
                    }
                    continue;
                }
                // A raw identifier, `r#type`: the name follows.
                i += hashes;
                continue;
            }
            out.push(Tok::Ident(word));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            i += 1;
            out.push(match c {
                ':' if at(i) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                _ => Tok::Other,
            });
        }
    }
    out
}

/// Flattens the use tree starting at `toks[*i]` into full paths
/// (`a::{b, c::*}` gives `a::b` and `a::c::*`); stops before the `,`, `}`
/// or `;` that ends it.
fn use_paths(toks: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(word)) => {
                path.push(word.clone());
                *i += 1;
                // `x as y`: the alias does not change what is referred to.
                if toks.get(*i) == Some(&Tok::Ident("as".to_string())) {
                    *i += 2;
                }
            }
            Some(Tok::Star) => {
                path.push("*".to_string());
                *i += 1;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            break;
                        }
                        Some(Tok::Comma) => *i += 1,
                        None => return,
                        Some(_) => use_paths(toks, i, &path, out),
                    }
                }
                return;
            }
            _ => break,
        }
        if toks.get(*i) == Some(&Tok::PathSep) {
            *i += 1;
        } else {
            break;
        }
    }
    out.push(path);
}

/// What a path written in one file refers to, as a node of the graph.
struct Resolver<'a> {
    /// The sibling modules: every file of `render` but `mod.rs`.
    modules: &'a BTreeSet<String>,
    /// 0 for `mod.rs` (the `render` module itself), 1 for the others.
    file_level: usize,
    /// Whether bare `x::` paths may name a sibling module: in `mod.rs`,
    /// and in files that glob-import `render`.
    bare_siblings: bool,
}

impl Resolver<'_> {
    /// The node a path refers to, if it names `render` or one of its
    /// modules; `inline` is how many inline `mod x { }` enclose it.
    fn resolve(&self, path: &[String], inline: usize) -> Option<String> {
        let depth = self.file_level + inline;
        let first = path.first()?.as_str();
        let rest: &[String] = match first {
            "crate" => match path.get(1).map(String::as_str) {
                Some("render") => &path[2..],
                _ => return None,
            },
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                if ups != depth {
                    return None;
                }
                &path[ups..]
            }
            "self" if depth == 0 => &path[1..],
            _ if self.bare_siblings && self.modules.contains(first) && path.len() > 1 => path,
            _ => return None,
        };
        let name = rest.first().map_or("*", String::as_str);
        Some(if self.modules.contains(name) {
            name.to_string()
        } else {
            // `*`, `self` or an item of mod.rs.
            "mod".to_string()
        })
    }
}

/// The nodes one file refers to, and whether the file glob-imports
/// `render` (`use super::*` at its top level).
fn references(
    src: &str,
    modules: &BTreeSet<String>,
    file_level: usize,
    bare_siblings: bool,
) -> (BTreeSet<String>, bool) {
    let toks = tokens(src);
    let resolver = Resolver {
        modules,
        file_level,
        bare_siblings,
    };
    let mut found = BTreeSet::new();
    let mut globs = false;
    // Brace depth at which each enclosing inline module opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut braces = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => {
                braces += 1;
                i += 1;
            }
            Tok::Close => {
                braces -= 1;
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
                i += 1;
            }
            Tok::Ident(word) if word == "mod" => {
                if matches!(toks.get(i + 1), Some(Tok::Ident(_)))
                    && toks.get(i + 2) == Some(&Tok::Open)
                {
                    inline.push(braces);
                }
                i += 1;
            }
            Tok::Ident(word) if word == "use" => {
                i += 1;
                let mut paths = Vec::new();
                while i < toks.len() && toks[i] != Tok::Semi {
                    let before = i;
                    use_paths(&toks, &mut i, &[], &mut paths);
                    if i == before {
                        i += 1;
                    }
                }
                for path in &paths {
                    let node = resolver.resolve(path, inline.len());
                    if path.last().is_some_and(|s| s == "*") && node.as_deref() == Some("mod") {
                        globs = true;
                    }
                    found.extend(node);
                }
            }
            Tok::Ident(_) if i == 0 || toks[i - 1] != Tok::PathSep => {
                let mut path = Vec::new();
                while let Some(Tok::Ident(segment)) = toks.get(i) {
                    path.push(segment.clone());
                    i += 1;
                    if toks.get(i) != Some(&Tok::PathSep) {
                        break;
                    }
                    i += 1;
                }
                if path.len() > 1 {
                    found.extend(resolver.resolve(&path, inline.len()));
                }
            }
            _ => i += 1,
        }
    }
    (found, globs)
}

/// The graph of a set of files: file name (`args.rs`) to its text.
fn graph(files: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeSet<String> = files
        .keys()
        .filter_map(|f| f.strip_suffix(".rs"))
        .filter(|m| *m != "mod")
        .map(str::to_string)
        .collect();
    let mut graph = Graph::new();
    for (file, src) in files {
        let Some(node) = file.strip_suffix(".rs") else {
            continue;
        };
        let file_level = usize::from(node != "mod");
        let (mut refs, globs) = references(src, &modules, file_level, node == "mod");
        if globs && node != "mod" {
            // Sibling modules are in scope by their bare names.
            refs = references(src, &modules, file_level, true).0;
        }
        refs.remove(node);
        graph.insert(node.to_string(), refs);
    }
    graph
}

/// One cycle of the graph (`a -> b -> a`), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The graph on one line: `args -> {delta}; datetime -> {args, delta}`.
fn one_line(graph: &Graph) -> String {
    graph
        .iter()
        .filter(|(_, refs)| !refs.is_empty())
        .map(|(node, refs)| {
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            format!("{node} -> {{{}}}", refs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn files(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(name, src)| (name.to_string(), src.to_string()))
        .collect()
}

fn edges(graph: &Graph, node: &str) -> Vec<String> {
    graph
        .get(node)
        .map(|refs| refs.iter().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn render_modules_import_without_cycles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("read src/render") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .expect("file name");
            let text = std::fs::read_to_string(&path).expect("read module");
            sources.insert(name, text);
        }
    }
    assert!(sources.contains_key("mod.rs"), "no mod.rs in {dir:?}");
    let graph = graph(&sources);
    println!("render module graph: {}", one_line(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules of render refer to one another in a cycle: {}\nwhole graph: {}",
            cycle.join(" -> "),
            one_line(&graph)
        );
    }
}

#[test]
fn render_module_graph_reads_every_form_of_reference() {
    let g = graph(&files(&[
        (
            "mod.rs",
            "mod a; mod b; use self::a::X; fn f() { b::g(); minijinja::c::h(); }",
        ),
        (
            "a.rs",
            r##"use super::{b::{self, Y}, c as cc}; use std::fmt;
               // super::d::Z in a comment
               const S: &str = "super::d::Z"; const Q: char = '"'; const R: &str = r#"super::d"#;
               fn f() -> &'static str { super::e::h() }"##,
        ),
        ("b.rs", "use crate::render::c::Z; use super::Context;"),
        (
            "c.rs",
            "use super::*; fn f() { d::x(); regex::Regex::new(); }",
        ),
        ("d.rs", "fn f() { other::super_thing::x(); }"),
        (
            "e.rs",
            "#[cfg(test)] mod tests { use super::*; fn t() { super::super::d::x(); } }",
        ),
    ]));
    assert_eq!(edges(&g, "mod"), ["a", "b"]);
    assert_eq!(edges(&g, "a"), ["b", "c", "e"]);
    assert_eq!(edges(&g, "b"), ["c", "mod"]);
    assert_eq!(edges(&g, "c"), ["d", "mod"]);
    assert!(edges(&g, "d").is_empty());
    assert_eq!(edges(&g, "e"), ["d"]);
}

#[test]
fn render_module_graph_finds_a_cycle() {
    let g = graph(&files(&[
        ("mod.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use super::b::X;"),
        ("b.rs", "fn f() { super::c::g() }"),
        ("c.rs", "fn f() -> super::a::T { todo!() }"),
    ]));
    assert_eq!(
        find_cycle(&g).map(|c| c.join(" -> ")).as_deref(),
        Some("a -> b -> c -> a")
    );
    let acyclic = graph(&files(&[
        ("mod.rs", "mod a; mod b; use a::X;"),
        ("a.rs", "use super::b::Y;"),
        ("b.rs", "const B: u8 = 1;"),
    ]));
    assert_eq!(find_cycle(&acyclic), None);
    // A module using an item of mod.rs that uses it back is a cycle too.
    let through_mod = graph(&files(&[
        ("mod.rs", "mod a; fn f() { a::g() }"),
        ("a.rs", "use super::Context;"),
    ]));
    assert_eq!(
        find_cycle(&through_mod).map(|c| c.join(" -> ")).as_deref(),
        Some("a -> mod -> a")
    );
}
