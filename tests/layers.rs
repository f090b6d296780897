//! One way down: each top-level module of `src/` imports only the layers below it (the table in
//! the README's "Where things are" and DESIGN's "Layers"). Fails naming the file and the
//! import that goes up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module and the modules it may use. Anything not listed here is a layer above.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("journal", &["model"]),
    ("secret", &["model"]),
    ("store", &["journal", "model"]),
    ("connectors", &["secret", "journal", "model"]),
    ("deliver", &["secret", "journal", "model"]),
    ("emulator", &["journal", "model"]),
    ("load", &["model"]),
    // The language server answers from what `load` finds.
    ("lsp", &["load", "model"]),
    ("compile", &["load", "journal", "model"]),
    (
        "engine",
        &["compile", "connectors", "store", "journal", "model"],
    ),
    // Reports render; they share the package's file naming with `deliver` but ship nothing.
    ("report", &["deliver", "store", "journal", "model"]),
    (
        "workflow",
        &[
            "report",
            "engine",
            "compile",
            "load",
            "connectors",
            "deliver",
            "secret",
            "store",
            "journal",
            "model",
        ],
    ),
    (
        "cli",
        &[
            "workflow",
            "report",
            "engine",
            "compile",
            "load",
            "connectors",
            "deliver",
            "secret",
            "store",
            "journal",
            "model",
            "emulator",
            "lsp",
        ],
    ),
];

/// Imports that go up today and are being removed; each must still occur (so the list
/// shrinks as they go) and is reported when it is gone.
const KNOWN: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code names through `crate::`, with the line of each.
fn imports(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a::X, b};`: every name at the group's top level.
                let body = group.split('}').next().unwrap_or("");
                for item in body.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((name, n + 1));
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((name, n + 1));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_layer_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.is_dir()
                .then(|| p.file_name()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect();
    let mut problems = Vec::new();
    let mut seen_known = BTreeSet::new();
    for module in &modules {
        let Some(may_use) = allowed.get(module.as_str()) else {
            problems.push(format!(
                "src/{module}/ is not in the layer table of tests/layers.rs; add it where it belongs"
            ));
            continue;
        };
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for (used, line) in imports(&text) {
                if used == *module || !modules.contains(&used) || may_use.contains(used.as_str()) {
                    continue;
                }
                if KNOWN.contains(&(module.as_str(), used.as_str())) {
                    seen_known.insert((module.clone(), used));
                    continue;
                }
                let rel = file.strip_prefix(&src).unwrap_or(&file).display();
                problems.push(format!(
                    "src/{rel}:{line}: `{module}` uses `crate::{used}`, a layer above it (it may use: {})",
                    may_use.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for (module, used) in KNOWN {
        if !seen_known.contains(&((*module).to_owned(), (*used).to_owned())) {
            problems.push(format!(
                "`{module}` no longer uses `{used}`: remove the pair from KNOWN in tests/layers.rs"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scan_sees_grouped_and_inline_imports() {
    let found =
        imports("use crate::{engine::X, model};\nlet a = crate::store::open(); // crate::cli\n");
    let names: Vec<(&str, usize)> = found.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    assert_eq!(names, vec![("engine", 1), ("model", 1), ("store", 2)]);
}
