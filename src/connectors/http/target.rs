//! Where a call goes: the connector's base URL joined with an already encoded path, and the
//! origin check that keeps every call (and every next-page link) on the connector's host.

use percent_encoding::percent_decode_str;
use url::Url;

use crate::connectors::ConnectorError;

/// The connector's base URL and origin.
#[derive(Debug, Clone)]
pub(super) struct Target {
    base: Url,
    /// The base URL as text, without a trailing `/`, so that paths are appended to it.
    prefix: String,
    host: String,
}

impl Target {
    /// Checks the base URL: `http` or `https`, no credentials, no query or fragment.
    pub(super) fn new(base_url: &str) -> Result<Self, ConnectorError> {
        let base = Url::parse(base_url)
            .map_err(|e| ConnectorError::Config(format!("`base_url` is not a valid URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ConnectorError::Config(
                "`base_url` must be an http:// or https:// URL with a host".into(),
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ConnectorError::Config(
                "`base_url` must not carry credentials; use `auth` with a secret reference".into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ConnectorError::Config(
                "`base_url` must not have a query or fragment; put parameters under `query`".into(),
            ));
        }
        let prefix = base.as_str().trim_end_matches('/').to_owned();
        let host = match base.port_or_known_default() {
            Some(port) => format!("{}:{port}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Target { base, prefix, host })
    }

    /// The URL of a call: `path` (already encoded) appended to the base URL, or an absolute
    /// URL on the same origin. `query` pairs are form-encoded after the connector's own
    /// `defaults` (added unless the URL already has that key).
    pub(super) fn url_for(
        &self,
        path: &str,
        query: &[(String, String)],
        defaults: &[(String, String)],
    ) -> Result<Url, ConnectorError> {
        let mut url = if has_scheme(path) {
            let url = Url::parse(path)
                .map_err(|e| ConnectorError::Refused(format!("the URL is not valid ({e})")))?;
            self.check_origin(&url)?;
            url
        } else {
            refuse_dot_segments(path)?;
            let sep = if path.is_empty() || path.starts_with(['/', '?']) {
                ""
            } else {
                "/"
            };
            let url = Url::parse(&format!("{}{sep}{path}", self.prefix)).map_err(|e| {
                ConnectorError::Refused(format!("the path does not make a valid URL ({e})"))
            })?;
            // Defence in depth: whatever the path held, the call stays on this origin.
            self.check_origin(&url)?;
            url
        };
        url.set_fragment(None);
        add_query(&mut url, defaults, true);
        add_query(&mut url, query, false);
        Ok(url)
    }

    /// A next-page link from a response (absolute, or relative to the base URL), accepted
    /// only on the connector's origin.
    pub(super) fn link(
        &self,
        link: &str,
        defaults: &[(String, String)],
    ) -> Result<Url, ConnectorError> {
        let mut url = self
            .base
            .join(link)
            .map_err(|e| ConnectorError::InvalidResponse {
                message: format!("the next-page link is not a valid URL ({e})"),
                excerpt: String::new(),
                reach: crate::connectors::Reach::MaybeProcessed,
            })?;
        self.check_origin(&url)?;
        add_query(&mut url, defaults, true);
        Ok(url)
    }

    /// `host:port` of the base URL, for messages.
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    fn check_origin(&self, url: &Url) -> Result<(), ConnectorError> {
        if url.origin() == self.base.origin() {
            return Ok(());
        }
        Err(ConnectorError::Refused(format!(
            "refused a call to {}://{}: this connector only reaches {}",
            url.scheme(),
            url.host_str().unwrap_or("(no host)"),
            self.base.origin().ascii_serialization()
        )))
    }
}

fn has_scheme(path: &str) -> bool {
    let lower = path.get(..8).unwrap_or(path).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// URL parsers resolve `..` and `.` segments (also written `%2e%2e`), which would let a path
/// address something other than what its template meant; such a path is refused.
fn refuse_dot_segments(path: &str) -> Result<(), ConnectorError> {
    let path_only = path.split(['?', '#']).next().unwrap_or("");
    for segment in path_only.split(['/', '\\']) {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        if decoded == "." || decoded == ".." {
            return Err(ConnectorError::Refused(
                "refused a path with a `.` or `..` segment: it would address another resource"
                    .into(),
            ));
        }
    }
    Ok(())
}

fn add_query(url: &mut Url, pairs: &[(String, String)], unless_present: bool) {
    let pairs: Vec<&(String, String)> = if unless_present {
        let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        pairs.iter().filter(|(k, _)| !present.contains(k)).collect()
    } else {
        pairs.iter().collect()
    };
    if pairs.is_empty() {
        return;
    }
    let mut q = url.query_pairs_mut();
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn path_is_appended_to_a_base_with_a_path() {
        let t = Target::new("https://graph.example/v1.0/").expect("valid");
        let url = t
            .url_for(
                "/users/a%2Fb",
                &q(&[("$filter", "mail eq 'o''b'")]),
                &q(&[("api-version", "1")]),
            )
            .expect("valid");
        assert_eq!(
            url.as_str(),
            "https://graph.example/v1.0/users/a%2Fb?api-version=1&%24filter=mail+eq+%27o%27%27b%27"
        );
    }

    #[test]
    fn off_origin_and_dot_segments_are_refused() {
        let t = Target::new("http://127.0.0.1:8080/api").expect("valid");
        for bad in [
            "http://evil.example/x",
            "http://127.0.0.1:8081/api/x",
            "https://127.0.0.1:8080/api/x",
            "/a/%2e%2E/admin",
            "/a/../admin",
            "/a\\..\\admin",
        ] {
            let e = t.url_for(bad, &[], &[]).expect_err(bad);
            assert!(matches!(e, ConnectorError::Refused(_)), "{bad}: {e}");
        }
        assert!(t.url_for("http://127.0.0.1:8080/api/x", &[], &[]).is_ok());
        assert!(
            t.url_for("//evil.example/x", &[], &[])
                .is_ok_and(|u| u.host_str() == Some("127.0.0.1"))
        );
    }

    #[test]
    fn next_links_keep_their_query_and_get_missing_defaults() {
        let t = Target::new("http://h.example/").expect("valid");
        let d = q(&[("api-version", "2")]);
        let u = t
            .link("http://h.example/x?api-version=1&page=2", &d)
            .expect("same origin");
        assert_eq!(u.query(), Some("api-version=1&page=2"));
        let u = t.link("/x?page=3", &d).expect("relative");
        assert_eq!(u.as_str(), "http://h.example/x?page=3&api-version=2");
        assert!(t.link("http://other.example/x", &d).is_err());
    }
}
