//! `dsrctl catalogue`: the playbooks for SaaS services kept in `policies/saas/`, each with
//! its `dsrctl test` cases and a connector stub; `add` copies one into a project.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};

use super::Outcome;
use super::args::{CatalogueArgs, CatalogueCommand, Cli};
use crate::model::{DsrKind, KindSpec, Playbook};

static SAAS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies/saas");

/// One service of the catalogue.
pub struct Entry {
    /// The service's name (`policies/saas/NAME.yaml`, the connector's name).
    pub name: &'static str,
    /// The connector added under each tenant, indented as one connector entry; the base
    /// URL and the secrets' names are the ones to change.
    pub connector: &'static str,
}

/// The catalogue's services and their connector stubs.
pub const ENTRIES: &[Entry] = &[
    Entry {
        name: "stripe",
        connector: "\
stripe:
  kind: http
  base_url: https://api.stripe.com/v1
  auth:
    type: bearer
    token: { env: STRIPE_SECRET_KEY }     # a restricted key with customers and charges
  rate_limit: { per_second: 20 }          # Stripe allows 100/s live, 25/s in test mode
  retry: { attempts: 8, backoff: 500ms }  # 429 carries no Retry-After: back off exponentially
",
    },
    Entry {
        name: "mailchimp",
        connector: "\
mailchimp:
  kind: http
  base_url: https://us21.api.mailchimp.com/3.0   # your key's data centre after `-`
  auth:
    type: basic
    username: dsrctl                      # any name; the API key is the password
    password: { env: MAILCHIMP_API_KEY }
  concurrency: 10                         # Mailchimp allows 10 connections at once
  retry: { attempts: 8, backoff: 500ms }  # 429 carries no Retry-After: back off exponentially
",
    },
    Entry {
        name: "zendesk",
        connector: "\
zendesk:
  kind: http
  base_url: https://YOUR-SUBDOMAIN.zendesk.com/api/v2
  auth:
    type: basic
    username: privacy-admin@example.com/token   # an admin's email, then /token
    password: { env: ZENDESK_API_TOKEN }
  rate_limit: { per_second: 10 }          # plans allow 200 to 2500 per minute
",
    },
    Entry {
        name: "hubspot",
        connector: "\
hubspot:
  kind: http
  base_url: https://api.hubapi.com/crm/v3
  auth:
    type: bearer
    token: { env: HUBSPOT_ACCESS_TOKEN }  # a private app with crm.objects.contacts read/write
  rate_limit: { per_second: 10 }          # private apps: 100 or 190 per 10 seconds
  retry: { attempts: 8, backoff: 500ms }
",
    },
    Entry {
        name: "shopify",
        connector: "\
shopify:
  kind: http
  base_url: https://YOUR-SHOP.myshopify.com/admin/api/2024-10
  auth:
    type: api_key
    header: X-Shopify-Access-Token
    value: { env: SHOPIFY_ACCESS_TOKEN }  # read_customers, write_customers, read_orders
  concurrency: 2
",
    },
    Entry {
        name: "segment",
        connector: "\
segment:
  kind: http
  base_url: https://api.segmentapis.com   # eu1.api.segmentapis.com for EU workspaces
  auth:
    type: bearer
    token: { env: SEGMENT_API_TOKEN }     # a workspace token with Deletion and Suppression
  rate_limit: { per_second: 5 }
",
    },
    Entry {
        name: "okta",
        connector: "\
okta:
  kind: http
  base_url: https://YOUR-ORG.okta.com/api/v1
  auth:
    type: api_key
    header: Authorization
    value: { env: OKTA_API_TOKEN }        # the value is `SSWS ` then the API token
  rate_limit: { per_second: 5 }
",
    },
    Entry {
        name: "auth0",
        connector: "\
auth0:
  kind: http
  base_url: https://YOUR-TENANT.eu.auth0.com/api/v2
  auth:
    type: bearer
    token: { env: AUTH0_MANAGEMENT_TOKEN } # read:users update:users delete:users read:roles
  rate_limit: { per_second: 2 }           # free and developer tenants: 2 per second
",
    },
    Entry {
        name: "intercom",
        connector: "\
intercom:
  kind: http
  base_url: https://api.intercom.io       # api.eu.intercom.io for EU workspaces
  headers: { Intercom-Version: \"2.11\" }
  auth:
    type: bearer
    token: { env: INTERCOM_ACCESS_TOKEN }
  rate_limit: { per_second: 10 }          # 10,000 per minute per app, spread over 10 s windows
",
    },
    Entry {
        name: "salesforce",
        connector: "\
salesforce:
  kind: http
  base_url: https://YOUR-DOMAIN.my.salesforce.com/services/data/v62.0
  # or `type: oauth2` with token_url https://YOUR-DOMAIN.my.salesforce.com/services/oauth2/token
  # (a connected app with the client credentials flow), so expired sessions are renewed
  auth:
    type: bearer
    token: { env: SALESFORCE_ACCESS_TOKEN } # a connected app's token: read/edit/delete Contact, Lead
  rate_limit: { per_second: 5 }
  retry: { attempts: 8, backoff: 1s }     # 403 REQUEST_LIMIT_EXCEEDED names no time to wait
",
    },
    Entry {
        name: "google-workspace",
        connector: "\
google-workspace:
  kind: http
  base_url: https://admin.googleapis.com/admin/directory/v1
  auth:
    type: bearer
    token: { env: GOOGLE_DIRECTORY_TOKEN } # admin.directory.user, admin.directory.group.readonly
                                          # (a service account's token, valid for an hour)
  rate_limit: { per_second: 20 }          # 2,400 queries per minute per user
  retry: { attempts: 8, backoff: 500ms }  # 403 userRateLimitExceeded / 429: exponential backoff
",
    },
    Entry {
        name: "slack",
        connector: "\
slack:
  kind: http
  base_url: https://api.slack.com/scim/v2
  auth:
    type: bearer
    token: { env: SLACK_SCIM_TOKEN }      # an Org Owner's or Admin's token with the `admin` scope
  rate_limit: { per_second: 3 }           # deactivations: 180 per minute
",
    },
    Entry {
        name: "sendgrid",
        connector: "\
sendgrid:
  kind: http
  base_url: https://api.sendgrid.com/v3   # api.eu.sendgrid.com/v3 for EU regional subusers
  auth:
    type: bearer
    token: { env: SENDGRID_API_KEY }      # Marketing and Suppressions, full access
  rate_limit: { per_second: 5 }
",
    },
    Entry {
        name: "braze",
        connector: "\
braze:
  kind: http
  base_url: https://rest.iad-01.braze.com # your instance's REST endpoint
  auth:
    type: bearer
    token: { env: BRAZE_REST_API_KEY }    # a REST API key with users.export.ids and users.delete
  rate_limit: { per_second: 4 }           # /users/export/ids allows 250 per minute
",
    },
    Entry {
        name: "mixpanel",
        connector: "\
mixpanel:
  kind: http
  base_url: https://mixpanel.com/api/app  # eu.mixpanel.com/api/app with EU data residency
  query: { token: YOUR_PROJECT_TOKEN }    # the project token (public, in every app that tracks)
  auth:
    type: bearer
    token: { env: MIXPANEL_GDPR_TOKEN }   # a GDPR OAuth token (Profile & Preferences, Data & Privacy)
  rate_limit: { per_second: 1 }           # the GDPR API allows one request per second
",
    },
];

/// Runs `dsrctl catalogue ...`.
pub async fn run(cli: &Cli, args: &CatalogueArgs) -> Result<Outcome> {
    match &args.command {
        CatalogueCommand::List => {
            out!("{}", list()?);
            Ok(Outcome::Ok)
        }
        CatalogueCommand::Add { service } => {
            let written = add(&cli.project, service)?;
            for w in written {
                outln!("{w}");
            }
            outln!(
                "next: set the connector's base URL and secret in dsrctl.yaml, then `dsrctl test` and `dsrctl validate`"
            );
            Ok(Outcome::Ok)
        }
    }
}

/// The playbook text of a service.
pub fn playbook_text(name: &str) -> Option<&'static str> {
    SAAS.get_file(format!("{name}.yaml"))
        .and_then(|f| f.contents_utf8())
}

