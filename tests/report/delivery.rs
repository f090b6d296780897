use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use dsrctl::deliver::{DeliveryError, DeliveryOptions, deliver};
use dsrctl::journal::sha256_hex;
use dsrctl::model::{Destination, SecretRef};
use dsrctl::report::package::{Manifest, PackageOptions, build_package};
use dsrctl::secret::EnvFileResolver;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::azurite::{ACCOUNT, Azurite, KEY};
use crate::fixture;
use crate::moto::{self, Moto};

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
fn secrets(dir: &std::path::Path) -> EnvFileResolver {
    std::fs::write(dir.join("azure.key"), format!("{KEY}\n")).unwrap();
    EnvFileResolver::new(dir)
}

fn destination(endpoint: String, container: &str) -> Destination {
    Destination::AzureBlob {
        endpoint,
        account: ACCOUNT.into(),
        container: container.into(),
        key: SecretRef::File("azure.key".into()),
    }
}

/// The blobs in a container, after checking that the package's manifest arrived intact.
async fn blob_names(az: &Azurite, container: &str) -> Vec<String> {
    let (store, names) = list_blobs(az, container).await;
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

/// The container's store and the names of its blobs, sorted.
async fn list_blobs(az: &Azurite, container: &str) -> (impl ObjectStore, Vec<String>) {
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
    (store, names)
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
    // The file, manifest.json and SHA256SUMS.
    assert_eq!(done.objects.len(), 3);
    assert!(!done.destination.contains(KEY));
    assert_eq!(
        blob_names(&az, "exports").await,
        vec![
            "r-2026-0042/SHA256SUMS",
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
    /// Refuse (403) every PUT from this one on (0-based) instead of a 503 to the first.
    refuse_from: Option<usize>,
}

impl Proxy {
    /// Serves the proxy on a free port; returns the port.
    async fn serve(self) -> u16 {
        let app = axum::Router::new().fallback(proxy).with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }
}

/// Forwards to Azurite, answering 503 to the first PUT (or 403 from `refuse_from` on).
async fn proxy(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.method == axum::http::Method::PUT {
        let n = p.puts.fetch_add(1, Ordering::SeqCst);
        if n == 0 && p.refuse_from.is_none() {
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Body::from("<Error><Code>ServerBusy</Code></Error>"))
                .unwrap();
        }
        if p.refuse_from.is_some_and(|from| n >= from) {
            return Response::builder()
                .status(StatusCode::FORBIDDEN)
                .body(Body::from(
                    "<Error><Code>AuthorizationPermissionMismatch</Code></Error>",
                ))
                .unwrap();
        }
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
    let port = Proxy {
        upstream: format!("http://127.0.0.1:{}", az.port),
        puts: puts.clone(),
        client: reqwest::Client::new(),
        refuse_from: None,
    }
    .serve()
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let dest = destination(format!("http://127.0.0.1:{port}/{ACCOUNT}"), "retried");
    let done = deliver(&dest, &pkg, &opts, &secrets(tmp.path()))
        .await
        .unwrap();
    assert_eq!(done.objects.len(), 3);
    assert_eq!(
        puts.load(Ordering::SeqCst),
        4,
        "one refused PUT, retried, then the other two files"
    );
    assert_eq!(blob_names(&az, "retried").await.len(), 3);
}

// A store that refuses part-way: the error names the object, says how many went before it
// (they stay, and delivering again overwrites them), and nothing is reported delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_part_way_says_what_was_uploaded() {
    let Some(az) = Azurite::start() else { return };
    az.create_container("partial").await;
    let port = Proxy {
        upstream: format!("http://127.0.0.1:{}", az.port),
        puts: Arc::new(AtomicUsize::new(0)),
        client: reqwest::Client::new(),
        refuse_from: Some(1),
    }
    .serve()
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let dest = destination(format!("http://127.0.0.1:{port}/{ACCOUNT}"), "partial");
    let err = deliver(&dest, &pkg, &opts, &secrets(tmp.path()))
        .await
        .unwrap_err();
    let DeliveryError::Store {
        key,
        uploaded,
        total,
        ..
    } = &err
    else {
        panic!("expected a store error, got {err:?}")
    };
    // In name order: SHA256SUMS went, the service's file was refused, the manifest never went.
    assert_eq!((*uploaded, *total), (1, 3));
    assert_eq!(key, "r-2026-0042/entra-users/profile.json");
    let msg = err.to_string();
    assert!(
        msg.contains("1 of 3 objects were uploaded before it"),
        "{msg}"
    );
    assert_eq!(
        list_blobs(&az, "partial").await.1,
        ["r-2026-0042/SHA256SUMS"]
    );
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
    deliver(&dest, &pkg, &opts, &EnvFileResolver::new(tmp.path()))
        .await
        .unwrap();
    dsrctl::report::package::verify_package(&tmp.path().join("out/r-2026-0042")).unwrap();
}

// `zip: true`: a directory package arrives as one zip named after the request, holding
// every file of the package; a hostile request id cannot put it elsewhere.
#[tokio::test]
async fn delivers_a_directory_package_as_one_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let dest = Destination::Directory {
        path: "out".into(),
        zip: true,
    };
    let secrets = EnvFileResolver::new(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let done = deliver(&dest, &pkg, &opts, &secrets).await.unwrap();
    let zip_path = tmp.path().join("out/r-2026-0042.zip");
    let len = std::fs::metadata(&zip_path).unwrap().len();
    assert_eq!(done.objects, [("r-2026-0042.zip".to_owned(), len)]);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("out")).unwrap().count(),
        1,
        "no temporary file is left"
    );
    let manifest = dsrctl::report::package::verify_package(&zip_path).unwrap();
    let in_dir = dsrctl::report::package::verify_package(&pkg).unwrap();
    assert_eq!(manifest, in_dir);

    let opts = DeliveryOptions::new("../../escape", tmp.path());
    let done = deliver(&dest, &pkg, &opts, &secrets).await.unwrap();
    assert_eq!(done.objects[0].0, "_.._escape.zip");
    assert!(tmp.path().join("out/_.._escape.zip").is_file());
    assert!(!tmp.path().join("../escape.zip").exists());
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
    let err = deliver(&dest, tmp.path(), &opts, &EnvFileResolver::new(tmp.path()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("DSRCTL_TEST_NO_SUCH_VARIABLE"),
        "{err}"
    );
}

/// The S3 key pair comes from secret files, as it would in a project.
fn s3_secrets(dir: &std::path::Path, key_id: &str, secret: &str) -> EnvFileResolver {
    std::fs::write(dir.join("s3.key-id"), format!("{key_id}\n")).unwrap();
    std::fs::write(dir.join("s3.secret"), format!("{secret}\n")).unwrap();
    EnvFileResolver::new(dir)
}

fn s3_destination(moto: &Moto, bucket: &str) -> Destination {
    Destination::S3 {
        bucket: bucket.into(),
        region: moto::REGION.into(),
        endpoint: Some(moto.endpoint()),
        access_key_id: SecretRef::File("s3.key-id".into()),
        secret_access_key: SecretRef::File("s3.secret".into()),
    }
}

/// Every file under a package directory: `/`-separated path to (size, SHA-256).
fn local_files(root: &std::path::Path) -> BTreeMap<String, (u64, String)> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut BTreeMap<String, (u64, String)>,
    ) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel: Vec<String> = p
                    .strip_prefix(root)
                    .unwrap()
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let bytes = std::fs::read(&p).unwrap();
                out.insert(rel.join("/"), (bytes.len() as u64, sha256_hex(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every object in a bucket, read back with the given key pair: key to (size, SHA-256).
async fn s3_objects(
    moto: &Moto,
    bucket: &str,
    (key_id, secret): (&str, &str),
) -> BTreeMap<String, (u64, String)> {
    let store = AmazonS3Builder::new()
        .with_endpoint(moto.endpoint())
        .with_allow_http(true)
        .with_region(moto::REGION)
        .with_bucket_name(bucket)
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .build()
        .unwrap();
    let listed: Vec<(String, u64)> = store
        .list(None)
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for (key, listed_size) in listed {
        let bytes = store
            .get(&key.as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(listed_size, bytes.len() as u64, "{key}: listed size");
        out.insert(key, (listed_size, sha256_hex(&bytes)));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn delivers_to_moto_s3() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("exports").await;
    // Signed requests only from here on, so a wrong signature would fail the delivery.
    let (key_id, secret) = moto.require_auth().await;
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let done = deliver(
        &s3_destination(&moto, "exports"),
        &pkg,
        &opts,
        &s3_secrets(tmp.path(), &key_id, &secret),
    )
    .await
    .unwrap();
    assert!(!done.destination.contains(&secret), "{}", done.destination);
    assert_eq!(
        done.destination,
        format!("s3 bucket `exports` at {}", moto.endpoint())
    );

    let expected: BTreeMap<String, (u64, String)> = local_files(&pkg)
        .into_iter()
        .map(|(rel, v)| (format!("r-2026-0042/{rel}"), v))
        .collect();
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        vec![
            "r-2026-0042/SHA256SUMS",
            "r-2026-0042/entra-users/profile.json",
            "r-2026-0042/manifest.json"
        ]
    );
    let reported: BTreeMap<String, u64> = done.objects.iter().cloned().collect();
    assert_eq!(reported.len(), done.objects.len(), "no key reported twice");
    assert_eq!(
        reported,
        expected
            .iter()
            .map(|(k, (size, _))| (k.clone(), *size))
            .collect::<BTreeMap<_, _>>()
    );
    let stored = s3_objects(&moto, "exports", (&key_id, &secret)).await;
    assert_eq!(stored, expected, "objects in the bucket = package files");

    // The delivered manifest vouches for the delivered files.
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(pkg.join("manifest.json")).unwrap()).unwrap();
    for f in manifest.files() {
        let (size, sha) = &stored[&format!("r-2026-0042/{}", f.path)];
        assert_eq!(
            (*size, sha.as_str()),
            (f.bytes, f.sha256.as_str()),
            "{}",
            f.path
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_missing_bucket_is_an_error() {
    let Some(moto) = Moto::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    // moto takes any key pair until asked to check them.
    let secrets = s3_secrets(tmp.path(), "AKIAIOSFODNN7EXAMPLE", "not-checked");
    let err = deliver(
        &s3_destination(&moto, "no-such-bucket"),
        &pkg,
        &opts,
        &secrets,
    )
    .await
    .unwrap_err();
    let DeliveryError::Store { source, .. } = &err else {
        panic!("expected a store error, got {err:?}")
    };
    assert!(
        matches!(**source, object_store::Error::NotFound { .. }),
        "{source:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no-such-bucket"), "{msg}");
    assert!(msg.contains("NoSuchBucket"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_wrong_secret_is_refused_and_nothing_lands() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("exports").await;
    let (key_id, secret) = moto.require_auth().await;
    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path());
    let opts = DeliveryOptions::new("r-2026-0042", tmp.path());
    let err = deliver(
        &s3_destination(&moto, "exports"),
        &pkg,
        &opts,
        &s3_secrets(tmp.path(), &key_id, &wrong),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Store { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");
    assert!(!msg.contains(&wrong) && !msg.contains(&secret), "{msg}");
    assert!(
        s3_objects(&moto, "exports", (&key_id, &secret))
            .await
            .is_empty(),
        "nothing was written"
    );
}
