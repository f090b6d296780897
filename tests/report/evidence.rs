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

/// The record around a run that an auditor asks about: the approver (from the audit log), a
/// granted extension, the audit head, when the report was made, and the manual task's
/// assignee from the step's own manual connector.
fn audited_view() -> RunView {
    use dsrctl::journal::{RequestRecord, RequestState};
    use dsrctl::model::ProjectConfig;
    use dsrctl::report::ReportContext;
    use dsrctl::store::{AuditEntry, GENESIS_HASH};

    let mut run = fixture::run("delete");
    // The step names no assignee: the one of its connector `ops` applies, not another
    // manual connector of the tenant listed before it.
    for s in &mut run.plan.steps {
        if let dsrctl::journal::PlannedAction::Manual(m) = &mut s.action {
            m.assignee = None;
        }
    }
    let config: ProjectConfig = serde_json::from_value(serde_json::json!({
        "tenants": {"contoso": {"connectors": {
            "aaa-helpdesk": {"kind": "manual", "assignee": "helpdesk@contoso"},
            "ops": {"kind": "manual", "assignee": "secops@contoso"}
        }}},
        "controller": {"name": "Contoso Ltd", "contact": "privacy@contoso.example"}
    }))
    .unwrap();
    // A delete with nothing checking its effect afterwards.
    let mut outcomes = fixture::outcomes();
    for o in &mut outcomes {
        if o.instance == "entra-users/delete-user" {
            o.verification = None;
        }
    }
    // The log: the approval, each outcome as journaled, the extension.
    let mut drafts = vec![(
        "2026-03-10T08:59:00Z",
        "approved",
        "r-2026-0042".to_owned(),
        serde_json::json!({"kind": "delete"}),
        Some("Dana (DPO)"),
    )];
    for o in outcomes.iter().filter(|o| o.is_audited()) {
        drafts.push((
            "2026-03-10T09:02:00Z",
            dsrctl::store::STEP_OUTCOME,
            run.id.clone(),
            serde_json::json!({"instance": o.instance, "status": o.status.as_str(),
                               "digest": o.digest()}),
            None,
        ));
    }
    drafts.push((
        "2026-03-11T10:00:00Z",
        "request.extended",
        "r-2026-0042".to_owned(),
        serde_json::json!({}),
        Some("Dana (DPO)"),
    ));
    let mut audit: Vec<AuditEntry> = Vec::new();
    for (at, kind, subject, detail, actor) in drafts {
        let prev = audit
            .last()
            .map_or((0, GENESIS_HASH.to_owned()), |e| (e.seq, e.hash.clone()));
        audit.push(AuditEntry::chained(
            (prev.0, &prev.1),
            fixture::ts(at),
            kind,
            &subject,
            detail,
            actor,
            Some(b"key"),
        ));
    }
    let record = RequestRecord {
        request: run.plan.request.clone(),
        state: RequestState::Failed,
        reason: None,
        received: run.plan.request.received,
        deadline: chrono::NaiveDate::from_ymd_opt(2026, 6, 2).unwrap(),
        extended: true,
        extension_reason: Some("the legacy archive must be searched by hand".into()),
        created_at: fixture::ts("2026-03-02T10:00:00Z"),
        updated_at: fixture::ts("2026-03-11T10:00:00Z"),
    };
    let head = audit.last().map(|e| (e.seq, e.hash.clone()));
    let ctx = ReportContext {
        config: Some(&config),
        request: Some(&record),
        audit: Some(&audit),
        audit_head: head,
        audit_break: None,
        generated_at: Some(fixture::ts("2026-03-20T12:00:00Z")),
    };
    RunView::build_with(&run, &outcomes, fixture::today(), &ctx)
}

#[test]
fn evidence_answers_an_auditor() {
    let v = audited_view();
    let md = render(&v, ReportKind::Evidence, Format::Markdown, None).unwrap();
    for wanted in [
        "| Approved by | **Dana (DPO)** at 2026-03-10 08:59:00 UTC (audit entry 1) |",
        "| Extension granted | to **2026-06-02**: the legacy archive must be searched by hand |",
        // Days left count to the extended deadline.
        "| Days left on 2026-03-20 | 74 |",
        "assigned to secops@contoso",
        "**1 unverified**",
        "| Report generated | 2026-03-20 12:00:00 UTC |",
        "| Audit log | head entry 7,",
        "intact",
    ] {
        assert!(md.contains(wanted), "missing {wanted:?} in\n{md}");
    }
    insta::assert_snapshot!("evidence_audited_md", md);
}

