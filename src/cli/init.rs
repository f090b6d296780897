//! `dsrctl init`: a small starter project that validates, or (`--example`) the example
//! project that runs end to end against `dsrctl emulate`.

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

fn starter(dir: &Path) -> Result<Outcome> {
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
