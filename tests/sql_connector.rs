//! The SQL connector against the real PostgreSQL and MariaDB servers and SQLite: the same
//! test bodies on each backend, each test in its own schema / database / file.

mod sql_support;

use dsrctl::connectors::{Connector, ConnectorError, RecordSink};
use dsrctl::journal::hmac_sha256_hex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sql_support::{Db, HMAC_KEY, Kind, op};

on_all_backends!(
    access_select_converts_types,
    rectify_update_previews_and_verifies,
    delete_through_previews_and_verifies,
    deletes_are_verified_together_each_by_its_own_count,
    masks_hash_hmac_random_null,
    hostile_values_touch_no_other_row,
    max_rows_rolls_back,
    raw_sql_binds_named_parameters,
    streaming_200k_rows_into_a_sink,
    concurrent_steps_share_the_pool,
);

async fn access_select_converts_types(kind: Kind) {
    let db = Db::new(kind, "access").await;
    let c = db.t("customers");
    let rows = db
        .read(json!({ "select": { "table": c, "where": { "email": "ada@example.com" } } }))
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["id"], json!(1));
    assert_eq!(r["email"], json!("ada@example.com"));
    assert_eq!(r["score"], json!(1.5));
    assert_eq!(r["active"], json!(true));
    assert_eq!(r["born"], json!("1990-01-02"));
    assert_eq!(r["avatar"], json!("AQI="), "bytes as base64");
    assert_eq!(r["ext_id"], json!("8f14e45f-ceea-467f-a0e6-f5c3b1e3c3a1"));
    match kind {
        Kind::Pg => {
            assert_eq!(r["balance"], json!("12.50"), "NUMERIC as an exact string");
            assert_eq!(r["created"], json!("2024-05-06T07:08:09Z"));
            assert_eq!(r["prefs"], json!({ "lang": "en" }), "JSONB as JSON");
        }
        Kind::My => {
            assert_eq!(r["balance"], json!("12.50"), "DECIMAL as an exact string");
            assert_eq!(r["created"], json!("2024-05-06T07:08:09"));
            // MariaDB's JSON is LONGTEXT: the document arrives as text.
            assert_eq!(r["prefs"], json!("{\"lang\":\"en\"}"));
        }
        Kind::Lite => {
            assert_eq!(r["balance"], json!(12.5));
            assert_eq!(r["created"], json!("2024-05-06 07:08:09"));
            assert_eq!(r["prefs"], json!("{\"lang\":\"en\"}"));
        }
    }
    let bob = db
        .read(json!({ "select": { "table": c, "columns": ["id", "prefs", "active"], "where": { "id": "2" } } }))
        .await
        .expect("select by a templated id");
    assert_eq!(
        bob,
        vec![json!({ "id": 2, "prefs": null, "active": false })]
    );

    // Export of a customer's orders through the foreign key, ordered.
    let orders = db
        .read(json!({ "select": {
            "table": db.t("orders"), "order_by": ["id"],
            "through": { "table": c, "column": "customer_id", "where": { "email": "ada@example.com" } }
        } }))
        .await
        .expect("through");
    let ids: Vec<&Value> = orders.iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, [&json!(10), &json!(11), &json!(12)]);
    let in_list = db
        .read(json!({ "select": { "table": c, "where": { "id": [1, "3"] }, "order_by": ["id"] } }))
        .await
        .expect("IN");
    assert_eq!(in_list.len(), 2);
    let empty = db
        .read(json!({ "select": { "table": c, "where": { "id": [] } } }))
        .await
        .expect("empty IN");
    assert!(empty.is_empty(), "an empty list matches nothing");
    db.drop().await;
}

