//! Malformed input gives a clear finding at a place, never a panic or a hang.

mod common;

use common::{TestProject, one};
use dsrctl::load::{Diagnostics, MAX_DEPTH, MAX_FILE_BYTES, parse_yaml};
use serde_json::json;

fn findings(text: &[u8]) -> Diagnostics {
    parse_yaml("p.yaml", text).1
}

#[test]
fn duplicate_key_points_at_the_second_one() {
    let d = findings(b"service: a\nconnector: x\nservice: b\n");
    let f = one(&d, "duplicate-key");
    assert_eq!((f.line, f.col, f.len), (3, 1, 7));
    assert!(f.help.as_deref().unwrap_or("").contains("line 1, column 1"));
}

#[test]
fn aliases_are_refused_and_alias_bombs_cannot_grow() {
    let d = findings(b"a: &x [1, 2]\nb: *x\n");
    assert_eq!(
        one(&d, "yaml-anchor").message,
        "anchors and aliases are not supported"
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let start = std::time::Instant::now();
    let d = findings(bomb.as_bytes());
    assert!(d.has_errors());
    assert!(start.elapsed().as_secs() < 2);
    let d = findings(b"a: *nothing\n");
    assert!(d.has_errors(), "an alias without an anchor is an error too");
}

#[test]
fn tabs_in_indentation_are_reported_per_line() {
    let d = findings(b"dsr:\n\taccess: []\n  \tdelete: []\n");
    let tabs: Vec<_> = d.iter().map(|f| (f.code.as_str(), f.line, f.col)).collect();
    assert_eq!(
        tabs,
        vec![("tab-indentation", 2, 1), ("tab-indentation", 3, 3)]
    );
}

#[test]
fn non_utf8_reports_the_byte_offset() {
    let d = findings(b"service: ok\nconnector: \xff\xfe\n");
    let f = one(&d, "invalid-utf8");
    assert!(f.message.contains("offset 23"), "{}", f.message);
    assert_eq!((f.line, f.col), (2, 12));
}

#[test]
fn empty_and_comment_only_files_are_errors() {
    for text in ["", "   \n", "# just a comment\n", "---\n", "~\n"] {
        let d = findings(text.as_bytes());
        one(&d, "empty-file");
    }
}

#[test]
fn huge_files_are_refused_before_parsing() {
    let big = "a: b\n".repeat(MAX_FILE_BYTES / 5 + 1);
    let d = findings(big.as_bytes());
    one(&d, "file-too-large");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    let d = findings(deep.as_bytes());
    assert!(d.has_errors());
    let nested = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    one(&findings(nested.as_bytes()), "nesting-too-deep");
    let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(findings(ok.as_bytes()).is_empty());
}

#[test]
fn syntax_errors_have_a_place() {
    let d = findings(b"service: a\ndsr: {access: [}\n");
    let f = one(&d, "yaml-syntax");
    assert_eq!(f.line, 2);
    let d = findings(b"a: 1\n---\nb: 2\n");
    one(&d, "multiple-documents");
    let d = findings(b"? [a, b]\n: c\n");
    one(&d, "complex-key");
}

#[test]
fn yaml_1_2_core_scalars() {
    let text = "on: yes\nno: off\ny: n\nt: true\nnum: 012\nhex: 0x1F\noct: 0o17\nf: 1.5e3\n\
                n: ~\nnull_word: null\nquoted: \"123\"\nstr: !!str 42\ndate: 2026-01-31\n";
    let (doc, d) = parse_yaml("p.yaml", text.as_bytes());
    assert!(d.is_empty(), "{}", d.render_human(false));
    let v = doc.expect("document").value;
    assert_eq!(
        v,
        json!({
            "on": "yes", "no": "off", "y": "n", "t": true, "num": 12, "hex": 31, "oct": 15,
            "f": 1500.0, "n": null, "null_word": null, "quoted": "123", "str": "42",
            "date": "2026-01-31"
        })
    );
    one(&findings(b"x: .inf\n"), "unsupported-value");
    one(&findings(b"x: !custom 1\n"), "unsupported-value");
}

#[test]
fn bad_files_in_a_project_do_not_hide_the_others() {
    let p = TestProject::new()
        .bytes("policies/a.yaml", b"\xff")
        .file("policies/b.yaml", "")
        .file("policies/c.yaml", "a: &x 1\n")
        .file("policies/d.yaml", "service: x\nservice: y\n")
        .file("policies/e.yaml", "- just\n- a list\n");
    let d = p.validate();
    let codes: Vec<&str> = d.iter().map(|f| f.code.as_str()).collect();
    for code in [
        "invalid-utf8",
        "empty-file",
        "yaml-anchor",
        "duplicate-key",
        "wrong-type",
    ] {
        assert!(codes.contains(&code), "missing {code}: {codes:?}");
    }
    assert_eq!(d.file_count(), 5);
}

/// A reader that goes away (`dsrctl … | head`) is no reason to panic: the command drops the
/// rest of its output and ends as it would have.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::{Command, Stdio};
    for args in [&["schema", "playbook"][..], &["schema", "config"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dsrctl"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dsrctl");
        // Close the read end before the child writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Any other failure to write standard output (here a full device) is reported and fails
/// the command, without a panic.
#[test]
fn an_unwritable_stdout_fails_the_command() {
    use std::process::{Command, Stdio};
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this system
    };
    let out = Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .args(["schema", "playbook"])
        .stdin(Stdio::null())
        .stdout(full)
        .output()
        .expect("run dsrctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("error: writing to standard output"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
