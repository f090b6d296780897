//! The shop database the dataset tests share: 14 tables on PostgreSQL, MariaDB or SQLite,
//! with multi-hop references, a many-to-many table, composite keys, a self-reference, a
//! table with two identity columns, an address shared by two customers, and bystanders.

#![allow(dead_code)]

use crate::sql_support::{Db, Kind};

/// A table: its name, its columns and its foreign keys (column, parent table).
type TableDef = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The tables in creation order (parents first).
const TABLES: &[TableDef] = &[
    (
        "address",
        "id INT NOT NULL, street VARCHAR(200), city VARCHAR(100), zip VARCHAR(20), PRIMARY KEY (id)",
        &[],
    ),
    (
        "customer",
        "id INT NOT NULL, email VARCHAR(200) NOT NULL, name VARCHAR(200), phone VARCHAR(50), \
         referred_by INT, home_address_id INT, PRIMARY KEY (id)",
        &[("referred_by", "customer"), ("home_address_id", "address")],
    ),
    (
        "product",
        "id INT NOT NULL, name VARCHAR(200), price INT, PRIMARY KEY (id)",
        &[],
    ),
    (
        "shop_order",
        "id INT NOT NULL, customer_id INT NOT NULL, shipping_address_id INT, placed_at VARCHAR(30), \
         PRIMARY KEY (id)",
        &[
            ("customer_id", "customer"),
            ("shipping_address_id", "address"),
        ],
    ),
    (
        "order_item",
        "order_id INT NOT NULL, line INT NOT NULL, product_id INT NOT NULL, qty INT, \
         PRIMARY KEY (order_id, line)",
        &[("order_id", "shop_order"), ("product_id", "product")],
    ),
    (
        "payment",
        "id INT NOT NULL, order_id INT NOT NULL, card_last4 VARCHAR(4), amount INT, PRIMARY KEY (id)",
        &[("order_id", "shop_order")],
    ),
    (
        "support_ticket",
        "id INT NOT NULL, email VARCHAR(200), alt_email VARCHAR(200), customer_id INT, \
         subject VARCHAR(200), PRIMARY KEY (id)",
        &[("customer_id", "customer")],
    ),
    (
        "ticket_message",
        "id INT NOT NULL, ticket_id INT NOT NULL, body TEXT, PRIMARY KEY (id)",
        &[("ticket_id", "support_ticket")],
    ),
    (
        "tag",
        "id INT NOT NULL, label VARCHAR(50), PRIMARY KEY (id)",
        &[],
    ),
    (
        "customer_tag",
        "customer_id INT NOT NULL, tag_id INT NOT NULL, PRIMARY KEY (customer_id, tag_id)",
        &[("customer_id", "customer"), ("tag_id", "tag")],
    ),
    (
        "login_event",
        "id INT NOT NULL, customer_id INT NOT NULL, ip VARCHAR(45), PRIMARY KEY (id)",
        &[("customer_id", "customer")],
    ),
    (
        "review",
        "id INT NOT NULL, customer_id INT NOT NULL, product_id INT NOT NULL, body TEXT, PRIMARY KEY (id)",
        &[("customer_id", "customer"), ("product_id", "product")],
    ),
    (
        "invoice",
        "id INT NOT NULL, billing_email VARCHAR(200), billing_name VARCHAR(200), total INT, PRIMARY KEY (id)",
        &[],
    ),
    (
        "consent_log",
        "id INT NOT NULL, email VARCHAR(200), purpose VARCHAR(100), PRIMARY KEY (id)",
        &[],
    ),
];

/// The rows: Alice (customer 1) is the subject; Bob and Carol are bystanders. Alice's order
/// 102 ships to Bob's home (address 2: shared), Carol was referred by Alice, ticket 3 names
/// Alice only in `alt_email`, and ticket 4's email differs from Alice's only in case.
const ROWS: &[(&str, &str)] = &[
    (
        "address",
        "(1, '1 Alice Rd', 'Paris', '75001'), (2, '2 Bob St', 'London', 'E1'), (3, '3 Carol Ave', 'Rome', '00100')",
    ),
    (
        "customer",
        "(1, 'alice@shop.test', 'Alice', '+33 1', NULL, 1), (2, 'bob@shop.test', 'Bob', '+44 2', NULL, 2), \
         (3, 'carol@shop.test', 'Carol', NULL, 1, 3)",
    ),
    ("product", "(1, 'Lamp', 20), (2, 'Desk', 150)"),
    (
        "shop_order",
        "(101, 1, 1, '2025-01-01'), (102, 1, 2, '2025-02-01'), (201, 2, 2, '2025-03-01'), (301, 3, 3, '2025-04-01')",
    ),
    (
        "order_item",
        "(101, 1, 1, 1), (101, 2, 2, 1), (102, 1, 1, 2), (201, 1, 1, 1), (301, 1, 2, 1)",
    ),
    (
        "payment",
        "(1, 101, '4242', 20), (2, 102, '4242', 40), (3, 201, '1111', 20)",
    ),
    (
        "support_ticket",
        "(1, 'alice@shop.test', NULL, 1, 'Broken lamp'), (2, 'bob@shop.test', 'bob2@shop.test', 2, 'Invoice'), \
         (3, 'old@alice.test', 'alice@shop.test', NULL, 'Old account'), (4, 'ALICE@shop.test', NULL, NULL, 'Case differs')",
    ),
    (
        "ticket_message",
        "(1, 1, 'It flickers'), (2, 1, 'Still'), (3, 2, 'Please resend'), (4, 3, 'Hello'), (5, 4, 'Not Alice')",
    ),
    ("tag", "(1, 'vip'), (2, 'newsletter')"),
    ("customer_tag", "(1, 1), (1, 2), (2, 2)"),
    (
        "login_event",
        "(1, 1, '10.0.0.1'), (2, 1, '10.0.0.2'), (3, 2, '10.0.0.3')",
    ),
    ("review", "(1, 1, 1, 'Nice lamp'), (2, 3, 2, 'Good desk')"),
    (
        "invoice",
        "(1, 'alice@shop.test', 'Alice', 20), (2, 'bob@shop.test', 'Bob', 20)",
    ),
    (
        "consent_log",
        "(1, 'alice@shop.test', 'newsletter'), (2, 'bob@shop.test', 'newsletter')",
    ),
];