async fn rectify_update_previews_and_verifies(kind: Kind) {
    let db = Db::new(kind, "rectify").await;
    let c = db.t("customers");
    let update = op(json!({
        "update": { "table": c, "set": { "city": "Berlin", "name": "Ada L." }, "where": { "email": "ada@example.com" } },
        "max_rows": 1
    }));
    let preview = db
        .client
        .preview(&update)
        .await
        .expect("preview")
        .expect("structured");
    assert_eq!(preview.count, 1);
    assert_eq!(preview.before[0]["city"], json!("London"));
    let after = preview.after.expect("after");
    assert_eq!(after[0]["city"], json!("Berlin"));
    assert_eq!(after[0]["name"], json!("Ada L."));
    assert_eq!(
        after[0]["email"],
        json!("ada@example.com"),
        "other columns unchanged"
    );
    assert_eq!(
        db.count("customers").await,
        3,
        "the preview changed nothing"
    );

    let r = db.client.mutate(&update).await.expect("update");
    assert_eq!(r.affected, Some(1));
    let v = db
        .client
        .verify(&update)
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{}", v.detail);
    let bob = db
        .read(json!({ "select": { "table": c, "where": { "id": 2 } } }))
        .await
        .expect("bob");
    assert_eq!(bob[0]["city"], json!("Paris"));

    // An update of the predicate's own column is verified by key, not by the old predicate.
    let rename = op(json!({
        "update": { "table": c, "set": { "email": "ada@new.example" }, "where": { "email": "ada@example.com" } }
    }));
    assert_eq!(
        db.client.mutate(&rename).await.expect("rename").affected,
        Some(1)
    );
    let v = db
        .client
        .verify(&rename)
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{}", v.detail);
    assert!(v.detail.contains("by key"), "{}", v.detail);
    // Verification from another process (no record of the write) still holds.
    let other = db.other_client(None);
    let v = other
        .verify(&rename)
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{}", v.detail);
    other.close().await;
    db.drop().await;
}

async fn delete_through_previews_and_verifies(kind: Kind) {
    let db = Db::new(kind, "delete").await;
    let (c, o) = (db.t("customers"), db.t("orders"));
    let orders = op(json!({
        "delete": { "table": o, "through": { "table": c, "column": "customer_id", "references": "id",
                                             "where": { "email": "ada@example.com" } } },
        "max_rows": 10
    }));
    let preview = db
        .client
        .preview(&orders)
        .await
        .expect("preview")
        .expect("structured");
    assert_eq!(preview.count, 3);
    assert_eq!(preview.before.as_array().map(Vec::len), Some(3));
    assert!(preview.after.is_none());
    let r = db.client.mutate(&orders).await.expect("delete orders");
    assert_eq!(r.affected, Some(3));
    let v = db
        .client
        .verify(&orders)
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{}", v.detail);
    assert_eq!(db.count("orders").await, 3, "other customers' orders stay");

    let customer = op(
        json!({ "delete": { "table": c, "where": { "email": "ada@example.com" } }, "max_rows": 1 }),
    );
    assert_eq!(
        db.client
            .mutate(&customer)
            .await
            .expect("delete customer")
            .affected,
        Some(1)
    );
    assert!(
        db.client
            .verify(&customer)
            .await
            .expect("verify")
            .expect("structured")
            .passed
    );
    assert_eq!(db.count("customers").await, 2);
    // Re-running a finished delete is success with nothing to do.
    assert_eq!(
        db.client.mutate(&customer).await.expect("again").affected,
        Some(0)
    );
    // An unfinished verification fails.
    let bob = op(json!({ "delete": { "table": c, "where": { "id": 2 } } }));
    let v = db
        .client
        .verify(&bob)
        .await
        .expect("verify")
        .expect("structured");
    assert!(!v.passed, "{}", v.detail);
    db.drop().await;
}

