//! SQL erasure never touches the wrong person: identities match exactly whatever the column's
//! collation (MariaDB's case-insensitive, PAD SPACE default; PostgreSQL `citext` and
//! nondeterministic ICU collations; SQLite `NOCASE`), raw `execute` is re-checked before it
//! changes anything, and masks are checked against their columns before anything commits.
//! Each test runs on the real PostgreSQL and MariaDB servers and on SQLite.

mod sql_support;

use dsrctl::connectors::{Connector, ConnectorError, Operation};
use dsrctl::model::{SetValue, SqlAction};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use sql_support::{Db, Kind, op};

on_all_backends!(
    exact_identity_spares_bystanders_in_structured_steps,
    case_insensitive_matching_is_said_explicitly,
    raw_execute_guard_stops_before_a_stranger_is_touched,
    mask_null_writes_sql_null,
    hmac_too_long_for_its_column_is_found_by_the_dry_run,
    null_into_a_not_null_column_is_found_by_the_dry_run,
    a_masked_key_column_is_verified_through_its_new_key,
    hostile_identities_erase_exactly_their_own_rows,
    unusual_types_read_without_casts,
);

/// The people table with case-insensitive identity columns, in each engine's way, and five
/// rows: the same address in three casings, once with a trailing space, and someone else.
async fn people(db: &Db) -> String {
    let t = db.q("people");
    match db.kind {
        Kind::Pg => {
            // Concurrent tests may race to create the extension: one of them wins.
            let _ = db
                .client
                .mutate(&op(
                    json!({ "execute": "CREATE EXTENSION IF NOT EXISTS citext" }),
                ))
                .await;
            db.exec(&format!(
                "CREATE COLLATION \"{}\".ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
                db.ns
            ))
            .await;
            db.exec(&format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, email citext, login TEXT COLLATE \"{}\".ci, \
                 note VARCHAR(40), code VARCHAR(100) NOT NULL DEFAULT 'c')",
                db.ns
            ))
            .await;
        }
        Kind::My => {
            db.exec(&format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, email VARCHAR(100), login VARCHAR(100), \
                 note VARCHAR(40), code VARCHAR(100) NOT NULL DEFAULT 'c') \
                 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci"
            ))
            .await;
        }
        Kind::Lite => {
            db.exec(&format!(
                "CREATE TABLE {t} (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, \
                 login TEXT COLLATE NOCASE, note VARCHAR(40), code VARCHAR(100) NOT NULL DEFAULT 'c')"
            ))
            .await;
        }
    }
    db.exec(&format!(
        "INSERT INTO {t} (id, email, login) VALUES (1, 'a@x.com', 'ann'), (2, 'A@x.com', 'Ann'), \
         (3, 'A@X.COM', 'ANN'), (4, 'a@x.com ', 'ann '), (5, 'b@x.com', 'bob')"
    ))
    .await;
    db.t("people")
}

async fn ids(db: &Db) -> Vec<i64> {
    let rows = db
        .read(
            json!({ "select": { "table": db.t("people"), "columns": ["id"], "order_by": ["id"] } }),
        )
        .await
        .expect("ids");
    rows.iter().filter_map(|r| r["id"].as_i64()).collect()
}

fn affected(r: Result<dsrctl::connectors::Response, ConnectorError>) -> u64 {
    r.expect("mutation").affected.expect("affected")
}

