//! Rows as JSON objects, by column type: integers and floats as numbers, NUMERIC/DECIMAL as
//! strings (no precision lost), text, bytes as base64, dates and times in RFC 3339 form,
//! JSON columns as JSON, booleans, UUIDs, NULL.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Map, Value};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::{PgRow, PgTypeKind};
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Decode, Row, TypeInfo, ValueRef};

/// A value that could not be converted to JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}` ({type_name}): {message}")]
pub struct RowError {
    /// Column name.
    pub column: String,
    /// Database type name.
    pub type_name: String,
    /// What went wrong.
    pub message: String,
}

/// Converts one row to a JSON object.
pub trait RowJson {
    /// The row as `{column: value}` in column order.
    fn to_json(&self) -> Result<Map<String, Value>, RowError>;
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

fn naive(dt: NaiveDateTime) -> Value {
    Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn utc(dt: DateTime<Utc>) -> Value {
    Value::String(dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn unsupported(type_name: &str) -> String {
    format!(
        "dsrctl does not convert this type; select it cast to text (e.g. in a `query`: `{}`)",
        match type_name {
            "MYSQL" => "CAST(col AS CHAR)",
            _ => "col::text",
        }
    )
}

macro_rules! get {
    ($row:expr, $i:expr, $t:ty) => {
        $row.try_get_unchecked::<$t, _>($i)
            .map_err(|e| e.to_string())
    };
}

impl RowJson for PgRow {
    fn to_json(&self) -> Result<Map<String, Value>, RowError> {
        let mut out = Map::with_capacity(self.columns().len());
        for (i, col) in self.columns().iter().enumerate() {
            let ti = col.type_info();
            let name = ti.name();
            let raw = self
                .try_get_raw(i)
                .map_err(|e| err(col.name(), name, e.to_string()))?;
            if raw.is_null() {
                out.insert(col.name().to_owned(), Value::Null);
                continue;
            }
            let v: Result<Value, String> = match name {
                "BOOL" => get!(self, i, bool).map(Value::Bool),
                "INT2" => get!(self, i, i16).map(Value::from),
                "INT4" => get!(self, i, i32).map(Value::from),
                "INT8" => get!(self, i, i64).map(Value::from),
                "OID" => get!(self, i, sqlx::postgres::types::Oid).map(|o| Value::from(o.0)),
                "FLOAT4" => get!(self, i, f32).map(|f| float(f64::from(f))),
                "FLOAT8" => get!(self, i, f64).map(float),
                "NUMERIC" => raw
                    .as_bytes()
                    .map_err(|e| e.to_string())
                    .and_then(super::numeric::pg_numeric_to_string)
                    .map(Value::String),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "citext" => {
                    get!(self, i, String).map(Value::String)
                }
                "BYTEA" => get!(self, i, Vec<u8>).map(|b| b64(&b)),
                "DATE" => get!(self, i, NaiveDate).map(|d| Value::String(d.to_string())),
                "TIME" => get!(self, i, NaiveTime).map(|t| Value::String(t.to_string())),
                "TIMESTAMP" => get!(self, i, NaiveDateTime).map(naive),
                "TIMESTAMPTZ" => get!(self, i, DateTime<Utc>).map(utc),
                "JSON" | "JSONB" => get!(self, i, Value),
                "UUID" => get!(self, i, uuid::Uuid).map(|u| Value::String(u.to_string())),
                "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" | "NAME[]" => {
                    get!(self, i, Vec<String>).map(Value::from)
                }
                "INT2[]" => get!(self, i, Vec<i16>).map(Value::from),
                "INT4[]" => get!(self, i, Vec<i32>).map(Value::from),
                "INT8[]" => get!(self, i, Vec<i64>).map(Value::from),
                "BOOL[]" => get!(self, i, Vec<bool>).map(Value::from),
                "FLOAT4[]" => get!(self, i, Vec<f32>)
                    .map(|v| Value::Array(v.into_iter().map(|f| float(f64::from(f))).collect())),
                "FLOAT8[]" => get!(self, i, Vec<f64>)
                    .map(|v| Value::Array(v.into_iter().map(float).collect())),
                "UUID[]" => get!(self, i, Vec<uuid::Uuid>).map(|v| {
                    Value::Array(
                        v.into_iter()
                            .map(|u| Value::String(u.to_string()))
                            .collect(),
                    )
                }),
                "DATE[]" => get!(self, i, Vec<NaiveDate>).map(|v| {
                    Value::Array(
                        v.into_iter()
                            .map(|d| Value::String(d.to_string()))
                            .collect(),
                    )
                }),
                "TIMESTAMPTZ[]" => get!(self, i, Vec<DateTime<Utc>>)
                    .map(|v| Value::Array(v.into_iter().map(utc).collect())),
                "JSON[]" | "JSONB[]" => get!(self, i, Vec<Value>).map(Value::Array),
                "XML" => get!(self, i, String).map(Value::String),
                // Money travels as an integer of the smallest unit (cents with the usual
                // two fractional digits of `lc_monetary`): an exact decimal string.
                "MONEY" => get!(self, i, sqlx::postgres::types::PgMoney).map(|m| {
                    let sign = if m.0 < 0 { "-" } else { "" };
                    let abs = m.0.unsigned_abs();
                    Value::String(format!("{sign}{}.{:02}", abs / 100, abs % 100))
                }),
                "INTERVAL" => get!(self, i, sqlx::postgres::types::PgInterval)
                    .map(|iv| Value::String(iso_interval(iv.months, iv.days, iv.microseconds))),
                "INET" | "CIDR" => raw
                    .as_bytes()
                    .map_err(|e| e.to_string())
                    .and_then(inet)
                    .map(Value::String),
                _ => match ti.kind() {
                    // Enums travel as their label's text.
                    PgTypeKind::Enum(_) => <&str as Decode<sqlx::Postgres>>::decode(raw)
                        .map(|s| Value::String(s.to_owned()))
                        .map_err(|e| e.to_string()),
                    _ => Err(unsupported("PG")),
                },
            };
            let v = v.map_err(|m| err(col.name(), name, m))?;
            out.insert(col.name().to_owned(), v);
        }
        Ok(out)
    }
}

impl RowJson for MySqlRow {
    fn to_json(&self) -> Result<Map<String, Value>, RowError> {
        let mut out = Map::with_capacity(self.columns().len());
        for (i, col) in self.columns().iter().enumerate() {
            let name = col.type_info().name();
            let raw = self
                .try_get_raw(i)
                .map_err(|e| err(col.name(), name, e.to_string()))?;
            if raw.is_null() {
                out.insert(col.name().to_owned(), Value::Null);
                continue;
            }
            let v: Result<Value, String> = match name {
                "BOOLEAN" => get!(self, i, bool).map(Value::Bool),
                "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => {
                    get!(self, i, i64).map(Value::from)
                }
                "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED"
                | "MEDIUMINT UNSIGNED" | "BIGINT UNSIGNED" | "YEAR" => {
                    get!(self, i, u64).map(Value::from)
                }
                "FLOAT" => get!(self, i, f32).map(|f| float(f64::from(f))),
                "DOUBLE" => get!(self, i, f64).map(float),
                "DECIMAL" | "CHAR" | "VARCHAR" | "TEXT" | "ENUM" | "SET" => {
                    <&str as Decode<sqlx::MySql>>::decode(raw)
                        .map(|s| Value::String(s.to_owned()))
                        .map_err(|e| e.to_string())
                }
                // TEXT with a `_bin` collation (MariaDB's JSON) also travels as BLOB: only the
                // `binary` collation means bytes.
                "BINARY" | "VARBINARY" | "BLOB"
                    if <String as sqlx::Type<sqlx::MySql>>::compatible(col.type_info()) =>
                {
                    get!(self, i, String).map(Value::String)
                }
                "BINARY" | "VARBINARY" | "BLOB" | "BIT" => get!(self, i, Vec<u8>).map(|b| b64(&b)),
                "DATE" => get!(self, i, NaiveDate).map(|d| Value::String(d.to_string())),
                "TIME" => get!(self, i, NaiveTime).map(|t| Value::String(t.to_string())),
                "DATETIME" => get!(self, i, NaiveDateTime).map(naive),
                "TIMESTAMP" => get!(self, i, DateTime<Utc>).map(utc),
                "JSON" => get!(self, i, Value),
                _ => Err(unsupported("MYSQL")),
            };
            let v = v.map_err(|m| err(col.name(), name, m))?;
            out.insert(col.name().to_owned(), v);
        }
        Ok(out)
    }
}

impl RowJson for SqliteRow {
    fn to_json(&self) -> Result<Map<String, Value>, RowError> {
        let mut out = Map::with_capacity(self.columns().len());
        for (i, col) in self.columns().iter().enumerate() {
            let declared = col.type_info().name().to_owned();
            let raw = self
                .try_get_raw(i)
                .map_err(|e| err(col.name(), &declared, e.to_string()))?;
            if raw.is_null() {
                out.insert(col.name().to_owned(), Value::Null);
                continue;
            }
            // SQLite is dynamically typed: the stored value's class decides, the declared type
            // only refines integers into booleans.
            let stored = raw.type_info().name().to_owned();
            let v: Result<Value, String> = match stored.as_str() {
                "INTEGER" | "BOOLEAN" if declared == "BOOLEAN" => {
                    get!(self, i, bool).map(Value::Bool)
                }
                "INTEGER" | "BOOLEAN" => get!(self, i, i64).map(Value::from),
                "REAL" => get!(self, i, f64).map(float),
                "BLOB" => get!(self, i, Vec<u8>).map(|b| b64(&b)),
                _ => get!(self, i, String).map(Value::String),
            };
            let v = v.map_err(|m| err(col.name(), &declared, m))?;
            out.insert(col.name().to_owned(), v);
        }
        Ok(out)
    }
}

/// An interval in ISO 8601 form, e.g. `P1Y2M3DT4H5M6.5S`.
fn iso_interval(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::from("P");
    let (y, m) = (months / 12, months % 12);
    if y != 0 {
        out.push_str(&format!("{y}Y"));
    }
    if m != 0 {
        out.push_str(&format!("{m}M"));
    }
    if days != 0 {
        out.push_str(&format!("{days}D"));
    }
    if micros != 0 || out.len() == 1 {
        out.push('T');
        let secs = micros / 1_000_000;
        let frac = (micros % 1_000_000).abs();
        let (h, rest) = (secs / 3600, secs % 3600);
        let (mi, s) = (rest / 60, rest % 60);
        if h != 0 {
            out.push_str(&format!("{h}H"));
        }
        if mi != 0 {
            out.push_str(&format!("{mi}M"));
        }
        if s != 0 || frac != 0 || (h == 0 && mi == 0) {
            if frac != 0 {
                let f = format!("{frac:06}");
                out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
            } else {
                out.push_str(&format!("{s}S"));
            }
        }
    }
    out
}

/// PostgreSQL's binary `inet`/`cidr`: family, prefix bits, is-cidr flag, length, address.
fn inet(b: &[u8]) -> Result<String, String> {
    let bad = || "malformed inet value".to_owned();
    let (&family, rest) = b.split_first().ok_or_else(bad)?;
    let (&bits, rest) = rest.split_first().ok_or_else(bad)?;
    let (&is_cidr, rest) = rest.split_first().ok_or_else(bad)?;
    let (&len, addr) = rest.split_first().ok_or_else(bad)?;
    let ip: std::net::IpAddr = match (family, len, addr) {
        (2, 4, a) if a.len() == 4 => std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(),
        (3, 16, a) if a.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            std::net::Ipv6Addr::from(o).into()
        }
        _ => return Err(bad()),
    };
    let full = if ip.is_ipv4() { 32 } else { 128 };
    Ok(if is_cidr == 1 || bits != full {
        format!("{ip}/{bits}")
    } else {
        ip.to_string()
    })
}

fn err(column: &str, type_name: &str, message: String) -> RowError {
    RowError {
        column: column.to_owned(),
        type_name: type_name.to_owned(),
        message,
    }
}
