//! Progress on a terminal (one bar per service) or plain lines otherwise; logging setup.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::LogFormat;
use crate::engine::Observer;
use crate::journal::{Plan, PlannedStep, StepOutcome, StepStatus};
use crate::report::Scrubber;

/// The log format chosen for this process: step lines follow it too.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Sets up `tracing` on stderr (`DSRCTL_LOG` filters, default `warn`). The template
/// engine's own debug lines print the values it renders (subject values, captured ids), so
/// they stay off whatever the filter asks.
pub fn init_logging(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_env("DSRCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        .add_directive("handlebars=warn".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Whether stderr carries JSON log lines (`--log-format json`).
pub fn json_logs() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// A line on stderr in the log format: as written, or one JSON object in the shape of the
/// other log lines (`level` INFO, WARN or ERROR; `fields` with the message and any extra).
pub fn note(level: &str, message: &str, fields: serde_json::Value) {
    if !json_logs() {
        eprintln!("{message}");
        return;
    }
    let mut all = serde_json::json!({ "message": message });
    if let (Some(all), serde_json::Value::Object(extra)) = (all.as_object_mut(), fields) {
        all.extend(extra);
    }
    let line = serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level,
        "fields": all,
        "target": "dsrctl",
    });
    eprintln!("{line}");
}

/// Shows step progress; subject values are scrubbed unless asked for.
pub struct Progress {
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    scrubber: Option<Scrubber>,
    json: bool,
    lines: Mutex<()>,
}

impl Progress {
    /// Bars on a terminal, lines otherwise; with `--log-format json`, one JSON object per
    /// line, in the shape of the other log lines.
    pub fn new(plan: &Plan, show_personal_data: bool) -> Self {
        let scrubber = (!show_personal_data).then(|| Scrubber::for_request(&plan.request));
        let json = json_logs();
        let bars = (std::io::stderr().is_terminal() && !json).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix:>24} [{bar:20}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let mut per_service: HashMap<String, u64> = HashMap::new();
            for s in &plan.steps {
                *per_service.entry(s.service.clone()).or_default() += 1;
            }
            let mut services: Vec<_> = per_service.into_iter().collect();
            services.sort();
            let bars = services
                .into_iter()
                .map(|(service, n)| {
                    let bar = multi.add(ProgressBar::new(n));
                    bar.set_style(style.clone());
                    bar.set_prefix(service.clone());
                    (service, bar)
                })
                .collect();
            (multi, bars)
        });
        Progress {
            bars,
            scrubber,
            json,
            lines: Mutex::new(()),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.scrubber {
            Some(s) => s.scrub(text),
            None => text.to_owned(),
        }
    }
}

impl Observer for Progress {
    fn started(&self, step: &PlannedStep, _instance: &str) {
        if let Some((_, bars)) = &self.bars
            && let Some(bar) = bars.get(&step.service)
        {
            bar.set_message(step.id.clone());
        }
    }

    fn finished(&self, step: &PlannedStep, outcome: &StepOutcome) {
        if outcome.instance != outcome.step {
            return;
        }
        let message = outcome.message.as_deref().map(|m| self.scrub(m));
        let line = if self.json {
            serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": if outcome.status == StepStatus::Failed { "ERROR" } else { "INFO" },
                "fields": {
                    "message": format!("{} {}", outcome.status.as_str(), step.key),
                    "step": step.key,
                    "status": outcome.status.as_str(),
                    "detail": message,
                    "attempts": outcome.attempts,
                },
                "target": "dsrctl::step",
            })
            .to_string()
        } else {
            let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
            format!("{:<9} {}{detail}", outcome.status.as_str(), step.key)
        };
        match &self.bars {
            Some((multi, bars)) => {
                if let Some(bar) = bars.get(&step.service) {
                    bar.inc(1);
                }
                let _ = multi.println(line);
            }
            None => {
                let _guard = self.lines.lock();
                eprintln!("{line}");
            }
        }
    }
}
