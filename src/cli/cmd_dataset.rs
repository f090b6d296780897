//! `dsrctl dataset introspect`, `dsrctl coverage` and `dsrctl import fides`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::Outcome;
use super::args::{Cli, DiagFormat};
use super::args_dataset::{CoverageArgs, DatasetArgs, DatasetCommand, FidesArgs, ImportArgs};
use super::yaml_out::to_yaml;
use crate::connectors::sql::SqlClient;
use crate::connectors::sql::introspect::LiveSchema;
use crate::load::dataset::{LiveReference, LiveTableView, LiveView, coverage as cover};
use crate::load::{Diagnostics, load_project, parse_yaml};
use crate::model::{ConnectorConfig, ProjectConfig, UrlSource};
use crate::secret::{EnvFileResolver, SecretResolver};

/// `dsrctl dataset ...`.
pub async fn dataset(cli: &Cli, args: &DatasetArgs) -> Result<Outcome> {
    match &args.command {
        DatasetCommand::Introspect(a) => {
            let project = load_project(&cli.project).map_err(problems)?;
            let tenant = match &a.tenant {
                Some(t) => t.clone(),
                None => only_tenant(&project.config)?,
            };
            let client = sql_client(&project.config, &tenant, &a.connector, &cli.project)?;
            let live = client.introspect(a.schema.as_deref()).await;
            client.close().await;
            let live = view(&live?);
            let service = a.service.clone().unwrap_or_else(|| a.connector.clone());
            let text = crate::load::dataset::draft_playbook(&service, &a.connector, &live);
            match &a.output {
                Some(path) => {
                    std::fs::write(path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    note!(
                        "wrote a draft of {} table(s) to {}; review every `review:` (dsrctl validate lists them)",
                        live.tables.len(),
                        path.display()
                    );
                }
                None => out!("{text}"),
            }
            Ok(Outcome::Ok)
        }
    }
}

/// `dsrctl coverage`: every dataset playbook against its connector's live schema, in each
/// tenant that defines the connector as SQL.
pub async fn coverage(cli: &Cli, args: &CoverageArgs) -> Result<Outcome> {
    let project = load_project(&cli.project).map_err(problems)?;
    let mut diags = Diagnostics::default();
    let mut checked = 0;
    for lp in &project.playbooks {
        let Some(dataset) = &lp.playbook.dataset else {
            continue;
        };
        let text = std::fs::read_to_string(project.root.join(&lp.path))
            .with_context(|| format!("reading {}", lp.path))?;
        for (tenant, t) in &project.config.tenants {
            if args.tenant.as_ref().is_some_and(|only| only != tenant) {
                continue;
            }
            if !matches!(
                t.connectors.get(&lp.playbook.connector),
                Some(ConnectorConfig::Sql(_))
            ) {
                continue;
            }
            let client = sql_client(
                &project.config,
                tenant,
                &lp.playbook.connector,
                &cli.project,
            )?;
            let live = client.introspect(schema_of(dataset)).await;
            client.close().await;
            let live = view(&live.with_context(|| {
                format!(
                    "reading the schema of `{}` (tenant `{tenant}`)",
                    lp.playbook.connector
                )
            })?);
            diags.extend(cover(&lp.path, &text, dataset, &live));
            checked += 1;
        }
    }
    diags.sort();
    diags
        .0
        .dedup_by(|a, b| a.line == b.line && a.col == b.col && a.message == b.message);
    let color = super::use_color(super::args::ColorChoice::Auto);
    let text = match args.format {
        DiagFormat::Human => diags.render_human(color),
        DiagFormat::Json => diags.render_json(),
        DiagFormat::Sarif => diags.render_sarif(),
        DiagFormat::Github => diags.render_github(),
    };
    out!("{text}");
    if args.format == DiagFormat::Human && !diags.has_errors() {
        outln!("ok: {checked} dataset(s) cover their databases");
    }
    Ok(if diags.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// The schema a dataset's tables are qualified with (`sales.customer`), when they all are.
fn schema_of(d: &crate::model::Dataset) -> Option<&str> {
    let mut schemas = d.tables.keys().map(|t| t.rsplit_once('.').map(|(s, _)| s));
    let first = schemas.next()??;
    schemas.all(|s| s == Some(first)).then_some(first)
}

fn problems(d: Diagnostics) -> anyhow::Error {
    let color = super::use_color(super::args::ColorChoice::Auto);
    anyhow::anyhow!(
        "the project does not validate; fix it first (dsrctl validate):\n{}",
        d.render_human(color)
    )
}

fn only_tenant(config: &ProjectConfig) -> Result<String> {
    let mut names = config.tenants.keys();
    match (names.next(), names.next()) {
        (Some(one), None) => Ok(one.clone()),
        _ => bail!(
            "name the tenant with --tenant; dsrctl.yaml defines {}",
            config
                .tenants
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn sql_client(
    config: &ProjectConfig,
    tenant: &str,
    connector: &str,
    root: &Path,
) -> Result<SqlClient> {
    let t = config
        .tenants
        .get(tenant)
        .with_context(|| format!("no tenant `{tenant}` in dsrctl.yaml"))?;
    let Some(ConnectorConfig::Sql(cfg)) = t.connectors.get(connector) else {
        bail!("tenant `{tenant}` has no SQL connector `{connector}`");
    };
    let secrets = EnvFileResolver::new(root);
    let url = match &cfg.url {
        UrlSource::Literal(u) => u.clone(),
        UrlSource::Secret(r) => secrets.resolve(r)?,
    };
    Ok(SqlClient::connect(connector, &url, cfg, root, None)?)
}

fn view(live: &LiveSchema) -> LiveView {
    LiveView {
        tables: live
            .tables
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    LiveTableView {
                        columns: t
                            .columns
                            .iter()
                            .map(|c| (c.name.clone(), c.ty.clone()))
                            .collect(),
                        key: t.key.clone(),
                    },
                )
            })
            .collect(),
        foreign_keys: live
            .foreign_keys
            .iter()
            .filter(|f| live.tables.contains_key(&f.to_table))
            .map(|f| LiveReference {
                from: format!("{}.{}", f.from_table, f.from_column),
                to: format!("{}.{}", f.to_table, f.to_column),
                composite: f.is_composite(&live.foreign_keys),
            })
            .collect(),
    }
}

/// `dsrctl import ...`.
pub fn import(args: &ImportArgs) -> Result<Outcome> {
    let super::args_dataset::ImportCommand::Fides(a) = &args.command;
    fides(a)
}

fn fides(a: &FidesArgs) -> Result<Outcome> {
    let file = a.file.display().to_string();
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {file}"))?;
    let (doc, diags) = parse_yaml(&file, &bytes);
    let Some(doc) = doc else {
        bail!("{file} is not YAML:\n{}", diags.render_human(false));
    };
    let (playbook, lost) = from_fides(&doc.value, a.connector.as_deref())?;
    let text = format!(
        "# yaml-language-server: $schema=../schemas/playbook.schema.json\n# Imported from the Fides dataset {file} by `dsrctl import fides`.\n{}",
        to_yaml(&playbook)
    );
    for l in &lost {
        warn_note!("not carried over: {l}");
    }
    match &a.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            note!(
                "wrote {}; {} thing(s) not carried over",
                path.display(),
                lost.len()
            );
        }
        None => out!("{text}"),
    }
    Ok(Outcome::Ok)
}

/// A Fides dataset as a dsrctl playbook, and what could not be carried over.
pub fn from_fides(v: &Value, connector: Option<&str>) -> Result<(Value, Vec<String>)> {
    let ds = match v.get("dataset") {
        Some(Value::Array(list)) if list.len() == 1 => &list[0],
        Some(Value::Array(list)) => bail!(
            "the file holds {} datasets; import one at a time (split the file)",
            list.len()
        ),
        _ => v,
    };
    let key = ds
        .get("fides_key")
        .and_then(Value::as_str)
        .context("no `fides_key`: is this a Fides dataset?")?;
    let mut lost = Vec::new();
    let mut tables = Map::new();
    let mut references = Vec::new();
    let collections = ds
        .get("collections")
        .and_then(Value::as_array)
        .context("no `collections`")?;
    for c in collections {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .context("a collection without `name`")?;
        if let Some(meta) = c.get("fides_meta").and_then(Value::as_object) {
            for k in meta.keys() {
                lost.push(format!(
                    "`fides_meta.{k}` of collection `{name}` (the order and policy come from the references and dsrctl.yaml)"
                ));
            }
        }
        let mut columns = Map::new();
        let mut key_cols = Vec::new();
        for f in c
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(field) = f.get("name").and_then(Value::as_str) else {
                continue;
            };
            if f.get("fields").is_some() {
                lost.push(format!(
                    "the nested fields of `{name}.{field}` (a document store's; a SQL dataset has columns)"
                ));
            }
            let meta = f.get("fides_meta");
            let mut col = Map::new();
            if let Some(identity) = meta.and_then(|m| m.get("identity")).and_then(Value::as_str) {
                col.insert("identity".into(), json!(identity));
            }
            let cats: Vec<&str> = f
                .get("data_categories")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|c| c.starts_with("user."))
                .collect();
            if let Some(first) = cats.first() {
                col.insert("category".into(), json!(first));
                if cats.len() > 1 {
                    lost.push(format!(
                        "categories of `{name}.{field}` after the first ({})",
                        cats[1..].join(", ")
                    ));
                }
            }
            if meta
                .and_then(|m| m.get("primary_key"))
                .is_some_and(|p| p.as_bool() == Some(true))
            {
                key_cols.push(json!(field));
            }
            for r in meta
                .and_then(|m| m.get("references"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let target = r.get("field").and_then(Value::as_str).unwrap_or_default();
                let other = r.get("dataset").and_then(Value::as_str).unwrap_or(key);
                if other != key {
                    lost.push(format!(
                        "the reference from `{name}.{field}` to `{other}.{target}` in another dataset"
                    ));
                    continue;
                }
                // Fides states the direction data flows; dsrctl states the foreign key and
                // follows it both ways.
                references.push(json!(format!("{name}.{field} -> {target}")));
            }
            for k in meta
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.keys())
            {
                if ![
                    "identity",
                    "primary_key",
                    "references",
                    "data_type",
                    "length",
                ]
                .contains(&k.as_str())
                {
                    lost.push(format!("`fides_meta.{k}` of `{name}.{field}`"));
                }
            }
            let entry = if col.is_empty() {
                Value::Null
            } else if col.len() == 1 && col.contains_key("category") {
                col["category"].clone()
            } else {
                Value::Object(col)
            };
            columns.insert(field.to_owned(), entry);
        }
        let mut table = Map::new();
        let is_id = key_cols.len() == 1 && key_cols[0] == "id";
        if !key_cols.is_empty() && !is_id {
            table.insert("key".into(), Value::Array(key_cols));
        }
        table.insert("columns".into(), Value::Object(columns));
        tables.insert(name.to_owned(), Value::Object(table));
    }
    let mut dataset = Map::new();
    dataset.insert("tables".into(), Value::Object(tables));
    if !references.is_empty() {
        dataset.insert("references".into(), Value::Array(references));
    }
    let mut pb = Map::new();
    pb.insert("service".into(), json!(key.replace('_', "-")));
    if let Some(d) = ds.get("description").and_then(Value::as_str) {
        pb.insert("description".into(), json!(d));
    }
    pb.insert("connector".into(), json!(connector.unwrap_or(key)));
    pb.insert("dataset".into(), Value::Object(dataset));
    pb.insert(
        "dsr".into(),
        json!({ "rectify": { "unsupported": "not described by the Fides dataset: write rectify steps, or say why it cannot be done" } }),
    );
    Ok((Value::Object(pb), lost))
}