// Regression (issue 16): on MariaDB's default collation, erasing `A@X.COM` or `a@x.com `
// also deleted `a@x.com` and `A@x.com`; the same with citext, ICU and NOCASE columns.
async fn exact_identity_spares_bystanders_in_structured_steps(kind: Kind) {
    let db = Db::new(kind, "exact").await;
    let t = people(&db).await;
    for (subject, row) in [("A@X.COM", 3), ("a@x.com ", 4), ("a@x.com", 1)] {
        let found = db
            .read(json!({ "select": { "table": t, "where": { "email": subject } } }))
            .await
            .expect("select");
        let found: Vec<Value> = found.iter().map(|r| r["id"].clone()).collect();
        assert_eq!(found, [json!(row)], "{kind:?}: select of {subject:?}");
        let preview = db
            .client
            .preview(&op(
                json!({ "delete": { "table": t, "where": { "email": subject } } }),
            ))
            .await
            .expect("preview")
            .expect("structured");
        assert_eq!(preview.count, 1, "{kind:?}: preview of {subject:?}");
    }
    let n = affected(
        db.client
            .mutate(&op(
                json!({ "delete": { "table": t, "where": { "email": "A@X.COM" } } }),
            ))
            .await,
    );
    assert_eq!(n, 1, "{kind:?}");
    assert_eq!(
        ids(&db).await,
        [1, 2, 4, 5],
        "{kind:?}: bystanders untouched"
    );
    let n = affected(
        db.client
            .mutate(&op(
                json!({ "delete": { "table": t, "where": { "login": ["ann ", "nobody"] } }, "max_rows": 5 }),
            ))
            .await,
    );
    assert_eq!(n, 1, "{kind:?}: an IN list compares exactly too");
    assert_eq!(ids(&db).await, [1, 2, 5], "{kind:?}");
    let n = affected(
        db.client
            .mutate(&op(json!({
                "update": { "table": t, "set": { "note": "erased" }, "where": { "email": "a@x.com" } }
            })))
            .await,
    );
    assert_eq!(n, 1, "{kind:?}: update");
    let notes = db
        .read(json!({ "select": { "table": t, "columns": ["id", "note"], "order_by": ["id"] } }))
        .await
        .expect("notes");
    assert_eq!(
        notes,
        [
            json!({ "id": 1, "note": "erased" }),
            json!({ "id": 2, "note": null }),
            json!({ "id": 5, "note": null })
        ],
        "{kind:?}"
    );
    // The verification of a delete counts with the same exact predicate.
    let v = db
        .client
        .verify(&op(
            json!({ "delete": { "table": t, "where": { "email": "A@X.COM" } } }),
        ))
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{kind:?}: {}", v.detail);
    db.drop().await;
}

async fn case_insensitive_matching_is_said_explicitly(kind: Kind) {
    let db = Db::new(kind, "ci").await;
    let t = people(&db).await;
    let del = op(json!({
        "delete": { "table": t, "where": { "email": "A@x.COM" } }, "match": "case_insensitive"
    }));
    let preview = db.client.preview(&del).await.expect("preview").expect("p");
    assert_eq!(
        preview.count, 3,
        "{kind:?}: three casings, not the trailing space"
    );
    assert_eq!(affected(db.client.mutate(&del).await), 3, "{kind:?}");
    assert_eq!(ids(&db).await, [4, 5], "{kind:?}");
    db.drop().await;
}

fn guarded(execute: &str, guard: &str, email: &str) -> Operation {
    let mut a: SqlAction = serde_json::from_value(json!({
        "execute": execute, "params": { "email": email }
    }))
    .expect("action");
    a.guard = Some(Box::new(
        serde_json::from_value(json!({ "query": guard, "params": { "email": email } }))
            .expect("guard"),
    ));
    Operation::Sql(a)
}

// Regression (issue 16): a raw `execute` compared through the column's collation deleted
// other people's rows; the re-read in its transaction now stops it first.
async fn raw_execute_guard_stops_before_a_stranger_is_touched(kind: Kind) {
    let db = Db::new(kind, "guard").await;
    people(&db).await;
    let t = db.q("people");
    // As a playbook writes it: compared through the column's own (case-insensitive) type.
    let param = if kind == Kind::Pg {
        "CAST(:email AS citext)"
    } else {
        ":email"
    };
    let loose = format!("DELETE FROM {t} WHERE email = {param}");
    let loose_read = format!("SELECT id, email FROM {t} WHERE email = {param}");
    let err = db
        .client
        .mutate(&guarded(&loose, &loose_read, "A@X.COM"))
        .await
        .expect_err("the guard refuses");
    assert!(
        matches!(&err, ConnectorError::Refused(m) if m.contains("not exactly")),
        "{kind:?}: {err}"
    );
    assert_eq!(ids(&db).await, [1, 2, 3, 4, 5], "{kind:?}: nothing changed");

    let exact_read = match kind {
        Kind::Pg => format!("SELECT id, email FROM {t} WHERE email::text = :email"),
        Kind::My => format!("SELECT id, email FROM {t} WHERE BINARY email = :email"),
        Kind::Lite => format!("SELECT id, email FROM {t} WHERE email = :email COLLATE BINARY"),
    };
    // The re-read is exact but the statement is not: it would change more rows than that.
    let err = db
        .client
        .mutate(&guarded(&loose, &exact_read, "A@X.COM"))
        .await
        .expect_err("more rows than the re-read");
    assert!(
        matches!(&err, ConnectorError::Refused(m) if m.contains("rolled back")),
        "{kind:?}: {err}"
    );
    assert_eq!(ids(&db).await, [1, 2, 3, 4, 5], "{kind:?}: rolled back");

    let exact = exact_read.replace("SELECT id, email FROM", "DELETE FROM");
    let n = affected(
        db.client
            .mutate(&guarded(&exact, &exact_read, "A@X.COM"))
            .await,
    );
    assert_eq!(n, 1, "{kind:?}");
    assert_eq!(ids(&db).await, [1, 2, 4, 5], "{kind:?}");
    db.drop().await;
}