#[test]
fn no_extension_is_shown_when_none_was_granted() {
    let md = render(&view(), ReportKind::Evidence, Format::Markdown, None).unwrap();
    assert!(!md.contains("extended"), "{md}");
    assert!(md.contains("| Days left on 2026-03-20 | 13 |"), "{md}");
}

/// The letter for an access request: controller and date, the subject's name, the services'
/// titles rather than internal names, Art. 15(1) information, a date no listed item is due
/// after; in German when the subject asked in German.
#[test]
fn access_letter_answers_art_15_in_the_subjects_language() {
    let mut run = fixture::run("access");
    run.plan.request.name = Some("Ana López".into());
    for s in &mut run.plan.services {
        if s.service == "entra-users" {
            s.title = Some("Your staff account".into());
            s.processing = Some(dsrctl::model::Processing {
                purposes: vec!["running your account".into()],
                recipients: vec!["Microsoft Ireland (hosting)".into()],
                retention: Some("until your account is closed, then 30 days".into()),
                source: Some("your employer's HR system".into()),
            });
        }
    }
    let config: dsrctl::model::ProjectConfig = serde_json::from_value(serde_json::json!({
        "tenants": {"contoso": {"connectors": {}}},
        "controller": {"name": "Contoso Ltd", "contact": "privacy@contoso.example",
                       "address": "1 Main Street, Dublin", "signatory": "Dana Fischer, DPO"}
    }))
    .unwrap();
    let ctx = dsrctl::report::ReportContext {
        config: Some(&config),
        generated_at: Some(fixture::ts("2026-03-20T12:00:00Z")),
        ..Default::default()
    };
    let v = RunView::build_with(&run, &fixture::outcomes(), fixture::today(), &ctx);
    let en = render(&v, ReportKind::Letter, Format::Markdown, None).unwrap();
    for wanted in [
        "**Contoso Ltd**, 1 Main Street, Dublin, privacy@contoso.example",
        "2026-03-20",
        "Dear Ana López,",
        "**Your staff account**",
        "- Why we process it: running your account",
        "- Who receives it: Microsoft Ireland (hosting)",
        "- How long we keep it: until your account is closed, then 30 days",
        "- Where it comes from: your employer's HR system",
        // The deferred purge check is due 2026-04-09, after the deadline of 2026-04-02.
        "We will complete them by 2026-04-09",
        "Dana Fischer, DPO, Contoso Ltd",
    ] {
        assert!(en.contains(wanted), "missing {wanted:?} in\n{en}");
    }
    assert!(
        !en.contains("entra-users"),
        "internal names stay out:\n{en}"
    );
    insta::assert_snapshot!("letter_access_md", en);

    let mut german = run.clone();
    german.plan.request.language = Some("de-AT".into());
    let v = RunView::build_with(&german, &fixture::outcomes(), fixture::today(), &ctx);
    let de = render(&v, ReportKind::Letter, Format::Markdown, None).unwrap();
    assert!(de.contains("Guten Tag Ana López,"), "{de}");
    assert!(de.contains("- Zwecke: running your account"), "{de}");
    assert!(de.contains("nach der DSGVO"), "{de}");
    let html = render(&v, ReportKind::Letter, Format::Html, None).unwrap();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    // The evidence report never carries the subject's name.
    let json = render(&v, ReportKind::Evidence, Format::Json, None).unwrap();
    assert!(!json.contains("Ana López"));
}

/// One day is "1 day", left or overdue, in the summary and the evidence report.
#[test]
fn one_day_is_said_in_the_singular() {
    let deadline = fixture::today() + chrono::Duration::days(13);
    for (as_of, said) in [
        (deadline - chrono::Duration::days(1), "1 day left"),
        (deadline + chrono::Duration::days(1), "overdue by 1 day**"),
    ] {
        let v = RunView::build(&fixture::run("delete"), &fixture::outcomes(), as_of);
        let summary = render(&v, ReportKind::Summary, Format::Markdown, None).unwrap();
        assert!(summary.contains(said), "{summary}");
        let evidence = render(&v, ReportKind::Evidence, Format::Html, None).unwrap();
        assert!(!evidence.contains("1 days"), "{evidence}");
    }
}
