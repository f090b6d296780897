//! Credentials: the bearer check on every API call and a client-credentials token endpoint.

use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::faults::Api;
use super::request::{ApiRequest, json_response, set_header};

/// Prefix of tokens the emulator issues; the tenant follows, so a token from one
/// tenant is refused by another.
const TOKEN_PREFIX: &str = "emu.";

/// Whether the `Authorization` header carries a non-empty credential.
pub(crate) fn credential(header: Option<&str>) -> Option<(&str, &str)> {
    let (scheme, value) = header?.trim().split_once(' ')?;
    let value = value.trim();
    (!value.is_empty()).then_some((scheme, value))
}

/// `None` when the call may proceed, else the 401 in the API's shape. Any non-empty
/// bearer token is accepted except one the emulator issued for another tenant; DPS and
/// IoT Central also accept `SharedAccessSignature` credentials.
pub(crate) fn check(req: &ApiRequest) -> Option<Response> {
    let sas_ok = matches!(req.api, Api::Dps | Api::IotCentral);
    let refusal = match credential(req.header("authorization")) {
        None => Some("Access token is empty."),
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            match token
                .strip_prefix(TOKEN_PREFIX)
                .and_then(|t| t.rsplit_once('.'))
            {
                Some((tenant, _)) if tenant != req.tenant => {
                    Some("The access token was issued for another tenant.")
                }
                _ => None,
            }
        }
        Some((scheme, _)) if sas_ok && scheme == "SharedAccessSignature" => None,
        Some(_) => Some("Unsupported authorization scheme."),
    };
    let message = refusal?;
    let code = match req.api {
        Api::Graph => "InvalidAuthenticationToken",
        Api::Dps => "IotHubUnauthorizedAccess",
        _ => "Unauthorized",
    };
    let mut resp = req.error(401, code, message);
    set_header(&mut resp, "www-authenticate", "Bearer");
    Some(resp)
}

/// `POST /{tenant}/oauth2/token` or `/{tenant}/oauth2/v2.0/token` with a
/// client-credentials form; any non-empty client id and secret get a token.
pub(crate) fn token(req: &ApiRequest, serial: u64) -> Response {
    let path = req.path();
    if !(matches!(path.as_slice(), ["token"] | ["v2.0", "token"]) && req.method == Method::POST) {
        return req.error(404, "invalid_request", "Unknown OAuth2 endpoint.");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if field("grant_type") != Some("client_credentials") {
        return req.error(
            400,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    if field("client_id").is_none()
        || (field("client_secret").is_none() && field("client_assertion").is_none())
    {
        return req.error(
            400,
            "invalid_client",
            "client_id and client_secret are required.",
        );
    }
    let token = format!("{TOKEN_PREFIX}{}.{serial:08}", req.tenant);
    json_response(
        200,
        &json!({"access_token": token, "expires_in": 3600, "ext_expires_in": 3600, "token_type": "Bearer"}),
    )
}
