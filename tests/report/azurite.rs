//! Starts the Azurite emulator for a test, on free ports, in memory.

use std::process::Command;

use sha2::{Digest, Sha256};

use crate::emulator::{Emulator, find, free_port, missing};

pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running emulator, stopped when dropped.
pub struct Azurite {
    _process: Emulator,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Starts Azurite, or returns `None` (after printing why) when it is not installed.
    pub fn start() -> Option<Azurite> {
        let Some(exe) = find("DSRCTL_AZURITE", "node_modules/.bin/azurite") else {
            missing("azurite", "set DSRCTL_AZURITE or run `npm ci` in the repo");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ])
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--queuePort",
            &free_port().to_string(),
            "--tablePort",
            &free_port().to_string(),
        ])
        .current_dir(dir.path());
        Some(Azurite {
            _process: Emulator::start(cmd, port),
            port,
            _dir: dir,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// Creates a container (object_store cannot), signed with the account key.
    pub async fn create_container(&self, name: &str) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, KEY).unwrap();
        let sig = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            hmac_sha256(&key, to_sign.as_bytes()),
        );
        let resp = reqwest::Client::new()
            .put(format!("{}/{name}?restype=container", self.endpoint()))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Authorization", format!("SharedKey {ACCOUNT}:{sig}"))
            .header("Content-Length", "0")
            .send()
            .await
            .expect("create container");
        let status = resp.status();
        assert!(
            status.is_success(),
            "create container: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}
