//! `dsrctl init`: a small starter project that validates.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Outcome;

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

/// Writes the starter project into `dir`, refusing to overwrite an existing file.
pub fn init(dir: &Path) -> Result<Outcome> {
    for (rel, _) in FILES {
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
    outln!("next: `dsrctl validate`, then `dsrctl plan --offline requests/delete-jane.yaml`");
    Ok(Outcome::Ok)
}
