use std::path::Path;

use dsrctl::report::{Format, ReportError, ReportKind, RunView, render};

use crate::fixture::{self, EMAIL, OBJECT_ID};

fn view() -> RunView {
    RunView::build(
        &fixture::run("delete"),
        &fixture::outcomes(),
        fixture::today(),
    )
}

#[test]
fn evidence_markdown() {
    let out = render(&view(), ReportKind::Evidence, Format::Markdown, None).unwrap();
    insta::assert_snapshot!(out);
}

#[test]
fn evidence_html() {
    let out = render(&view(), ReportKind::Evidence, Format::Html, None).unwrap();
    insta::assert_snapshot!(out);
}

#[test]
fn evidence_json() {
    let out = render(&view(), ReportKind::Evidence, Format::Json, None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format_version"], 1);
    insta::assert_snapshot!(out);
}

#[test]
fn letter_and_summary() {
    let v = view();
    insta::assert_snapshot!(
        "letter_md",
        render(&v, ReportKind::Letter, Format::Markdown, None).unwrap()
    );
    insta::assert_snapshot!(
        "summary_md",
        render(&v, ReportKind::Summary, Format::Markdown, None).unwrap()
    );
    let html = render(&v, ReportKind::Letter, Format::Html, None).unwrap();
    assert!(
        html.contains(EMAIL),
        "the letter is addressed to the subject"
    );
    assert!(html.contains("System-generated logs cannot be rectified"));
}

/// Evidence goes to auditors: identity values, captured values and secrets must not
/// appear in any format, even where outcomes carry them in messages and notes.
#[test]
fn evidence_holds_no_subject_values() {
    let v = view();
    // Every format each of these reports exists in (the summary is Markdown only: a CI job
    // summary). A rendering that fails is a failure here, not a format passed over. The
    // letter is left out: it is written to the subject and names them.
    let renderings = [
        (ReportKind::Evidence, Format::Markdown),
        (ReportKind::Evidence, Format::Html),
        (ReportKind::Evidence, Format::Json),
        (ReportKind::Summary, Format::Markdown),
    ];
    for (kind, format) in renderings {
        {
            let out = render(&v, kind, format, None)
                .unwrap_or_else(|e| panic!("{kind:?} {format:?} does not render: {e}"));
            assert!(!out.contains(EMAIL), "{kind:?} {format:?} holds the email");
            assert!(
                !out.to_lowercase().contains("ana.lopez"),
                "{kind:?} {format:?}"
            );
            assert!(
                !out.contains(OBJECT_ID),
                "{kind:?} {format:?} holds the object id"
            );
        }
    }
}

#[test]
fn days_left_counts_to_the_deadline() {
    let v = view();
    assert_eq!(v.request.deadline.to_string(), "2026-04-02");
    assert_eq!(v.request.days_left, 13);
    let late = RunView::build(
        &fixture::run("delete"),
        &fixture::outcomes(),
        chrono::NaiveDate::from_ymd_opt(2026, 4, 5).unwrap(),
    );
    assert!(late.request.overdue);
    assert_eq!(late.request.days_overdue, 3);
}

#[test]
fn override_directory_wins_and_strict_mode_names_the_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("summary.md.hbs"),
        "run {{run_id}} for {{request.id}}",
    )
    .unwrap();
    let out = render(
        &view(),
        ReportKind::Summary,
        Format::Markdown,
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(out, "run 01JQ0000000000000000000000 for r-2026-0042");

    std::fs::write(
        dir.path().join("evidence.md.hbs"),
        "{{request.no_such_field}}",
    )
    .unwrap();
    let err = render(
        &view(),
        ReportKind::Evidence,
        Format::Markdown,
        Some(dir.path()),
    )
    .unwrap_err();
    assert!(
        matches!(err, ReportError::Render { ref name, .. } if name == "evidence.md.hbs"),
        "{err}"
    );
    assert!(err.to_string().contains("evidence.md.hbs"));

    // The built-in one still works where no override exists.
    render(
        &view(),
        ReportKind::Evidence,
        Format::Html,
        Some(Path::new("/nonexistent")),
    )
    .unwrap();
}

#[test]
fn html_escapes_values() {
    let mut run = fixture::run("delete");
    run.plan.services[0]
        .notes
        .push("<script>alert(1)</script>".into());
    let v = RunView::build(&run, &fixture::outcomes(), fixture::today());
    let html = render(&v, ReportKind::Evidence, Format::Html, None).unwrap();
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn export_letter_says_how_to_get_the_data() {
    let v = RunView::build(
        &fixture::run("export"),
        &fixture::outcomes(),
        fixture::today(),
    );
    let md = render(&v, ReportKind::Letter, Format::Markdown, None).unwrap();
    assert!(md.contains("## How to get your data"));
    assert!(md.contains("manifest.json"));
    let del = render(&view(), ReportKind::Letter, Format::Markdown, None).unwrap();
    assert!(!del.contains("How to get your data"));
}

#[test]
fn formats_that_do_not_exist_say_which_do() {
    let err = render(&view(), ReportKind::Summary, Format::Html, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the summary report has no html format; available: md"
    );
}
