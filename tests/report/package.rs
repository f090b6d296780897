use std::io::Read;
use std::path::Path;

use dsrctl::journal::{StepOutcome, StepStatus};
use dsrctl::report::package::{
    PackageError, PackageFormat, PackageKey, PackageOptions, build_package, verify_package,
};
use serde_json::{Value, json};

use crate::fixture::{self, EMAIL};

fn spool(dir: &Path) {
    let users = dir.join("spool/entra-users");
    std::fs::create_dir_all(&users).unwrap();
    let lines = [
        json!({"id": "u1", "mail": EMAIL, "manager": {"displayName": "Bob Boss", "id": "m1"}}),
        json!({"id": "u1-alias", "mail": EMAIL, "manager": {"displayName": "Carol Chief"}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(users.join("profile.ndjson"), text + "\n").unwrap();
    let shop = dir.join("spool/shop-db");
    std::fs::create_dir_all(&shop).unwrap();
    std::fs::write(
        shop.join("orders.ndjson"),
        "{\"order\":1}\n{\"order\":2}\n{\"order\":3}\n",
    )
    .unwrap();
}

fn outcomes() -> Vec<StepOutcome> {
    let mut out = fixture::outcomes();
    let mut orders = StepOutcome::new(
        "shop-db/erase-customer",
        "shop-db/erase-customer",
        StepStatus::Succeeded,
    );
    orders.collected = Some("spool/shop-db/orders.ndjson".into());
    out.retain(|o| o.step != "shop-db/erase-customer");
    out.push(orders);
    out
}

fn opts(format: PackageFormat, key: Option<PackageKey>) -> PackageOptions {
    PackageOptions {
        format,
        key,
        run_id: Some("01JQ0000000000000000000000".into()),
        generated_at: fixture::ts("2026-03-20T10:00:00Z"),
        data_key: None,
        signer: None,
    }
}

#[test]
fn directory_package_with_manifest_and_redaction() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let out = tmp.path().join("package");
    let plan = fixture::plan("export");
    let manifest = build_package(
        &plan,
        &outcomes(),
        tmp.path(),
        &out,
        &opts(PackageFormat::Directory, None),
    )
    .unwrap();
    insta::assert_json_snapshot!("manifest", manifest);

    let profile: Value =
        serde_json::from_slice(&std::fs::read(out.join("entra-users/profile.json")).unwrap())
            .unwrap();
    assert_eq!(profile[0]["manager"]["displayName"], "[redacted]");
    assert_eq!(profile[0]["manager"]["id"], "m1");
    assert_eq!(
        profile[1]["mail"], EMAIL,
        "the subject's own data stays in the package"
    );
    let orders: Value =
        serde_json::from_slice(&std::fs::read(out.join("shop-db/orders.json")).unwrap()).unwrap();
    assert_eq!(orders.as_array().unwrap().len(), 3);
    let text = std::fs::read_to_string(out.join("entra-users/profile.json")).unwrap();
    assert!(!text.contains("Bob Boss") && !text.contains("Carol Chief"));

    verify_package(&out).unwrap();
}

#[test]
fn tampered_or_added_files_fail_verification() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let out = tmp.path().join("package");
    build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp.path(),
        &out,
        &opts(PackageFormat::Directory, None),
    )
    .unwrap();
    verify_package(&out).unwrap();

    let f = out.join("shop-db/orders.json");
    let mut text = std::fs::read_to_string(&f).unwrap();
    text = text.replace("\"order\": 2", "\"order\": 20");
    std::fs::write(&f, text).unwrap();
    let err = verify_package(&out).unwrap_err();
    assert!(
        matches!(err, PackageError::Checksum { ref path, .. } if path == "shop-db/orders.json"),
        "{err}"
    );

    let tmp2 = tempfile::tempdir().unwrap();
    spool(tmp2.path());
    let out2 = tmp2.path().join("package");
    build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp2.path(),
        &out2,
        &opts(PackageFormat::Directory, None),
    )
    .unwrap();
    std::fs::write(out2.join("entra-users/extra.json"), "[]").unwrap();
    assert!(
        matches!(verify_package(&out2), Err(PackageError::Unlisted(p)) if p == "entra-users/extra.json")
    );
    std::fs::remove_file(out2.join("entra-users/extra.json")).unwrap();
    std::fs::remove_file(out2.join("shop-db/orders.json")).unwrap();
    assert!(matches!(
        verify_package(&out2),
        Err(PackageError::Missing(_))
    ));
}

