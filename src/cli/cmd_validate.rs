//! `dsrctl validate` and `dsrctl schema`.

use std::path::Path;

use anyhow::Result;

use super::Outcome;
use super::args::{DiagFormat, SchemaArgs, SchemaWhich, ValidateArgs};
use crate::load::{
    CACHE_FILE, Cache, SchemaKind, schema_json, validate_paths, validate_paths_with, write_schemas,
};

/// Checks the project or the given paths and prints every problem. Unchanged playbooks
/// take their findings from the validation cache in the state directory.
pub fn validate(project: &Path, args: &ValidateArgs) -> Result<Outcome> {
    let diags = if args.no_cache {
        validate_paths(project, &args.paths)
    } else {
        let state_dir = project.join(".dsrctl");
        let mut cache = Cache::load(&state_dir);
        let diags = validate_paths_with(project, &args.paths, Some(&mut cache));
        if let Err(e) = cache.save(&state_dir) {
            // The findings stand; the next run checks every file again.
            warn_note!(
                "could not write the validation cache {}: {e}",
                state_dir.join(CACHE_FILE).display()
            );
        }
        // The process ends after printing: freeing every entry one by one would cost more
        // than the rest of a warm run over a large project.
        std::mem::forget(cache);
        diags
    };
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