// A unit's deletes are checked in one query after their commit (`verify_many`): each gets
// the verification `verify` gives it alone, and one that cannot be checked fails alone.
async fn deletes_are_verified_together_each_by_its_own_count(kind: Kind) {
    let db = Db::new(kind, "verifymany").await;
    let (c, o) = (db.t("customers"), db.t("orders"));
    let ada_orders = op(json!({
        "delete": { "table": o, "through": { "table": c, "column": "customer_id", "references": "id",
                                             "where": { "email": "ada@example.com" } } }
    }));
    let ada = op(
        json!({ "delete": { "table": c, "where": { "email": "ADA@example.com" } },
                         "match": "case_insensitive" }),
    );
    let bob_orders = op(json!({ "delete": { "table": o, "where": { "customer_id": [2, "2"] } } }));
    let cy = op(json!({ "delete": { "table": c, "where": { "id": 3 } } }));
    let missing = op(json!({ "delete": { "table": db.t("no_such_table"), "where": { "id": 1 } } }));
    db.client.mutate(&ada_orders).await.expect("ada's orders");
    db.client.mutate(&ada).await.expect("ada");
    db.client.mutate(&bob_orders).await.expect("bob's orders");
    let ops = [&ada_orders, &ada, &bob_orders, &cy, &missing];
    let together = db.client.verify_many(&ops).await;
    assert_eq!(together.len(), ops.len());
    for (i, (got, op)) in together.iter().zip(ops).enumerate() {
        let alone = db.client.verify(op).await;
        match (got, alone) {
            (Ok(Some(v)), Ok(Some(w))) => {
                assert_eq!((v.passed, &v.detail), (w.passed, &w.detail), "delete {i}")
            }
            (Err(_), Err(_)) => assert_eq!(i, 4, "only the missing table fails"),
            (got, alone) => panic!("delete {i}: together {got:?}, alone {alone:?}"),
        }
    }
    let passed: Vec<bool> = together
        .iter()
        .map(|v| matches!(v, Ok(Some(v)) if v.passed))
        .collect();
    assert_eq!(passed, [true, true, true, false, false]);
    let cy_detail = &together[3].as_ref().unwrap().as_ref().unwrap().detail;
    assert!(cy_detail.ends_with("afterwards: 1"), "{cy_detail}");
    db.drop().await;
}

async fn masks_hash_hmac_random_null(kind: Kind) {
    let db = Db::new(kind, "masks").await;
    let c = db.t("customers");
    let masks = op(json!({
        "update": { "table": c, "key": ["id"], "where": { "id": [1, 2] }, "set": {
            "email": { "mask": "hash" },
            "name": { "mask": "hmac" },
            "city": { "mask": "random" },
            "born": { "mask": "null" },
            "ext_id": { "mask": "fixed", "value": "00000000-0000-0000-0000-000000000000" }
        } }
    }));
    let preview = db
        .client
        .preview(&masks)
        .await
        .expect("preview")
        .expect("structured");
    let after = preview.after.expect("after");
    assert_eq!(after[0]["email"], json!("<hash>"));
    assert_eq!(after[0]["name"], json!("<hmac>"));
    assert_eq!(after[0]["city"], json!("<random>"));
    assert_eq!(after[0]["born"], Value::Null);

    assert_eq!(
        db.client.mutate(&masks).await.expect("mask").affected,
        Some(2)
    );
    let v = db
        .client
        .verify(&masks)
        .await
        .expect("verify")
        .expect("structured");
    assert!(v.passed, "{}", v.detail);
    let rows = db
        .read(json!({ "select": { "table": c, "where": { "id": [1, 2] }, "order_by": ["id"] } }))
        .await
        .expect("read back");
    assert_eq!(
        rows[0]["email"],
        json!(hex::encode(Sha256::digest(b"ada@example.com")))
    );
    assert_eq!(
        rows[1]["email"],
        json!(hex::encode(Sha256::digest(b"bob@example.com")))
    );
    assert_eq!(
        rows[0]["name"],
        json!(hmac_sha256_hex(HMAC_KEY.as_bytes(), b"Ada"))
    );
    let (a, b) = (
        rows[0]["city"].as_str().unwrap(),
        rows[1]["city"].as_str().unwrap(),
    );
    assert_ne!(a, b, "random differs per row");
    assert_ne!(a, "London");
    assert_eq!(a.len(), 16);
    assert_eq!(rows[0]["born"], Value::Null);
    assert_eq!(
        rows[0]["ext_id"],
        json!("00000000-0000-0000-0000-000000000000")
    );
    let cy = db
        .read(json!({ "select": { "table": c, "where": { "id": 3 } } }))
        .await
        .expect("cy");
    assert_eq!(
        cy[0]["email"],
        json!("cy@example.com"),
        "rows outside the predicate keep their values"
    );

    // HMAC without a key is refused before anything is written.
    let keyless = db.other_client(None);
    let hmac = op(
        json!({ "update": { "table": c, "where": { "id": 3 }, "set": { "name": { "mask": "hmac" } } } }),
    );
    let err = keyless.mutate(&hmac).await.expect_err("no key");
    assert!(
        matches!(&err, ConnectorError::Refused(m) if m.contains("hmac_key")),
        "{err}"
    );
    keyless.close().await;
    db.drop().await;
}

