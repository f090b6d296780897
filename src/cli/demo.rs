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
        return emulate_saas(name, addr).await;
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

/// Serves the emulator of one SaaS service until Ctrl-C.
#[cfg(feature = "saas-emulators")]
async fn emulate_saas(name: &str, addr: std::net::SocketAddr) -> Result<Outcome> {
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
    Ok(Outcome::Ok)
}

#[cfg(not(feature = "saas-emulators"))]
async fn emulate_saas(name: &str, _addr: std::net::SocketAddr) -> Result<Outcome> {
    anyhow::bail!(
        "no emulator for the service `{name}`: this dsrctl was built without the `saas-emulators` feature"
    )
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
    let saas = DemoSaas::start(&dir).await?;
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
        command: Command::Demo(DemoArgs {
            dir: None,
            serve: None,
        }),
    };
    banner(&format!(
        "The example project, copied to {}; the emulator serves on {}",
        dir.display(),
        emulator.addr
    ));
    saas.describe();

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
    if let Some(addr) = args.serve {
        let outcome = serve_console(&cli, addr, color).await;
        emulator.shutdown().await;
        saas.shutdown().await;
        return outcome;
    }
    banner(&format!(
        "Done. Everything is in {}: `dsrctl -C {} runs` lists the runs.",
        dir.display(),
        dir.display()
    ));
    emulator.shutdown().await;
    saas.shutdown().await;
    Ok(Outcome::Ok)
}

/// The catalogue's services the demo adds to the example project, each with its emulator
/// started in this process (none in a build without the `saas-emulators` feature).
struct DemoSaas {
    #[cfg(feature = "saas-emulators")]
    running: Vec<crate::emulator::saas::SaasEmulator>,
}

#[cfg(feature = "saas-emulators")]
impl DemoSaas {
    /// The services added.
    const SERVICES: [crate::emulator::saas::Service; 2] = [
        crate::emulator::saas::Service::Intercom,
        crate::emulator::saas::Service::Braze,
    ];

    /// Starts the emulators (Alice moved to her Contoso address, so they hold her data) and
    /// adds the services to the project in `dir` as `dsrctl catalogue add` does, pointed at
    /// them.
    async fn start(dir: &Path) -> Result<DemoSaas> {
        let mut running = Vec::new();
        for service in Self::SERVICES {
            let name = service.name();
            let emulator = crate::emulator::saas::start(service, "127.0.0.1:0".parse()?)
                .await
                .with_context(|| format!("starting the {name} emulator"))?;
            emulator.rename_email("alice@example.com", "alice@contoso.com");
            super::catalogue::add(dir, name)?;
            let entry = super::catalogue::ENTRIES
                .iter()
                .find(|e| e.name == name)
                .with_context(|| format!("no catalogue entry for {name}"))?;
            let config_path = dir.join("dsrctl.yaml");
            let mut config =
                std::fs::read_to_string(&config_path).context("reading dsrctl.yaml")?;
            for line in entry.connector.lines() {
                let line = line.split(" #").next().unwrap_or(line).trim();
                if let Some(url) = line.strip_prefix("base_url: ") {
                    config = config.replace(url, &emulator.base_url());
                }
                if let Some(secret) = line.strip_prefix("token: ") {
                    config = config.replace(secret, &format!("{{ file: {name}.secret }}"));
                }
            }
            std::fs::write(&config_path, config).context("writing dsrctl.yaml")?;
            std::fs::write(
                dir.join(format!("{name}.secret")),
                format!("{}\n", service.credential()),
            )
            .with_context(|| format!("writing {name}.secret"))?;
            running.push(emulator);
        }
        Ok(DemoSaas { running })
    }

    fn describe(&self) {
        for e in &self.running {
            outln!(
                "SaaS catalogue: policies/{}.yaml, its emulator on {}",
                e.service.name(),
                e.base_url()
            );
        }
    }

    async fn shutdown(self) {
        for e in self.running {
            e.shutdown().await;
        }
    }
}

#[cfg(not(feature = "saas-emulators"))]
impl DemoSaas {
    async fn start(_dir: &Path) -> Result<DemoSaas> {
        Ok(DemoSaas {})
    }

    fn describe(&self) {}

    async fn shutdown(self) {}
}

/// The sample requests of the console: (request file, days since received, what happens).
const CONSOLE_SAMPLES: &[(&str, u64, Sample)] = &[
    ("delete-alice-ccpa.yaml", 50, Sample::Received),
    ("fabrikam-delete-frank.yaml", 40, Sample::Received),
    ("delete-alice.yaml", 6, Sample::Received),
    ("fabrikam-delete-frank.yaml", 12, Sample::Declined),
    ("rectify-alice.yaml", 25, Sample::Extended),
    ("delete-alice.yaml", 9, Sample::Approved),
    ("delete-alice.yaml", 15, Sample::Failed),
    ("restrict-alice.yaml", 3, Sample::Approved),
    ("access-alice.yaml", 2, Sample::Completed),
    ("fabrikam-access-alice.yaml", 1, Sample::Received),
];

