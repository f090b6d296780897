//! `dsrctl init`: a small starter project that validates, or (`--example`) the example
//! project that runs end to end against `dsrctl emulate`. The starter's evidence keys are made
//! (kept in `keys/`, which its `.gitignore` keeps out of git) so that its first run is audited
//! and its reports signed.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Outcome;
use super::args::InitArgs;

const FILES: &[(&str, &str)] = &[
    ("dsrctl.yaml", include_str!("starter/dsrctl.yaml")),
    (
        "policies/crm.yaml",
        include_str!("starter/policies/crm.yaml"),
    ),
    (
        "requests/delete-jane.yaml",
        include_str!("starter/requests/delete-jane.yaml"),
    ),
    (".gitignore", include_str!("starter/gitignore")),
];

/// Writes the starter (or example) project, refusing to overwrite an existing file.
pub async fn init(args: &InitArgs) -> Result<Outcome> {
    if args.example {
        return example(&args.dir, &args.emulator).await;
    }
    starter(&args.dir)
}

async fn example(dir: &Path, addr: &str) -> Result<Outcome> {
    for rel in super::example::write(dir, addr).await? {
        outln!("wrote {}", dir.join(rel).display());
    }
    outln!(
        "next: `dsrctl emulate` in another terminal, then in {}: `dsrctl validate` and \
         `dsrctl run requests/delete-alice.yaml --approve \"your name\"` (README.md says more)",
        dir.display()
    );
    Ok(Outcome::Ok)
}

/// Makes the evidence keys `dsrctl.yaml` refers to, readable by their owner only.
fn write_keys(dir: &Path) -> Result<()> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
    let signing = crate::journal::SigningKey::generate_secret();
    for (name, secret) in [
        ("audit.key", hex::encode(rand::random::<[u8; 32]>())),
        ("signing.key", signing),
    ] {
        let path = keys.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn starter(dir: &Path) -> Result<Outcome> {
    for rel in FILES
        .iter()
        .map(|(r, _)| *r)
        .chain(["keys/audit.key", "keys/signing.key"])
    {
        if dir.join(rel).exists() {
            bail!(
                "{} exists already; `dsrctl init` writes only into a fresh directory",
                dir.join(rel).display()
            );
        }
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        outln!("wrote {}", path.display());
    }
    let schemas = dir.join("schemas");
    crate::load::write_schemas(&schemas)
        .with_context(|| format!("writing {}", schemas.display()))?;
    outln!(
        "wrote {} (editor completion through the `$schema` lines)",
        schemas.display()
    );
    write_keys(dir)?;
    outln!(
        "wrote {} (the audit log's key and the evidence signing key; keep them out of git and away from the state store)",
        dir.join("keys").display()
    );
    outln!(
        "auditors check signed reports and packages with the public key `dsrctl evidence public-key` prints"
    );
    let enter = if dir == Path::new(".") {
        String::new()
    } else {
        format!("`cd {}`, then ", dir.display())
    };
    outln!(
        "next: {enter}`dsrctl validate` and `dsrctl plan --offline requests/delete-jane.yaml`; \
         `dsrctl init --example DIR` writes a project that runs against `dsrctl emulate`"
    );
    Ok(Outcome::Ok)
}
