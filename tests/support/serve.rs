//! `dsrctl serve --listen` on an ephemeral port, for the API and console tests.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `dsrctl serve --listen 127.0.0.1:0` with its worker ticking every 200 ms;
/// killed when dropped.
pub struct Serve {
    child: tokio::process::Child,
    /// The address it printed, e.g. `http://127.0.0.1:40123`.
    pub base: String,
}

impl Serve {
    /// Starts it in project `dir` as worker `worker`, with `env` (the tokens' secrets), and
    /// waits until it says where it listens.
    pub async fn start(dir: &Path, worker: &str, env: &[(&str, &str)]) -> Serve {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
            .arg("-C")
            .arg(dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--every",
                "200ms",
                "--worker",
                worker,
            ])
            .envs(env.iter().copied())
            .env("DSRCTL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("serve ended without listening");
        })
        .await
        .expect("serve listens within a minute");
        // Keep reading what the worker prints, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
