//! `dsrctl emulate` and `dsrctl demo`: the Azure API emulator, and the example project run
//! end to end against it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Outcome;
use super::args::{
    ApplyArgs, Cli, ColorChoice, Command, DemoArgs, EmulateArgs, LogFormat, PlanArgs, PlanFormat,
    ReportArgs, ReportFormat, RunArgs,
};
use crate::emulator::{Fixture, start};

/// Serves the emulator until Ctrl-C.
pub async fn emulate(args: &EmulateArgs) -> Result<Outcome> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    if let Some(name) = &args.service {
        let service = crate::emulator::saas::Service::from_name(name)
            .with_context(|| format!("no emulator for the service `{name}`"))?;
        let emulator = crate::emulator::saas::start(service, addr)
            .await
            .with_context(|| format!("starting the {name} emulator on {addr}"))?;
        outln!(
            "{name} emulator listening; base URL {}",
            emulator.base_url()
        );
        outln!("  credential: {}", service.credential());
        outln!("Ctrl-C stops it.");
        tokio::signal::ctrl_c().await?;
        emulator.shutdown().await;
        return Ok(Outcome::Ok);
    }
    let emulator = start(Fixture::contoso(), addr)
        .await
        .with_context(|| format!("starting the emulator on {addr}"))?;
    outln!("emulator listening on http://{}", emulator.addr);
    for tenant in ["contoso", "fabrikam"] {
        outln!(
            "  {tenant}: {}/{{graph/v1.0,adt,dps,iotc/api}}",
            emulator.tenant_url(tenant)
        );
    }
    outln!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(Outcome::Ok)
}

/// Copies the example project, starts the emulator, and runs a deletion end to end: dry
/// run with its diff, apply, evidence report; then an export with its package.
pub async fn demo(cli: &Cli, args: &DemoArgs, color: bool) -> Result<Outcome> {
    let emulator = start(Fixture::contoso(), "127.0.0.1:0".parse()?).await?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "dsrctl-demo-{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        )),
    };
    super::example::write(&dir, &emulator.addr.to_string()).await?;
    std::env::set_current_dir(&dir).with_context(|| format!("entering {}", dir.display()))?;
    let cli = Cli {
        project: PathBuf::from("."),
        log_format: LogFormat::Text,
        show_personal_data: cli.show_personal_data,
        color: if color {
            ColorChoice::Always
        } else {
            ColorChoice::Never
        },
        command: Command::Demo(DemoArgs { dir: None }),
    };
    banner(&format!(
        "The example project, copied to {}; the emulator serves on {}",
        dir.display(),
        emulator.addr
    ));

    let newest_run = || async {
        let ws = super::workspace::Workspace::open(Path::new("."), color).await?;
        let run = ws
            .store
            .runs(1)
            .await?
            .first()
            .context("no run was recorded")?
            .id
            .clone();
        ws.store.close().await;
        anyhow::Ok(run)
    };
    let report =
        |run: &str, format, template: &str, out: Option<&str>, package: Option<&str>| ReportArgs {
            run: run.to_owned(),
            format,
            template: template.into(),
            out: out.map(PathBuf::from),
            package: package.map(PathBuf::from),
            deliver: false,
        };

    if let Some(export) = first_request(&dir, "export")? {
        banner(&format!(
            "1. Export request {}: the data subject's package",
            export.display()
        ));
        let run_args = RunArgs {
            request: export,
            approve: Some("demo".into()),
            again: false,
            reason: None,
            parallelism: None,
        };
        super::cmd_run::run(&cli, &run_args, color).await?;
        let run = newest_run().await?;
        let args = report(
            &run,
            ReportFormat::Md,
            "letter",
            Some("letter.md"),
            Some("export-package"),
        );
        super::cmd_report::report(&cli, &args, color).await?;
    }

    banner("2. Dry run of requests/delete-alice.yaml: reads only, shows what would change");
    let plan_args = PlanArgs {
        request: Some("requests/delete-alice.yaml".into()),
        offline: false,
        out: Some("delete-alice.plan.json".into()),
        format: PlanFormat::Text,
        detailed_exitcode: false,
        compare: None,
        parallelism: None,
    };
    super::cmd_plan::plan(&cli, &plan_args, color).await?;

    banner("3. Apply exactly that plan (approved by \"demo\")");
    let apply = ApplyArgs {
        plan: "delete-alice.plan.json".into(),
        approve: Some("demo".into()),
        detailed_exitcode: false,
        parallelism: None,
    };
    super::cmd_plan::apply(&cli, &apply, color).await?;

    banner("4. Evidence report (also written as evidence.html)");
    let run = newest_run().await?;
    super::cmd_report::report(
        &cli,
        &report(&run, ReportFormat::Md, "summary", None, None),
        color,
    )
    .await?;
    let html = report(
        &run,
        ReportFormat::Html,
        "evidence",
        Some("evidence.html"),
        None,
    );
    super::cmd_report::report(&cli, &html, color).await?;
    banner(&format!(
        "Done. Everything is in {}: `dsrctl -C {} runs` lists the runs.",
        dir.display(),
        dir.display()
    ));
    emulator.shutdown().await;
    Ok(Outcome::Ok)
}

fn banner(text: &str) {
    outln!("\n== {text}\n");
}

fn first_request(dir: &Path, kind: &str) -> Result<Option<PathBuf>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.join("requests"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{kind}-")))
        })
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .next()
        .map(|p| PathBuf::from("requests").join(p.file_name().unwrap_or_default())))
}
