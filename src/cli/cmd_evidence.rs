//! `dsrctl evidence verify|public-key`: signed reports, checkpoints and export packages
//! checked offline with the public key, as an auditor would, without the project or its store.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Outcome;
use super::args_lifecycle::{EvidenceAction, EvidenceArgs};
use crate::journal::PublicKey;
use crate::report::verify_evidence;

/// `dsrctl evidence ...`.
pub fn evidence(project: &Path, args: &EvidenceArgs, color: bool) -> Result<Outcome> {
    match &args.action {
        EvidenceAction::PublicKey => {
            outln!("{}", project_key(project, color)?.to_hex());
            Ok(Outcome::Ok)
        }
        EvidenceAction::Verify(a) => {
            let key = match &a.public_key {
                Some(k) => public_key_arg(k)?,
                None => project_key(project, color).context(
                    "no --public-key given, and no project whose key could be used; pass the key the evidence was signed with",
                )?,
            };
            match verify_evidence(&a.path, &key) {
                Ok(checked) => {
                    for line in checked {
                        outln!("ok: {line}");
                    }
                    outln!("evidence verified: {}", a.path.display());
                    Ok(Outcome::Ok)
                }
                Err(problem) => {
                    outln!("REFUSED: {problem}");
                    Ok(Outcome::Problems)
                }
            }
        }
    }
}

/// A public key given on the command line: 64 hex digits, or a file holding them.
pub fn public_key_arg(arg: &str) -> Result<PublicKey> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_owned()
    };
    match PublicKey::from_hex(text.trim()) {
        Ok(k) => Ok(k),
        Err(e) => bail!("--public-key {arg}: {e}"),
    }
}

fn project_key(project: &Path, color: bool) -> Result<PublicKey> {
    let p = super::workspace::project(project, color)?;
    let state_dir = p.root.join(".dsrctl");
    Ok(crate::workflow::signing_key(&p, &state_dir)?.public_key())
}
