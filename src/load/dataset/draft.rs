//! The draft dataset `dsrctl dataset introspect` writes: every table and column of the live
//! schema, keys and references as the database has them, and guessed categories and
//! identities, each marked `review` for a person to check.

use std::fmt::Write;

use super::guess::{guess_category, guess_identity};
use super::live::LiveView;
use crate::model::split_column_ref;

/// The draft playbook (YAML) for `service` on `connector`.
pub fn draft_playbook(service: &str, connector: &str, live: &LiveView) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# yaml-language-server: $schema=../schemas/playbook.schema.json\n\
         #\n\
         # Drafted by `dsrctl dataset introspect` from the connector `{connector}`. Every guess\n\
         # carries `review:`; check it, then delete the `review`. `dsrctl validate` warns until\n\
         # none is left, and `dsrctl coverage` tells when the schema grows.\n\
         service: {}\n\
         connector: {}\n\
         dataset:\n  tables:",
        scalar(service),
        scalar(connector)
    );
    for (name, table) in &live.tables {
        let _ = writeln!(y, "    {}:", scalar(name));
        let has_id = table.columns.iter().any(|(c, _)| c == "id");
        if table.key.is_empty() {
            let first = table
                .columns
                .first()
                .map(|(c, _)| c.clone())
                .unwrap_or_default();
            if !has_id {
                let _ = writeln!(y, "      key: [{}]", scalar(&first));
            }
            let _ = writeln!(
                y,
                "      review: \"the table has no primary key; name the columns that identify a row in `key`\""
            );
        } else if table.key != ["id"] {
            let keys: Vec<String> = table.key.iter().map(|k| scalar(k)).collect();
            let _ = writeln!(y, "      key: [{}]", keys.join(", "));
        }
        let _ = writeln!(y, "      columns:");
        for (column, ty) in &table.columns {
            let mut parts: Vec<String> = Vec::new();
            let mut guessed: Vec<&str> = Vec::new();
            let at = format!("{name}.{column}");
            let reference = live.foreign_keys.iter().find(|f| f.from == at);
            if let Some(id) = guess_identity(column) {
                parts.push(format!("identity: {id}"));
                guessed.push("identity");
            }
            if let Some(cat) = guess_category(column, ty) {
                parts.push(format!("category: {cat}"));
                guessed.push("category");
            }
            // A composite foreign key to the other table's primary key is followed as one
            // (its columns make up the `key` written above); to other columns, each alone.
            let alone = reference.is_some_and(|r| {
                r.composite
                    && !split_column_ref(&r.to).is_some_and(|(t, c)| {
                        live.tables
                            .get(t)
                            .is_some_and(|t| t.key.len() > 1 && t.key.iter().any(|k| k == c))
                    })
            });
            if let Some(r) = reference {
                parts.push(format!("references: {}", scalar(&r.to)));
                if alone {
                    parts.push(
                        "review: \"one column of a composite foreign key to columns other than the table's key; the traversal follows it alone\""
                            .to_owned(),
                    );
                }
            }
            if !guessed.is_empty() && !alone {
                parts.push(format!(
                    "review: \"{} guessed from the name and type ({ty})\"",
                    guessed.join(" and ")
                ));
            }
            if parts.is_empty() {
                let _ = writeln!(y, "        {}:", scalar(column));
            } else {
                let _ = writeln!(y, "        {}: {{ {} }}", scalar(column), parts.join(", "));
            }
        }
    }
    y.push_str(
        "dsr:\n  rectify: { unsupported: \"not described yet: write rectify steps, or say why it cannot be done\" }\n",
    );
    y
}

/// A YAML scalar: plain when safe, else a JSON string (which YAML reads as the same text).
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !s.starts_with(|c: char| c == '-' || c == '.' || c.is_ascii_digit())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}