// Regression (issue 16): an unquoted `mask: null` wrote the text `{"mask":null}`.
async fn mask_null_writes_sql_null(kind: Kind) {
    let v: SetValue = serde_json::from_value(json!({ "mask": null })).expect("mask: null");
    assert!(
        matches!(v, SetValue::Mask { .. }),
        "a YAML null strategy is the null mask: {v:?}"
    );
    let bad = serde_json::from_value::<SetValue>(json!({ "mask": "scramble" }))
        .expect_err("unknown strategy");
    assert!(bad.to_string().contains("not a masking strategy"), "{bad}");
    let db = Db::new(kind, "masknull").await;
    let t = people(&db).await;
    db.client
        .mutate(&op(
            json!({ "update": { "table": t, "set": { "note": "x" }, "where": { "id": 5 } } }),
        ))
        .await
        .expect("seed note");
    let upd = op(json!({
        "update": { "table": t, "set": { "note": { "mask": null } }, "where": { "email": "b@x.com" } }
    }));
    assert_eq!(affected(db.client.mutate(&upd).await), 1);
    let rows = db
        .read(json!({ "query": format!("SELECT note, note IS NULL AS gone FROM {} WHERE id = 5", db.q("people")) }))
        .await
        .expect("read");
    assert_eq!(rows[0]["note"], Value::Null, "{kind:?}: {rows:?}");
    let v = db.client.verify(&upd).await.expect("verify").expect("v");
    assert!(v.passed, "{}", v.detail);
    db.drop().await;
}

// Regression (issue 16): `hmac` into a `varchar(40)` passed the dry run, then failed with
// SQLSTATE 22001 after other steps had committed.
async fn hmac_too_long_for_its_column_is_found_by_the_dry_run(kind: Kind) {
    let db = Db::new(kind, "hmaclen").await;
    let t = people(&db).await;
    db.client
        .mutate(&op(
            json!({ "update": { "table": t, "set": { "note": "private" }, "where": { "id": 5 } } }),
        ))
        .await
        .expect("seed note");
    let upd = op(json!({
        "update": { "table": t, "set": { "note": { "mask": "hmac" } }, "where": { "email": "b@x.com" } }
    }));
    if kind != Kind::Lite {
        // SQLite does not enforce a declared length: nothing to find there.
        let err = db
            .client
            .preview(&upd)
            .await
            .expect_err("the dry run finds it");
        assert!(
            matches!(&err, ConnectorError::Refused(m) if m.contains("length: 40")),
            "{kind:?}: {err}"
        );
        let err = db
            .client
            .mutate(&upd)
            .await
            .expect_err("refused before running");
        assert!(matches!(err, ConnectorError::Refused(_)), "{err}");
    }
    let cut = op(json!({
        "update": { "table": t, "set": { "note": { "mask": "hmac", "length": 40 } }, "where": { "email": "b@x.com" } }
    }));
    assert!(db.client.preview(&cut).await.is_ok(), "{kind:?}");
    assert_eq!(affected(db.client.mutate(&cut).await), 1);
    let rows = db
        .read(json!({ "select": { "table": t, "columns": ["note"], "where": { "id": 5 } } }))
        .await
        .expect("read");
    assert_eq!(rows[0]["note"].as_str().map(str::len), Some(40), "{rows:?}");
    let v = db.client.verify(&cut).await.expect("verify").expect("v");
    assert!(v.passed, "{}", v.detail);
    db.drop().await;
}

