//! `dsrctl explain`: every diagnostic code is explained from the one table, an unknown code
//! is an error that names the nearest codes, and `validate` points at the command.

mod support;

use dsrctl::load::Code;
use support::cli::{Dsrctl, ProjectDir};

fn explain(args: &[&str]) -> support::cli::Output {
    let dir = ProjectDir::new();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(Dsrctl::new(dir.path()).arg("explain").args(args).run())
}

#[test]
fn explains_one_code_exactly() {
    let out = explain(&["missing-preview"]).expect_code(0);
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn every_code_has_an_explanation_on_the_command_line() {
    for code in Code::ALL {
        let out = explain(&[code.as_str()]).expect_code(0);
        let head = format!("{code}: {}\n\n", code.summary());
        assert_eq!(out.stdout, format!("{head}{}", code.explanation()));
    }
}

#[test]
fn without_a_code_lists_every_code_with_its_summary() {
    let out = explain(&[]).expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), Code::ALL.len(), "{}", out.stdout);
    for (line, code) in lines.iter().zip(Code::ALL) {
        let (name, summary) = line.split_once("  ").expect("two columns");
        assert_eq!(name, code.as_str());
        assert_eq!(summary.trim_start(), code.summary());
    }
    // The summaries start in one column.
    let col = lines[0].len() - Code::ALL[0].summary().len();
    assert!(
        lines
            .iter()
            .zip(Code::ALL)
            .all(|(l, c)| l.len() - c.summary().len() == col)
    );
}

#[test]
fn unknown_code_fails_and_suggests_the_nearest() {
    let out = explain(&["unkown-key"]).expect_code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: `unkown-key` is not a diagnostic code; did you mean `unknown-key`?\n\
         `dsrctl explain` lists every code\n"
    );
    let out = explain(&["secret"]).expect_code(1);
    assert!(
        out.stderr.contains("did you mean `literal-secret`?"),
        "{}",
        out.stderr
    );
    let out = explain(&["zzzz"]).expect_code(1);
    assert_eq!(
        out.stderr,
        "error: `zzzz` is not a diagnostic code\n`dsrctl explain` lists every code\n"
    );
}

#[test]
fn validate_output_points_at_explain() {
    let dir = ProjectDir::new()
        .file("dsrctl.yaml", "tenants: {}\nplaybookz: [policies]\n")
        .file("policies/.keep", "");
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(dir.cmd().arg("validate").run())
        .expect_code(1);
    assert!(
        out.stdout
            .ends_with("\nfor more about a code, try `dsrctl explain unknown-key`\n"),
        "{}",
        out.stdout
    );
}
