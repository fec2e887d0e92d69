//! Checks on the workspace's shape that reviews keep asking for, run as unit
//! tests: no import cycle between the top-level modules of a crate (each
//! module depends only downward), and no Rust file over [`MAX_LINES`] lines
//! unless its opening comment gives the reason ([`OVERSIZE_MARK`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file without a stated reason.
pub const MAX_LINES: usize = 700;

/// Text in a file's opening `//!` comment that says why it is longer.
pub const OVERSIZE_MARK: &str = "Longer than 700 lines:";

/// Every `.rs` file under `dir`, recursively, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    todo.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src` belongs to (`lib`/`main` for the root).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Code without comments and without a trailing `#[cfg(test)] mod tests`
/// (a `#[cfg(test)]` on anything else, e.g. a `use`, is code too).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut test_attr = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") || t.is_empty() {
            continue;
        }
        if let Some(rest) = t.strip_prefix("#[cfg(test)]") {
            let rest = rest.trim_start();
            if rest.starts_with("mod ") {
                break;
            }
            test_attr = rest.is_empty();
        } else if test_attr && (t.starts_with("mod ") || t.starts_with("#[path")) {
            break;
        } else {
            test_attr = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The crate-internal dependency graph between the top-level modules of
/// the crate whose sources are in `src`: module -> modules it names as
/// `crate::<module>` in code (comments and unit tests excluded).
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top_module(src, f);
        let code = code_of(&std::fs::read_to_string(f).unwrap_or_default());
        let deps = graph.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                deps.insert(name);
            }
        }
    }
    graph
}

/// The cycles of `graph`: each strongly connected component of more than
/// one module (Tarjan's algorithm).
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The `src` directories of every crate in the workspace.
pub fn crate_sources(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("xtask/src")];
    if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
        for e in entries.flatten() {
            let src = e.path().join("src");
            if src.is_dir() {
                out.push(src);
            }
        }
    }
    out.sort();
    out
}

/// Files over [`MAX_LINES`] whose opening comment does not say why.
pub fn oversized(root: &Path) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for dir in ["crates", "xtask"] {
        for f in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines = text.lines().count();
            let opening: String = text
                .lines()
                .take_while(|l| l.starts_with("//!") || l.starts_with("//"))
                .collect();
            if lines > MAX_LINES && !opening.contains(OVERSIZE_MARK) {
                out.push((f, lines));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::workspace_root;

    #[test]
    fn test_only_imports_are_code_and_the_test_module_is_not() {
        let text = "use crate::a;\n#[cfg(test)]\nuse crate::b;\n// crate::c\n\
                    fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::d;\n}\n";
        let code = code_of(text);
        assert!(
            code.contains("crate::a") && code.contains("crate::b"),
            "{code}"
        );
        assert!(
            !code.contains("crate::c") && !code.contains("crate::d"),
            "{code}"
        );
        let text = "use crate::a;\n#[cfg(test)]\n#[path = \"t.rs\"]\nmod tests;\nuse crate::e;\n";
        assert!(!code_of(text).contains("crate::e"), "{}", code_of(text));
        let text = "#[cfg(test)] mod tests { use crate::f; }\n";
        assert!(!code_of(text).contains("crate::f"));
    }

    #[test]
    fn no_crate_has_an_import_cycle_between_its_modules() {
        for src in crate_sources(&workspace_root()) {
            let found = cycles(&module_graph(&src));
            assert!(
                found.is_empty(),
                "{}: modules in a cycle: {found:?}",
                src.display()
            );
        }
    }

    #[test]
    fn no_file_is_over_700_lines_without_a_reason() {
        let found = oversized(&workspace_root());
        assert!(
            found.is_empty(),
            "over {MAX_LINES} lines, and the opening comment does not say \
             `{OVERSIZE_MARK} <why>`: {found:?}"
        );
    }

    #[test]
    fn a_cycle_is_found_and_comments_are_not_dependencies() {
        let dir = std::env::temp_dir().join(format!("kxt-structure-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("c")).unwrap();
        std::fs::write(dir.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
        std::fs::write(dir.join("a.rs"), "use crate::b::X;\n").unwrap();
        std::fs::write(dir.join("b.rs"), "//! see crate::a\nuse crate::c::Y;\n").unwrap();
        std::fs::write(dir.join("c/mod.rs"), "pub fn f() { crate::a::g() }\n").unwrap();
        let graph = module_graph(&dir);
        assert_eq!(cycles(&graph), [vec!["a", "b", "c"]]);
        std::fs::write(
            dir.join("c/mod.rs"),
            "// crate::a\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        )
        .unwrap();
        assert!(cycles(&module_graph(&dir)).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
