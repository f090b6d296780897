//! The example project (Contoso: two tenants, the Azure seed services and a SQLite CRM),
//! built into the binary, written out for `dsrctl init --example` and `dsrctl demo`, so both
//! work from an installed `dsrctl` and not only from a clone of the repository.

use std::path::Path;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};

static PROJECT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/examples/contoso");
static POLICIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies");

/// The emulator address the example project's config names (`dsrctl emulate`'s default).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8790";

/// What the written project's README says, with `{addr}` for the emulator's address.
const README: &str = include_str!("starter/example-README.md");

/// Writes the example project into `to`, pointing it at the emulator on `addr`, with its
/// secrets in files, its policy pack under `policies/`, the JSON Schemas under `schemas/`
/// and its CRM databases created from their SQL scripts. Returns the files written.
pub async fn write(to: &Path, addr: &str) -> Result<Vec<String>> {
    if to.join("dsrctl.yaml").exists() {
        bail!(
            "{} already holds a project (dsrctl.yaml); choose an empty directory",
            to.display()
        );
    }
    let mut written = Vec::new();
    let mut put = |rel: &str, text: &[u8]| -> Result<()> {
        let path = to.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(rel.to_owned());
        Ok(())
    };
    for file in files(&PROJECT) {
        let rel = file.path().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(file.contents()).replace(DEFAULT_ADDR, addr);
        let text = if rel == "dsrctl.yaml" {
            // The secrets live in files of the project (the emulator accepts any non-empty one).
            text.replace("../../policies", "policies")
                .replace("../../schemas/", "schemas/")
                .replace("{ env: CONTOSO_CLIENT_SECRET }", "{ file: contoso.secret }")
                .replace("{ env: FABRIKAM_TOKEN }", "{ file: fabrikam.secret }")
        } else {
            text.replace("../../../schemas/", "../schemas/")
        };
        put(&rel, text.as_bytes())?;
    }
    // The SaaS catalogue is not part of the example; `dsrctl catalogue add` copies from it.
    for file in files(&POLICIES)
        .into_iter()
        .filter(|f| !f.path().starts_with("saas"))
    {
        put(
            &format!("policies/{}", file.path().to_string_lossy()),
            file.contents(),
        )?;
    }
    put("contoso.secret", b"demo-secret\n")?;
    put("fabrikam.secret", b"demo-token\n")?;
    put("README.md", README.replace("{addr}", addr).as_bytes())?;
    crate::load::write_schemas(&to.join("schemas"))?;
    written.push("schemas/".into());
    written.extend(seed_databases(to).await?);
    Ok(written)
}

/// Every file under `dir`, depth first, in name order.
fn files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        out.extend(files(sub));
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// Creates each example database (`crm.db`, ...) from its SQL script (`crm.sql`, ...).
async fn seed_databases(dir: &Path) -> Result<Vec<String>> {
    use sqlx::ConnectOptions;
    let mut created = Vec::new();
    for file in PROJECT.files() {
        let script = file.path();
        if script.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let db = script.with_extension("db");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join(&db))
            .create_if_missing(true)
            .connect()
            .await?;
        let sql = String::from_utf8_lossy(file.contents()).into_owned();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating {} from {}", db.display(), script.display()))?;
        created.push(db.to_string_lossy().into_owned());
    }
    created.sort();
    Ok(created)
}
