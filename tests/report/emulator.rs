//! An emulator process started for a test (Azurite, moto): found through an environment
//! variable or its copy in the repo, listening on a free port, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::tools::missing;

/// A running emulator, stopped when dropped.
pub struct Emulator {
    child: Child,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The executable: the path in `var`, else `local` (relative to the repo) when it exists.
pub fn find(var: &str, local: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(local);
    local.exists().then_some(local)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Emulator {
    /// Runs `cmd` (quietly) and waits until `port` takes connections.
    pub fn start(mut cmd: Command, port: u16) -> Emulator {
        let name = cmd.get_program().to_string_lossy().into_owned();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let emulator = Emulator { child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }
}
