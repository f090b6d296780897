use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use dsrctl::model::{Destination, SecretRef};
use dsrctl::report::delivery::{DeliveryOptions, EnvAndFiles, deliver};
use dsrctl::report::package::{PackageOptions, build_package};
use futures::TryStreamExt;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::azurite::{ACCOUNT, Azurite, KEY};
use crate::fixture;

/// A package directory built from the fixture.
fn package(dir: &std::path::Path) -> std::path::PathBuf {
    let spool = dir.join("spool/entra-users");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("profile.ndjson"), "{\"id\":\"u1\"}\n").unwrap();
    let out = dir.join("package");
    build_package(
        &fixture::plan("export"),
        &fixture::outcomes(),
        dir,
        &out,
        &PackageOptions {
            generated_at: fixture::ts("2026-03-20T10:00:00Z"),
            ..Default::default()
        },
    )
    .unwrap();
    out
}

/// The key comes from a secret file, as it would in a project.
fn secrets(dir: &std::path::Path) -> EnvAndFiles {
    std::fs::write(dir.join("azure.key"), format!("{KEY}\n")).unwrap();
    EnvAndFiles {
        base_dir: dir.to_owned(),
    }
}

fn destination(endpoint: String, container: &str) -> Destination {
    Destination::AzureBlob {
        endpoint,
        account: ACCOUNT.into(),
        container: container.into(),
        key: SecretRef::File("azure.key".into()),
    }
}

async fn blob_names(az: &Azurite, container: &str) -> Vec<String> {
    let store = MicrosoftAzureBuilder::new()
        .with_endpoint(az.endpoint())
        .with_allow_http(true)
        .with_account(ACCOUNT)
        .with_access_key(KEY)
        .with_container_name(container)
        .build()
        .unwrap();
    let mut names: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    names.sort();
    let manifest = store
        .get(&"r-2026-0042/manifest.json".into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&manifest).expect("the manifest arrives intact");
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn delivers_to_azurite() {
    let Some(az) = Azurite::start() else { return };
    az.create_container("exports").await;
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let done = deliver(
        &destination(az.endpoint(), "exports"),
        &pkg,
        &opts,
        &secrets(tmp.path()),
    )
    .await
    .unwrap();
    assert_eq!(done.objects.len(), 2);
    assert!(!done.destination.contains(KEY));
    assert_eq!(
        blob_names(&az, "exports").await,
        vec![
            "r-2026-0042/entra-users/profile.json",
            "r-2026-0042/manifest.json"
        ]
    );
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    puts: Arc<AtomicUsize>,
    client: reqwest::Client,
}

/// Forwards to Azurite, answering 503 to the first PUT.
async fn proxy(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.method == axum::http::Method::PUT && p.puts.fetch_add(1, Ordering::SeqCst) == 0 {
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from("<Error><Code>ServerBusy</Code></Error>"))
            .unwrap();
    }
    let body = to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let resp = p
        .client
        .request(parts.method, format!("{}{path}", p.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let mut out = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if k != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_after_503() {
    let Some(az) = Azurite::start() else { return };
    az.create_container("retried").await;
    let puts = Arc::new(AtomicUsize::new(0));
    let state = Proxy {
        upstream: format!("http://127.0.0.1:{}", az.port),
        puts: puts.clone(),
        client: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(proxy).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let dest = destination(format!("http://127.0.0.1:{port}/{ACCOUNT}"), "retried");
    let done = deliver(&dest, &pkg, &opts, &secrets(tmp.path()))
        .await
        .unwrap();
    assert_eq!(done.objects.len(), 2);
    assert_eq!(
        puts.load(Ordering::SeqCst),
        3,
        "one refused PUT, retried, then the second file"
    );
    assert_eq!(blob_names(&az, "retried").await.len(), 2);
}

#[tokio::test]
async fn delivers_to_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let dest = Destination::Directory {
        path: "out".into(),
        zip: false,
    };
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    deliver(
        &dest,
        &pkg,
        &opts,
        &EnvAndFiles {
            base_dir: tmp.path().into(),
        },
    )
    .await
    .unwrap();
    dsrctl::report::package::verify_package(&tmp.path().join("out/r-2026-0042")).unwrap();
}

#[tokio::test]
async fn a_missing_secret_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Destination::AzureBlob {
        endpoint: "http://127.0.0.1:9/x".into(),
        account: ACCOUNT.into(),
        container: "c".into(),
        key: SecretRef::Env("DSRCTL_TEST_NO_SUCH_VARIABLE".into()),
    };
    let opts = DeliveryOptions::new("r", tmp.path());
    let err = deliver(
        &dest,
        tmp.path(),
        &opts,
        &EnvAndFiles {
            base_dir: tmp.path().into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("DSRCTL_TEST_NO_SUCH_VARIABLE"),
        "{err}"
    );
}