fn parse(name: &str) -> Result<Playbook> {
    let text = playbook_text(name).with_context(|| format!("no playbook for `{name}`"))?;
    let (doc, diags) = crate::load::parse_yaml(&format!("{name}.yaml"), text.as_bytes());
    let doc = doc.ok_or_else(|| {
        anyhow::anyhow!(
            "the catalogue's playbook `{name}` does not parse:\n{}",
            diags.render_human(false)
        )
    })?;
    serde_json::from_value(doc.value)
        .map_err(|e| anyhow::anyhow!("the catalogue's playbook `{name}` does not load: {e}"))
}

/// What `catalogue list` prints: each service, its title and what each kind does.
pub fn list() -> Result<String> {
    let mut out = String::new();
    for e in ENTRIES {
        let p = parse(e.name)?;
        let _ = writeln!(
            out,
            "{}: {}",
            e.name,
            p.title
                .as_deref()
                .or(p.description.as_deref())
                .unwrap_or("")
        );
        for kind in &DsrKind::ALL {
            let what = match p.dsr.get(*kind) {
                Some(KindSpec::Steps(steps)) => steps
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                Some(KindSpec::Reuse(s)) => format!(
                    "as {}",
                    s.same_as
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
                Some(KindSpec::Unsupported(u)) => {
                    format!(
                        "unsupported: {}",
                        u.unsupported
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
                None => "not declared".to_owned(),
            };
            let _ = writeln!(out, "  {:<8} {what}", kind.as_str());
        }
    }
    Ok(out)
}

/// Copies the playbook of `name` into the project at `dir` and adds its connector stub to
/// every tenant of `dsrctl.yaml`. Refuses to overwrite a file or a connector; leaves the
/// project as it was when the result does not load.
pub fn add(dir: &Path, name: &str) -> Result<Vec<String>> {
    let Some(entry) = ENTRIES.iter().find(|e| e.name == name) else {
        bail!(
            "the catalogue has no service `{name}`; it has: {}",
            ENTRIES
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let text = playbook_text(name).context("the catalogue's playbook is missing")?;
    let project = crate::load::load_project(dir).map_err(|d| {
        anyhow::anyhow!(
            "the project does not load; fix it first (`dsrctl validate`):\n{}",
            d.render_human(false)
        )
    })?;
    if let Some(p) = project
        .playbooks
        .iter()
        .find(|p| p.playbook.service == name)
    {
        bail!(
            "the project already has a playbook for `{name}` ({})",
            p.path
        );
    }
    for (tenant, t) in &project.config.tenants {
        if t.connectors.contains_key(name) {
            bail!("tenant `{tenant}` already has a connector named `{name}`");
        }
    }
    let policies = project
        .config
        .playbooks
        .first()
        .cloned()
        .unwrap_or_else(|| "policies".to_owned());
    let rel = format!("{}/{name}.yaml", policies.trim_end_matches('/'));
    let target = dir.join(&rel);
    if target.exists() {
        bail!("{rel} exists; not overwriting it");
    }
    let config_path = dir.join(&project.config_file);
    let config = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let tenants: Vec<&str> = project.config.tenants.keys().map(String::as_str).collect();
    let updated = add_connector(&config, &tenants, entry.connector)?;
    // The copy's schema reference points at the project's schemas/ (as `dsrctl init`
    // writes them), not the repository's.
    let text = text.replace("$schema=../../schemas/", "$schema=../schemas/");
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    std::fs::write(&config_path, &updated)
        .with_context(|| format!("writing {}", config_path.display()))?;
    if let Err(d) = crate::load::load_project(dir) {
        let _ = std::fs::remove_file(&target);
        let _ = std::fs::write(&config_path, &config);
        bail!(
            "adding `{name}` would leave the project invalid; nothing was changed:\n{}\nthe connector to add by hand under each tenant's `connectors:`:\n{}",
            d.render_human(false),
            entry.connector
        );
    }
    Ok(vec![
        format!("wrote {rel}"),
        format!(
            "added the connector `{name}` to {} in {}",
            tenants
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", "),
            project.config_file
        ),
    ])
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// `config` with `connector` inserted under each tenant's `connectors:` (made when a tenant
/// has none). Works on block-style YAML as `dsrctl init` writes it, keeping comments.
pub fn add_connector(config: &str, tenants: &[&str], connector: &str) -> Result<String> {
    let mut lines: Vec<String> = config.lines().map(str::to_owned).collect();
    let Some(top) = lines.iter().position(|l| l.trim_end() == "tenants:") else {
        bail!("dsrctl.yaml has no block-style `tenants:` to add the connector under");
    };
    let end_of = |lines: &[String], from: usize, indent: usize| {
        (from..lines.len())
            .find(|&i| is_content(&lines[i]) && indent_of(&lines[i]) <= indent)
            .unwrap_or(lines.len())
    };
    // Insert from the last tenant up, so earlier positions stay valid.
    let mut inserts: Vec<(usize, usize, bool)> = Vec::new();
    let tenants_end = end_of(&lines, top + 1, 0);
    for tenant in tenants {
        let Some(t) = (top + 1..tenants_end).find(|&i| {
            is_content(&lines[i])
                && lines[i].trim_end().trim_start() == format!("{tenant}:")
                && indent_of(&lines[i]) > 0
        }) else {
            bail!("cannot find tenant `{tenant}` in block style under `tenants:`");
        };
        let t_indent = indent_of(&lines[t]);
        let t_end = end_of(&lines, t + 1, t_indent);
        match (t + 1..t_end).find(|&i| lines[i].trim() == "connectors:") {
            Some(c) => inserts.push((c + 1, indent_of(&lines[c]) + 2, false)),
            None => inserts.push((t + 1, t_indent + 2, true)),
        }
    }
    inserts.sort_by_key(|i| std::cmp::Reverse(i.0));
    for (at, indent, make) in inserts {
        let pad = " ".repeat(indent);
        let mut block: Vec<String> = Vec::new();
        let inner = if make {
            block.push(format!("{pad}connectors:"));
            " ".repeat(indent + 2)
        } else {
            pad
        };
        block.extend(connector.lines().map(|l| format!("{inner}{l}")));
        lines.splice(at..at, block);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_playbook_parses_and_list_names_them() {
        let text = list().unwrap();
        for e in ENTRIES {
            assert!(text.contains(&format!("{}:", e.name)), "{text}");
        }
        assert!(text.contains("unsupported:"), "{text}");
    }

    #[test]
    fn connector_goes_under_each_tenant_and_keeps_comments() {
        let config = "playbooks: [policies]\n# note\ntenants:\n  a:\n    name: A\n    connectors:\n      crm:\n        kind: manual\n  b:\n    name: B\ncontroller:\n  name: X\n";
        let out = add_connector(config, &["a", "b"], "svc:\n  kind: manual\n").unwrap();
        assert_eq!(
            out,
            "playbooks: [policies]\n# note\ntenants:\n  a:\n    name: A\n    connectors:\n      svc:\n        kind: manual\n      crm:\n        kind: manual\n  b:\n    connectors:\n      svc:\n        kind: manual\n    name: B\ncontroller:\n  name: X\n"
        );
        assert!(add_connector("tenants: {}\n", &["a"], "x:\n").is_err());
    }
}
