//! `dsrctl validate` and `dsrctl schema`.

use std::path::Path;

use anyhow::Result;

use super::Outcome;
use super::args::{DiagFormat, SchemaArgs, SchemaWhich, ValidateArgs};
use crate::load::{SchemaKind, schema_json, validate_paths, write_schemas};

/// Checks the project or the given paths and prints every problem.
pub fn validate(project: &Path, args: &ValidateArgs) -> Result<Outcome> {
    let diags = validate_paths(project, &args.paths);
    let color = super::use_color(super::args::ColorChoice::Auto);
    let text = match args.format {
        DiagFormat::Human => diags.render_human(color),
        DiagFormat::Json => diags.render_json(),
        DiagFormat::Sarif => diags.render_sarif(),
        DiagFormat::Github => diags.render_github(),
    };
    if args.format == DiagFormat::Human && !diags.has_errors() {
        out!("{text}");
        outln!("ok: the project is valid");
    } else {
        out!("{text}");
    }
    Ok(if diags.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// Prints one schema, or writes them all.
pub fn schema(args: &SchemaArgs) -> Result<Outcome> {
    if let Some(dir) = &args.write {
        write_schemas(dir)?;
        std::fs::write(dir.join("openapi.json"), super::serve::openapi_json())?;
        outln!("wrote the schemas into {}", dir.display());
        return Ok(Outcome::Ok);
    }
    let kind = match args.which {
        Some(SchemaWhich::Playbook) | None => SchemaKind::Playbook,
        Some(SchemaWhich::Request) => SchemaKind::Request,
        Some(SchemaWhich::Config) => SchemaKind::Config,
        Some(SchemaWhich::Openapi) => {
            out!("{}", super::serve::openapi_json());
            return Ok(Outcome::Ok);
        }
    };
    out!("{}", schema_json(kind));
    Ok(Outcome::Ok)
}