async fn hostile_values_touch_no_other_row(kind: Kind) {
    let db = Db::new(kind, "hostile").await;
    let (c, o) = (db.t("customers"), db.t("orders"));
    let hostile = [
        "' OR 1=1 --",
        "\"; DROP TABLE customers; --",
        "ada@example.com' --",
        "` OR 1=1 #",
        "Zoë 🚀 ümlaut",
        "a\0b",
        "%",
        ":email",
    ];
    for h in hostile {
        let ops = [
            json!({ "delete": { "table": c, "where": { "email": h } } }),
            json!({ "delete": { "table": o, "through": { "table": c, "column": "customer_id", "where": { "email": [h, "nobody@x"] } } } }),
            json!({ "update": { "table": c, "set": { "city": "X" }, "where": { "name": h } } }),
            json!({ "execute": format!("DELETE FROM {} WHERE email = :email", db.q("customers")), "params": { "email": h } }),
        ];
        for v in ops {
            match db.client.mutate(&op(v)).await {
                Ok(r) => assert_eq!(r.affected, Some(0), "{h:?}"),
                Err(e) => {
                    // PostgreSQL refuses NUL in text: a clean error without the value.
                    assert!(h.contains('\0') && kind == Kind::Pg, "{h:?}: {e}");
                    assert!(matches!(e, ConnectorError::Refused(_)), "{e}");
                    assert!(!e.to_string().contains(h), "{e}");
                }
            }
        }
        assert_eq!(db.count("customers").await, 3, "{h:?}");
        assert_eq!(db.count("orders").await, 6, "{h:?}");
    }
    // A hostile identifier never reaches the database.
    let bad = op(
        json!({ "delete": { "table": "customers\"; DROP TABLE orders; --", "where": { "id": 1 } } }),
    );
    assert!(matches!(
        db.client.mutate(&bad).await,
        Err(ConnectorError::Refused(_))
    ));
    // Unicode round-trips as a value.
    let uni =
        op(json!({ "update": { "table": c, "set": { "city": "Zoë 🚀" }, "where": { "id": 1 } } }));
    db.client.mutate(&uni).await.expect("unicode");
    let row = db
        .read(json!({ "select": { "table": c, "where": { "city": "Zoë 🚀" } } }))
        .await
        .expect("read");
    assert_eq!(row.len(), 1);
    assert_eq!(db.count("orders").await, 6);
    db.drop().await;
}

async fn max_rows_rolls_back(kind: Kind) {
    let db = Db::new(kind, "maxrows").await;
    let (c, o) = (db.t("customers"), db.t("orders"));
    let wide = op(
        json!({ "delete": { "table": o, "where": { "customer_id": [1, 2, 3] } }, "max_rows": 2 }),
    );
    let err = db.client.mutate(&wide).await.expect_err("too many");
    assert_eq!(
        err.to_string(),
        "would change 6 rows, more than max_rows 2; rolled back"
    );
    assert_eq!(db.count("orders").await, 6);

    let upd = op(
        json!({ "update": { "table": c, "set": { "city": "X" }, "where": { "id": [1, 2] } }, "max_rows": 1 }),
    );
    assert!(matches!(
        db.client.mutate(&upd).await,
        Err(ConnectorError::Refused(_))
    ));
    let masked = op(
        json!({ "update": { "table": c, "set": { "email": { "mask": "hash" } }, "where": { "id": [1, 2] } }, "max_rows": 1 }),
    );
    assert!(matches!(
        db.client.mutate(&masked).await,
        Err(ConnectorError::Refused(_))
    ));
    let rows = db
        .read(json!({ "select": { "table": c, "order_by": ["id"] } }))
        .await
        .expect("rows");
    assert_eq!(rows[0]["city"], json!("London"));
    assert_eq!(rows[0]["email"], json!("ada@example.com"));

    let raw = op(json!({ "execute": format!("DELETE FROM {}", db.q("orders")), "max_rows": 1 }));
    assert!(matches!(
        db.client.mutate(&raw).await,
        Err(ConnectorError::Refused(_))
    ));
    assert_eq!(db.count("orders").await, 6);
    // A mutation without any predicate is refused outright.
    let all = op(json!({ "delete": { "table": o } }));
    assert!(matches!(
        db.client.mutate(&all).await,
        Err(ConnectorError::Refused(_))
    ));
    assert_eq!(db.count("orders").await, 6);
    db.drop().await;
}