#[derive(Clone, Copy)]
enum Sample {
    /// Recorded only (awaiting approval unless its plan needs none).
    Received,
    /// Approved: the worker runs it (it may wait for a manual task).
    Approved,
    /// Declined with a reason.
    Declined,
    /// Its deadline extended with a reason.
    Extended,
    /// Run, its manual tasks recorded done: completed.
    Completed,
    /// Approved and run, a manual task recorded failed with the reason: failed.
    Failed,
}

/// Records the console's sample requests, adds an API token for it, and serves the console
/// with the worker until Ctrl-C.
async fn serve_console(cli: &Cli, addr: std::net::SocketAddr, color: bool) -> Result<Outcome> {
    banner("5. The operator console: sample requests in every state");
    let secret = hex::encode(rand::random::<[u8; 24]>());
    std::fs::write("console.token", format!("{secret}\n")).context("writing console.token")?;
    let mut config = std::fs::read_to_string("dsrctl.yaml").context("reading dsrctl.yaml")?;
    config.push_str(
        "\n# The operator console of `dsrctl demo --serve` signs in with this token.\napi:\n  tokens:\n    - { name: demo, secret: { file: console.token }, tenants: [contoso, fabrikam], roles: [operator, approver, auditor] }\n",
    );
    std::fs::write("dsrctl.yaml", config).context("writing dsrctl.yaml")?;
    let ws = super::workspace::Workspace::open(Path::new("."), color).await?;
    let wf = ws.workflow_as("demo", None);
    let today = chrono::Utc::now().date_naive();
    for (n, (file, days, sample)) in CONSOLE_SAMPLES.iter().enumerate() {
        let path = Path::new("requests").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut request = crate::load::load_request_str(file, &text).map_err(|d| {
            anyhow::anyhow!(
                "{file}: {}",
                d.iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        request.id = format!("console-{:02}-{}", n + 1, request.kind);
        request.received = today - chrono::Days::new(*days);
        wf.receive(&request, Some("intake")).await?;
        match sample {
            Sample::Received | Sample::Completed => {}
            Sample::Approved | Sample::Failed => {
                // One that needs no approval was approved on intake.
                let _ = wf
                    .approve_request_because(&request.id, "demo", Some("identity checked"))
                    .await;
            }
            Sample::Declined => {
                wf.decline_request(
                    &request.id,
                    "the requester could not prove the identity",
                    Some("demo"),
                )
                .await?;
            }
            Sample::Extended => {
                wf.extend_request(
                    &request.id,
                    "complex request: three systems to correct by hand",
                    Some("demo"),
                )
                .await?;
            }
        }
        outln!(
            "recorded {} ({days} {} ago)",
            request.id,
            if *days == 1 { "day" } else { "days" }
        );
    }
    settle_samples(&ws).await?;
    ws.store.close().await;
    let url = if addr.port() == 0 {
        "/console at the address below".to_owned()
    } else {
        format!("http://{addr}/console")
    };
    outln!(
        "\nThe operator console: {url}\nSign in with the API token {secret}\n(in console.token; `api.tokens` of dsrctl.yaml). Ctrl-C stops it.\n"
    );
    let args = super::args_lifecycle::ServeArgs {
        worker: super::args_lifecycle::WorkerArgs {
            worker: Some("demo".into()),
            lease: std::time::Duration::from_secs(60),
            concurrency: 4,
            batch: None,
            parallelism: None,
        },
        every: Some(std::time::Duration::from_secs(2)),
        schedule: None,
        listen: Some(addr),
        drain_timeout: std::time::Duration::from_secs(25),
        tls_cert: None,
        tls_key: None,
    };
    super::cmd_tick::serve(cli, &args, color).await
}

/// Runs the samples that need no approval until they wait for people, then records the tasks
/// of the `Completed` ones done until they complete, and those of the `Failed` ones failed.
async fn settle_samples(ws: &super::workspace::Workspace) -> Result<()> {
    let scheduler = crate::workflow::Scheduler::new(
        ws.project.clone(),
        ws.store.clone(),
        &ws.state_dir,
        "demo",
    );
    let wf = ws.workflow_as("demo", None);
    let wanted = |request: &str| {
        CONSOLE_SAMPLES
            .iter()
            .enumerate()
            .find(|(n, (_, _, _))| request.starts_with(&format!("console-{:02}-", n + 1)))
            .map(|(_, (_, _, s))| *s)
    };
    for _ in 0..20 {
        while scheduler.tick().await?.moved_on() {}
        let mut settled = false;
        for task in crate::workflow::open_tasks(ws.store.as_ref(), 1000).await? {
            let settlement = match wanted(&task.run.request_id) {
                Some(Sample::Completed) => crate::workflow::TaskSettlement {
                    by: "demo".into(),
                    done: true,
                    note: Some("done as instructed".into()),
                    evidence: vec![("evidence.txt".into(), b"demo evidence\n".to_vec())],
                },
                Some(Sample::Failed) => crate::workflow::TaskSettlement {
                    by: "demo".into(),
                    done: false,
                    note: Some("the backup vendor did not confirm the expiry".into()),
                    evidence: Vec::new(),
                },
                _ => continue,
            };
            wf.settle_task_for_worker(&task.run, &task.outcome.instance, &settlement)
                .await?;
            settled = true;
        }
        if !settled {
            break;
        }
    }
    Ok(())
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
