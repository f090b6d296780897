//! Starts the moto S3 emulator (`moto_server`, from PyPI) for a test, on a free port, in
//! memory.

use std::process::Command;

use crate::emulator::{Emulator, find, free_port, missing};

/// The region the tests' buckets are made in.
pub const REGION: &str = "eu-west-1";

/// A running emulator, stopped when dropped.
pub struct Moto {
    _process: Emulator,
    pub port: u16,
    client: reqwest::Client,
}

impl Moto {
    /// Starts moto, or returns `None` (after printing why) when it is not installed.
    pub fn start() -> Option<Moto> {
        let Some(exe) = find("DSRCTL_MOTO", ".venv-test/bin/moto_server") else {
            missing(
                "moto_server",
                "set DSRCTL_MOTO or install tests/requirements-s3.txt into .venv-test (as .ci/run does)",
            );
            return None;
        };
        let port = free_port();
        let mut cmd = Command::new(&exe);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        Some(Moto {
            _process: Emulator::start(cmd, port),
            port,
            client: reqwest::Client::new(),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket in [`REGION`] (unsigned: only while moto does not check
    /// credentials, i.e. before [`Moto::require_auth`]).
    pub async fn create_bucket(&self, name: &str) {
        let body = format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>"
        );
        let resp = self
            .client
            .put(format!("{}/{name}", self.endpoint()))
            .body(body)
            .send()
            .await
            .expect("create bucket");
        let status = resp.status();
        assert!(
            status.is_success(),
            "create bucket: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }

    /// Makes moto check credentials from now on (by default it takes any), and returns the
    /// only key pair it then accepts: an IAM user's, allowed everything on S3.
    pub async fn require_auth(&self) -> (String, String) {
        // moto answers the next 3 actions without authentication: the 3 IAM calls below.
        let resp = self
            .client
            .post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .header("Content-Type", "text/plain")
            .body("3")
            .send()
            .await
            .expect("reset-auth");
        assert!(resp.status().is_success(), "reset-auth: {}", resp.status());
        let user = [("UserName", "dsrctl")];
        self.iam("CreateUser", &user).await;
        let key = self.iam("CreateAccessKey", &user).await;
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        self.iam(
            "PutUserPolicy",
            &[
                ("UserName", "dsrctl"),
                ("PolicyName", "s3"),
                ("PolicyDocument", policy),
            ],
        )
        .await;
        (
            element(&key, "AccessKeyId"),
            element(&key, "SecretAccessKey"),
        )
    }

    /// One IAM query-API call; moto routes it by the service named in the (unchecked)
    /// credential scope.
    async fn iam(&self, action: &str, params: &[(&str, &str)]) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", "2010-05-08")
            .extend_pairs(params)
            .finish();
        let resp = self
            .client
            .post(format!("{}/", self.endpoint()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260320/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("IAM {action}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "IAM {action}: {status} {text}");
        text
    }
}

/// The text of the first `<name>` element of an XML answer.
fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = start
        + xml[start..]
            .find(&format!("</{name}>"))
            .unwrap_or_else(|| panic!("no </{name}> in {xml}"));
    xml[start..end].to_owned()
}
