//! The HTML evidence report renders in headless Chromium (`DSRCTL_CHROMIUM` names the
//! executable; else `chromium` or `chromium-browser` on PATH). Without one the test fails in
//! CI and is skipped, visibly, elsewhere.

use std::path::PathBuf;
use std::process::Command;

use dsrctl::report::{Format, ReportKind, RunView, render};

use crate::emulator::missing;
use crate::fixture;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DSRCTL_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    })
}

#[test]
fn evidence_html_renders_in_headless_chromium() {
    let Some(exe) = chromium() else {
        missing(
            "chromium",
            "set DSRCTL_CHROMIUM or install Debian's chromium (as .ci/run does)",
        );
        return;
    };
    let view = RunView::build(
        &fixture::run("delete"),
        &fixture::outcomes(),
        fixture::today(),
    );
    let html = render(&view, ReportKind::Evidence, Format::Html, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("evidence.html");
    std::fs::write(&page, html).unwrap();
    let png = dir.path().join("evidence.png");
    let out = Command::new(&exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // No calls out of a machine whose network is closed.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    // Printing to PDF exercises the print stylesheet.
    let pdf = dir.path().join("evidence.pdf");
    let out = Command::new(&exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // No calls out of a machine whose network is closed.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile2").display()
        ))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium print failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
    if let Some(keep) = std::env::var_os("DSRCTL_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}