async fn null_into_a_not_null_column_is_found_by_the_dry_run(kind: Kind) {
    let db = Db::new(kind, "notnull").await;
    let t = people(&db).await;
    let upd = op(json!({
        "update": { "table": t, "set": { "code": { "mask": "null" } }, "where": { "email": "b@x.com" } }
    }));
    let err = db
        .client
        .preview(&upd)
        .await
        .expect_err("found by the dry run");
    assert!(
        matches!(&err, ConnectorError::Refused(m) if m.contains("NOT NULL")),
        "{kind:?}: {err}"
    );
    let missing = op(json!({
        "update": { "table": t, "set": { "street": { "mask": "null" } }, "where": { "email": "b@x.com" } }
    }));
    let err = db
        .client
        .preview(&missing)
        .await
        .expect_err("no such column");
    assert!(err.to_string().contains("no column `street`"), "{err}");
    db.drop().await;
}

// Regression (issue 16): masking `visit.email` with `key: [email, last_visit]` committed,
// then failed verification because the re-read used the old key.
async fn a_masked_key_column_is_verified_through_its_new_key(kind: Kind) {
    let db = Db::new(kind, "maskkey").await;
    let v = db.q("visit");
    db.exec(&format!(
        "CREATE TABLE {v} (email VARCHAR(100) NOT NULL, last_visit VARCHAR(10) NOT NULL, pages INT, \
         PRIMARY KEY (email, last_visit)){}",
        if kind == Kind::My { " DEFAULT CHARSET = utf8mb4" } else { "" }
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {v} VALUES ('ada@example.com', '2026-01-02', 3), ('ada@example.com', '2026-02-03', 4), \
         ('bob@example.com', '2026-01-02', 5)"
    ))
    .await;
    let upd = op(json!({
        "update": { "table": db.t("visit"), "set": { "email": { "mask": "hmac" } },
                    "where": { "email": "ada@example.com" }, "key": ["email", "last_visit"] },
        "max_rows": 2
    }));
    assert_eq!(affected(db.client.mutate(&upd).await), 2, "{kind:?}");
    let ver = db.client.verify(&upd).await.expect("verify").expect("v");
    assert!(ver.passed, "{kind:?}: {}", ver.detail);
    let left = db
        .read(json!({ "select": { "table": db.t("visit"), "where": { "email": "ada@example.com" } } }))
        .await
        .expect("read");
    assert!(left.is_empty(), "{kind:?}: {left:?}");
    db.drop().await;
}

/// Values that tempt a collation or a careless statement: casings, trailing and leading
/// spaces, accents, SQL wildcards and quotes.
fn hostile() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[aAbBßéÉ%_'\"\\\\ ;-]{1,8}(@[xX]\\.[cC][oO][mM])?")
        .expect("regex")
}

fn variants(s: &str) -> Vec<String> {
    let mut out = vec![
        s.to_owned(),
        s.to_uppercase(),
        s.to_lowercase(),
        format!("{s} "),
        format!(" {s}"),
        s.trim_end().to_owned(),
        s.replace(['é', 'É'], "e"),
        s.replace('ß', "ss"),
        s.replace('%', "x"),
        "%".to_owned(),
    ];
    out.retain(|v| !v.is_empty());
    out.sort();
    out.dedup();
    out
}