async fn raw_sql_binds_named_parameters(kind: Kind) {
    let db = Db::new(kind, "raw").await;
    let c = db.q("customers");
    let rows = db
        .read(json!({
            "query": format!("SELECT id, email, 'literal :email' AS note FROM {c} WHERE email = :email OR name = :email"),
            "params": { "email": "bob@example.com" }
        }))
        .await
        .expect("query");
    assert_eq!(
        rows,
        vec![json!({ "id": 2, "email": "bob@example.com", "note": "literal :email" })]
    );
    let exec = op(json!({
        "execute": format!("UPDATE {c} SET city = :city WHERE email = :email"),
        "params": { "email": "bob@example.com", "city": "Lyon" }
    }));
    assert_eq!(
        db.client.preview(&exec).await.expect("preview"),
        None,
        "raw SQL previews by its own query"
    );
    assert_eq!(
        db.client.mutate(&exec).await.expect("execute").affected,
        Some(1)
    );
    let unknown = op(
        json!({ "query": format!("SELECT * FROM {c} WHERE email = :mail"), "params": { "email": "x" } }),
    );
    let err = db
        .client
        .read(&unknown, None)
        .await
        .expect_err("unknown parameter");
    assert!(err.to_string().contains(":mail"), "{err}");
    // A read operation cannot mutate and a mutation is not a read.
    assert!(db.client.read(&exec, None).await.is_err());
    db.drop().await;
}

struct Counter {
    n: u64,
    last: i64,
    ordered: bool,
}

impl RecordSink for Counter {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        let id = record["id"].as_i64().unwrap_or(-1);
        self.ordered &= id > self.last;
        self.last = id;
        self.n += 1;
        Ok(())
    }
}

async fn streaming_200k_rows_into_a_sink(kind: Kind) {
    let db = Db::new(kind, "stream").await;
    let e = db.q("events");
    db.exec(&format!(
        "CREATE TABLE {e} (id BIGINT PRIMARY KEY, customer_id BIGINT, payload TEXT)"
    ))
    .await;
    db.exec(&match kind {
        Kind::Pg => format!("INSERT INTO {e} SELECT g, 1, 'payload ' || g FROM generate_series(1, 200000) g"),
        Kind::My => format!("INSERT INTO {e} SELECT seq, 1, CONCAT('payload ', seq) FROM seq_1_to_200000"),
        Kind::Lite => format!(
            "INSERT INTO {e} WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 200000) \
             SELECT g, 1, 'payload ' || g FROM s"
        ),
    })
    .await;
    let mut sink = Counter {
        n: 0,
        last: 0,
        ordered: true,
    };
    let read = op(
        json!({ "select": { "table": db.t("events"), "where": { "customer_id": 1 }, "order_by": ["id"] } }),
    );
    let r = db
        .client
        .read(&read, Some(&mut sink))
        .await
        .expect("stream");
    assert_eq!(r.records, 200_000);
    assert_eq!(r.body, Value::Null, "streamed rows are not kept");
    assert_eq!(sink.n, 200_000);
    assert!(sink.ordered);
    db.drop().await;
}

mod dropped_connection_mid_step {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::dropped_connection_mid_step(Kind::Pg).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb() {
        super::dropped_connection_mid_step(Kind::My).await
    }
    // SQLite has no server connection to drop.
}

