//! HTTPS for `serve --listen`: the certificate and key from `api.tls` in dsrctl.yaml (the key
//! by reference, like every secret) or from `--tls-cert`/`--tls-key`, served with rustls.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;

use crate::load::Project;
use crate::model::SecretRef;
use crate::secret::{EnvFileResolver, SecretResolver};

/// Where the certificate and key come from.
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub certificate: PathBuf,
    /// The private key (PEM), by reference.
    pub key: SecretRef,
}

impl TlsFiles {
    /// The flags when given (both, or neither: clap requires them together), else `api.tls`
    /// of the project; `None`: plain HTTP.
    pub fn choose(project: &Project, cert: Option<&Path>, key: Option<&Path>) -> Option<Self> {
        if let (Some(cert), Some(key)) = (cert, key) {
            return Some(TlsFiles {
                certificate: cert.to_path_buf(),
                key: SecretRef::File(key.display().to_string()),
            });
        }
        let tls = project.config.api.as_ref()?.tls.as_ref()?;
        Some(TlsFiles {
            certificate: project.root.join(&tls.certificate),
            key: tls.key.clone(),
        })
    }

    /// Reads and checks them, naming what is wrong before anything listens.
    pub async fn load(&self, project: &Project) -> Result<RustlsConfig> {
        let cert = std::fs::read(&self.certificate).with_context(|| {
            format!(
                "reading the TLS certificate `{}` (`api.tls.certificate` or --tls-cert)",
                self.certificate.display()
            )
        })?;
        let key = EnvFileResolver::new(&project.root)
            .resolve(&self.key)
            .map_err(|e| anyhow::anyhow!("the TLS key (`api.tls.key` or --tls-key): {e}"))?;
        RustlsConfig::from_pem(cert, key.into_bytes())
            .await
            .with_context(|| {
                format!(
                    "the TLS certificate `{}` and key do not make a server identity (PEM certificate chain, then a PKCS#8, PKCS#1 or SEC1 key that belongs to it)",
                    self.certificate.display()
                )
            })
    }
}