// Property (issue 16): whatever the identity, a delete by it removes exactly the rows holding
// those bytes, and every bystander row is still there, counted.
async fn hostile_identities_erase_exactly_their_own_rows(kind: Kind) {
    let db = Db::new(kind, "hostile").await;
    people(&db).await;
    let t = db.q("people");
    let mut runner = TestRunner::deterministic();
    for case in 0..24 {
        let subject = hostile().new_tree(&mut runner).expect("value").current();
        db.exec(&format!("DELETE FROM {t}")).await;
        let rows = variants(&subject);
        for (i, v) in rows.iter().enumerate() {
            db.client
                .mutate(&op(json!({
                    "execute": format!("INSERT INTO {t} (id, email, login) VALUES ({i}, :v, :v)"),
                    "params": { "v": v }
                })))
                .await
                .unwrap_or_else(|e| panic!("insert {v:?}: {e}"));
        }
        let preview = db
            .client
            .preview(&op(
                json!({ "delete": { "table": db.t("people"), "where": { "email": subject } } }),
            ))
            .await
            .expect("preview")
            .expect("p");
        assert_eq!(
            preview.count, 1,
            "{kind:?} case {case}: {subject:?} among {rows:?}"
        );
        let n = affected(
            db.client
                .mutate(&op(json!({
                    "delete": { "table": db.t("people"), "where": { "login": [subject.clone()], "email": subject } },
                    "max_rows": 1
                })))
                .await,
        );
        assert_eq!(n, 1, "{kind:?} case {case}: {subject:?}");
        let left = db
            .read(json!({ "select": { "table": db.t("people"), "columns": ["email"] } }))
            .await
            .expect("rest");
        let mut left: Vec<String> = left
            .iter()
            .filter_map(|r| r["email"].as_str().map(str::to_owned))
            .collect();
        left.sort();
        let mut want: Vec<String> = rows.iter().filter(|v| **v != subject).cloned().collect();
        want.sort();
        assert_eq!(
            left, want,
            "{kind:?} case {case}: bystanders of {subject:?}"
        );
    }
    db.drop().await;
}

// Regression (issue 16): PostgreSQL `money` columns could not be read at all (nor inet,
// interval, most arrays); a preview or an access request failed on them.
async fn unusual_types_read_without_casts(kind: Kind) {
    let db = Db::new(kind, "types").await;
    let t = db.q("odd");
    let want = match kind {
        Kind::Pg => {
            db.exec(&format!(
                "CREATE TYPE \"{}\".mood AS ENUM ('calm', 'cross')",
                db.ns
            ))
            .await;
            db.exec(&format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, m MONEY, n NUMERIC(12,2), ip INET, net CIDR, \
                 span INTERVAL, ints INT[], texts TEXT[], flags BOOL[], fs FLOAT8[], \
                 mood \"{}\".mood, doc JSONB)",
                db.ns
            ))
            .await;
            db.exec(&format!(
                "INSERT INTO {t} VALUES (1, '-1234.56', 7.5, '10.1.2.3', '10.1.0.0/16', \
                 '1 year 2 months 3 days 04:05:06.5', '{{1,2}}', '{{a,b}}', '{{t,f}}', '{{1.5}}', \
                 'calm', '{{\"card\": 4111}}')"
            ))
            .await;
            json!({ "id": 1, "m": "-1234.56", "n": "7.50", "ip": "10.1.2.3", "net": "10.1.0.0/16",
                    "span": "P1Y2M3DT4H5M6.5S", "ints": [1, 2], "texts": ["a", "b"],
                    "flags": [true, false], "fs": [1.5], "mood": "calm", "doc": { "card": 4111 } })
        }
        Kind::My => {
            db.exec(&format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, n DECIMAL(12,2), mood ENUM('calm','cross'), \
                 tags SET('a','b'), y YEAR, b BIT(8), u MEDIUMINT UNSIGNED, ip INET6) DEFAULT CHARSET = utf8mb4"
            ))
            .await;
            db.exec(&format!(
                "INSERT INTO {t} VALUES (1, 7.5, 'calm', 'a,b', 2026, b'00000101', 7, '::ffff:10.1.2.3')"
            ))
            .await;
            json!({ "id": 1, "n": "7.50", "mood": "calm", "tags": "a,b", "y": 2026, "b": "BQ==",
                    "u": 7, "ip": "::ffff:10.1.2.3" })
        }
        Kind::Lite => {
            db.exec(&format!(
                "CREATE TABLE {t} (id INTEGER PRIMARY KEY, n DECIMAL(12,2), flag BOOLEAN, born DATE)"
            ))
            .await;
            db.exec(&format!("INSERT INTO {t} VALUES (1, 7.5, 1, '2026-01-02')"))
                .await;
            json!({ "id": 1, "n": 7.5, "flag": true, "born": "2026-01-02" })
        }
    };
    let rows = db
        .read(json!({ "select": { "table": db.t("odd"), "where": { "id": 1 } } }))
        .await
        .expect("read without casts");
    assert_eq!(rows, [want], "{kind:?}");
    db.drop().await;
}
