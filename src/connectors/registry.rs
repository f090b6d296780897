//! Builds the connectors of one tenant from the project config. A request only ever gets
//! its own tenant's connectors, so it cannot reach another tenant's systems.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::email::EmailClient;
use super::http::HttpClient;
use super::sql::SqlClient;
use super::{Connector, ConnectorError};
use crate::model::{ConnectorConfig, ProjectConfig, UrlSource};
use crate::secret::{EnvFileResolver, SecretResolver};

/// The connectors of `tenant`, by name. Manual connectors need no client and are left out.
pub async fn connectors_for_tenant(
    config: &ProjectConfig,
    tenant: &str,
    base_dir: &Path,
) -> Result<HashMap<String, Arc<dyn Connector>>, ConnectorError> {
    let Some(t) = config.tenants.get(tenant) else {
        return Err(ConnectorError::Config(format!(
            "no tenant `{tenant}` in dsrctl.yaml"
        )));
    };
    let secrets = EnvFileResolver::new(base_dir);
    let mut out: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    for (name, cfg) in &t.connectors {
        match cfg {
            ConnectorConfig::Http(h) => {
                out.insert(
                    name.clone(),
                    Arc::new(HttpClient::new(name, h, &config.defaults, &secrets)?),
                );
            }
            ConnectorConfig::Sql(s) => {
                out.insert(
                    name.clone(),
                    sql_connector(name, s, base_dir, &secrets).await?,
                );
            }
            ConnectorConfig::Manual(_) => {}
            ConnectorConfig::Email(e) => {
                out.insert(
                    name.clone(),
                    Arc::new(EmailClient::new(name, e, base_dir, &secrets)?),
                );
            }
        }
    }
    Ok(out)
}

async fn sql_connector(
    name: &str,
    cfg: &crate::model::SqlConnector,
    base_dir: &Path,
    secrets: &dyn SecretResolver,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    let url = match &cfg.url {
        UrlSource::Literal(u) => u.clone(),
        UrlSource::Secret(r) => secrets.resolve(r)?,
    };
    let hmac_key = cfg
        .hmac_key
        .as_ref()
        .map(|r| secrets.resolve(r))
        .transpose()?;
    Ok(Arc::new(SqlClient::connect(
        name, &url, cfg, base_dir, hmac_key,
    )?))
}