#[test]
fn encrypted_zip_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let key_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let key = PackageKey::parse(key_hex).unwrap();
    let out = tmp.path().join("export.zip.enc");
    let manifest = build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp.path(),
        &out,
        &opts(PackageFormat::Zip, Some(key.clone())),
    )
    .unwrap();

    let sealed = std::fs::read(&out).unwrap();
    assert_ne!(
        &sealed[12..14],
        b"PK",
        "the zip is not readable without the key"
    );
    // Decrypt by hand as the doc comment describes: nonce (12) || ciphertext || tag (16).
    use aes_gcm::aead::{Aead, KeyInit};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
    let plain = cipher
        .decrypt(aes_gcm::Nonce::from_slice(&sealed[..12]), &sealed[12..])
        .unwrap();
    assert_eq!(&plain[..2], b"PK");
    let zip_path = tmp.path().join("export.zip");
    std::fs::write(&zip_path, &plain).unwrap();
    assert_eq!(verify_package(&zip_path).unwrap(), manifest);

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("entra-users/profile.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("[redacted]"));

    // The same key in base64 decrypts too; another key does not.
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        hex::decode(key_hex).unwrap(),
    );
    assert_eq!(
        PackageKey::parse(&b64).unwrap().decrypt(&sealed).unwrap(),
        plain
    );
    let other = PackageKey::from_bytes([7; 32]);
    assert!(matches!(
        other.decrypt(&sealed),
        Err(PackageError::Crypto(_))
    ));
    assert!(matches!(
        PackageKey::parse("abcd"),
        Err(PackageError::BadKey)
    ));
}

#[test]
fn plain_zip_verifies_and_detects_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let out = tmp.path().join("export.zip");
    build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp.path(),
        &out,
        &opts(PackageFormat::Zip, None),
    )
    .unwrap();
    verify_package(&out).unwrap();
}

// Files are written several at a time; the zip still lists them in plan order (as the
// manifest does), the manifest last, and holds the same bytes as the directory package.
#[test]
fn zip_entries_follow_the_manifest_and_match_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let plan = fixture::plan("export");
    let build = |out: &Path, format| {
        build_package(&plan, &outcomes(), tmp.path(), out, &opts(format, None)).unwrap()
    };
    let zip_path = tmp.path().join("export.zip");
    let manifest = build(&zip_path, PackageFormat::Zip);
    let dir = tmp.path().join("package");
    assert_eq!(build(&dir, PackageFormat::Directory), manifest);

    let mut expected: Vec<String> = manifest
        .services
        .iter()
        .flat_map(|s| s.files.iter().map(|f| f.path.clone()))
        .collect();
    assert!(expected.len() >= 2, "{expected:?}");
    expected.push("manifest.json".into());
    expected.push("SHA256SUMS".into());
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    assert_eq!(names, expected);
    // Every entry carries the package's time (2026-03-20T10:00:00Z), not the zip default.
    for (i, name) in names.iter().enumerate() {
        let t = zip.by_index(i).unwrap().last_modified().unwrap();
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute()),
            (2026, 3, 20, 10, 0),
            "{name}"
        );
    }
    for name in &names {
        let mut bytes = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, std::fs::read(dir.join(name)).unwrap(), "{name}");
    }
}

#[test]
fn spool_paths_outside_the_run_directory_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outs = outcomes();
    outs[0].collected = Some("../../etc/passwd".into());
    let err = build_package(
        &fixture::plan("export"),
        &outs,
        tmp.path(),
        &tmp.path().join("p"),
        &opts(PackageFormat::Directory, None),
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::UnsafePath(_)), "{err}");
}

#[test]
fn a_bad_spool_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    std::fs::write(
        tmp.path().join("spool/shop-db/orders.ndjson"),
        "{\"order\":1}\nnot json\n",
    )
    .unwrap();
    let err = build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp.path(),
        &tmp.path().join("p"),
        &opts(PackageFormat::Directory, None),
    )
    .unwrap_err();
    assert!(
        matches!(err, PackageError::BadRecord { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_package_is_never_written_into_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    spool(tmp.path());
    let out = tmp.path().join("package");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("old.json"), "[]").unwrap();
    let err = build_package(
        &fixture::plan("export"),
        &outcomes(),
        tmp.path(),
        &out,
        &opts(PackageFormat::Directory, None),
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::NotEmpty(_)), "{err}");
}