/// The step's connection is killed by the server while its transaction waits on a row lock:
/// the transaction is gone (rolled back), so the connector runs it again on a new connection.
async fn dropped_connection_mid_step(kind: Kind) {
    use sql_support::Admin;
    use sqlx::Row;
    let db = Db::new(kind, "dropped").await;
    let c = db.t("customers");
    let step = op(json!({
        "update": { "table": c, "set": { "city": "Oslo", "email": { "mask": "hash" } }, "where": { "id": 2 } },
        "max_rows": 1
    }));
    let client = db.client.clone();
    let qc = match kind {
        Kind::My => format!("`{}`.`customers`", db.ns),
        _ => db.q("customers"),
    };
    // Hold a lock on the row so the step waits inside its transaction.
    let (victim, killed) = match &db.admin {
        Admin::Pg(admin) => {
            let mut blocker = admin.begin().await.expect("begin");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM {qc} WHERE id = 2 FOR UPDATE"
            )))
            .execute(&mut *blocker)
            .await
            .expect("lock");
            let task = tokio::spawn(async move { client.mutate(&step).await });
            let find = format!(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%{}%'",
                db.ns
            );
            let pid = wait_for(|| async {
                sqlx::query(sqlx::AssertSqlSafe(find.clone()))
                    .fetch_optional(admin)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.get::<i32, _>(0))
            })
            .await;
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(admin)
                .await
                .expect("terminate");
            blocker.rollback().await.expect("release");
            (task, pid.to_string())
        }
        Admin::My(admin) => {
            let mut blocker = admin.begin().await.expect("begin");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM {qc} WHERE id = 2 FOR UPDATE"
            )))
            .execute(&mut *blocker)
            .await
            .expect("lock");
            let task = tokio::spawn(async move { client.mutate(&step).await });
            let find = format!(
                "SELECT id FROM information_schema.processlist WHERE db = '{}' AND info LIKE 'SELECT%FOR UPDATE'",
                db.ns
            );
            let id = wait_for(|| async {
                sqlx::query(sqlx::AssertSqlSafe(find.clone()))
                    .fetch_optional(admin)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.get::<i64, _>(0))
            })
            .await;
            sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
                .execute(admin)
                .await
                .expect("kill");
            blocker.rollback().await.expect("release");
            (task, id.to_string())
        }
        Admin::Lite => unreachable!("no server"),
    };
    let result = victim.await.expect("task");
    eprintln!("after killing connection {killed}: {result:?}");
    let bob = db
        .read(json!({ "select": { "table": c, "where": { "id": 2 } } }))
        .await
        .expect("read");
    match result {
        Ok(r) => {
            assert!(
                r.attempts >= 2,
                "connection {killed} was killed, yet one attempt: {r:?}"
            );
            assert_eq!(r.affected, Some(1));
            assert_eq!(bob[0]["city"], json!("Oslo"));
            assert_eq!(
                bob[0]["email"],
                json!(hex::encode(Sha256::digest(b"bob@example.com")))
            );
            let v = db.client.verify(&op(json!({
                "update": { "table": c, "set": { "city": "Oslo", "email": { "mask": "hash" } }, "where": { "id": 2 } },
                "max_rows": 1
            }))).await.expect("verify").expect("structured");
            assert!(v.passed, "{}", v.detail);
        }
        Err(e) => {
            // Failing is acceptable only with nothing half-done.
            assert_eq!(bob[0]["city"], json!("Paris"), "{e}");
            assert_eq!(bob[0]["email"], json!("bob@example.com"), "{e}");
        }
    }
    assert_eq!(db.count("customers").await, 3);
    db.drop().await;
}

async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the step never started waiting on the lock");
}

/// Steps of several subjects at once on one pool (SQLite included: a read-then-write
/// transaction must not fail on lock upgrade).
async fn concurrent_steps_share_the_pool(kind: Kind) {
    let db = Db::new(kind, "concurrent").await;
    let c = db.t("customers");
    let steps: Vec<_> = (0..12)
        .map(|i| {
            let client = db.client.clone();
            let step = op(json!({
                "update": { "table": c, "set": { "name": { "mask": "hash" }, "city": format!("c{i}") },
                            "where": { "id": 1 + i % 3 } },
                "max_rows": 1
            }));
            tokio::spawn(async move { client.mutate(&step).await })
        })
        .collect();
    for s in steps {
        let r = s.await.expect("task").expect("step");
        assert_eq!(r.affected, Some(1));
    }
    assert_eq!(db.count("customers").await, 3);
    db.drop().await;
}