/// The table names.
pub fn tables() -> Vec<&'static str> {
    TABLES.iter().map(|(t, _, _)| *t).collect()
}

/// Creates and fills the shop tables, foreign keys enforced.
pub async fn create_shop(db: &Db) {
    let tail = if db.kind == Kind::My {
        " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci"
    } else {
        ""
    };
    for (name, cols, fks) in TABLES {
        let mut ddl = format!("CREATE TABLE {} ({cols}", db.q(name));
        for (col, parent) in *fks {
            ddl.push_str(&format!(
                ", FOREIGN KEY ({col}) REFERENCES {}(id)",
                db.q(parent)
            ));
        }
        ddl.push(')');
        ddl.push_str(tail);
        db.exec(&ddl).await;
    }
    for (name, rows) in ROWS {
        db.exec(&format!("INSERT INTO {} VALUES {rows}", db.q(name)))
            .await;
    }
}

/// The shop's dataset playbook, as a privacy engineer writes it (table names as the
/// database names them, schema-qualified on PostgreSQL).
pub fn shop_dataset(db: &Db) -> String {
    shop_dataset_named(&|n| db.t(n))
}

/// The shop's dataset playbook with table names as `t` gives them.
pub fn shop_dataset_named(t: &dyn Fn(&str) -> String) -> String {
    format!(
        r#"# yaml-language-server: $schema=../schemas/playbook.schema.json
service: shop
description: The shop database, described once.
connector: db
dataset:
  tables:
    {address}:
      columns:
        id:
        street: user.contact.address.street
        city: user.contact.address.city
        zip: user.contact.address.postal_code
    {customer}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
        name: user.name
        phone: user.contact.phone_number
        referred_by: {{ references: {customer}.id }}
        home_address_id: {{ references: {address}.id }}
    {product}:
      columns: {{ id: , name: , price: }}
    {shop_order}:
      columns:
        id:
        customer_id: {{ references: {customer}.id }}
        shipping_address_id:
        placed_at:
    {order_item}:
      key: [order_id, line]
      columns: {{ order_id: , line: , product_id: , qty: }}
    {payment}:
      columns:
        id:
        order_id:
        card_last4: user.financial.bank_account
        amount:
    {support_ticket}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
        alt_email: {{ identity: email, category: user.contact.email }}
        customer_id: {{ references: {customer}.id }}
        subject: user.content
    {ticket_message}:
      columns: {{ id: , ticket_id: , body: user.content }}
    {tag}:
      columns: {{ id: , label: }}
    {customer_tag}:
      key: [customer_id, tag_id]
      columns: {{ customer_id: , tag_id: }}
    {login_event}:
      columns: {{ id: , customer_id: , ip: user.device.ip_address }}
    {review}:
      columns: {{ id: , customer_id: , product_id: , body: user.content }}
    {invoice}:
      erasure: mask
      columns:
        id:
        billing_email: {{ identity: email, category: user.contact.email }}
        billing_name: user.name
        total:
    {consent_log}:
      erasure: {{ keep: "proof of consent (GDPR art. 7(1))" }}
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
        purpose:
  references:
    - {shop_order}.shipping_address_id -> {address}.id
    - {order_item}.order_id -> {shop_order}.id
    - {order_item}.product_id -> {product}.id
    - {payment}.order_id -> {shop_order}.id
    - {ticket_message}.ticket_id -> {support_ticket}.id
    - {customer_tag}.customer_id -> {customer}.id
    - {{ from: {customer_tag}.tag_id, to: {tag}.id }}
    - {login_event}.customer_id -> {customer}.id
    - {review}.customer_id -> {customer}.id
    - {review}.product_id -> {product}.id
dsr:
  rectify: {{ unsupported: "corrections go through the shop's own admin" }}
"#,
        address = t("address"),
        customer = t("customer"),
        product = t("product"),
        shop_order = t("shop_order"),
        order_item = t("order_item"),
        payment = t("payment"),
        support_ticket = t("support_ticket"),
        ticket_message = t("ticket_message"),
        tag = t("tag"),
        customer_tag = t("customer_tag"),
        login_event = t("login_event"),
        review = t("review"),
        invoice = t("invoice"),
        consent_log = t("consent_log"),
    )
}

/// The project config: the database and the masking strategies of the categories.
pub fn shop_config(url: &str) -> String {
    format!(
        "tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"{url}\"\n        timeout: 20s\n\
         erasure:\n  user.contact: {{ mask: null }}\n  user.name: {{ mask: fixed, value: erased }}\n"
    )
}
