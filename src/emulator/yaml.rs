//! YAML fixtures: converts a YAML document to the JSON value it denotes.

use saphyr::{LoadableYamlNode, ScalarOwned, YamlOwned};
use serde_json::{Map, Value};

/// Parses `text` (one YAML document) into JSON; the error says what is wrong.
pub(crate) fn to_json(text: &str) -> Result<Value, String> {
    let docs = YamlOwned::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        Some(doc) => convert(doc),
        None => Ok(Value::Object(Map::new())),
    }
}

fn convert(node: YamlOwned) -> Result<Value, String> {
    Ok(match node {
        YamlOwned::Value(s) => scalar(s),
        YamlOwned::Representation(s, _, _) => Value::String(s),
        YamlOwned::Sequence(items) => {
            Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        YamlOwned::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match convert(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, convert(v)?);
            }
            Value::Object(out)
        }
        YamlOwned::Tagged(_, inner) => convert(*inner)?,
        YamlOwned::Alias(_) => return Err("YAML aliases are not supported in fixtures".into()),
        YamlOwned::BadValue => return Err("a YAML value could not be read".into()),
    })
}

fn scalar(s: ScalarOwned) -> Value {
    match s {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::from(i),
        ScalarOwned::FloatingPoint(f) => {
            serde_json::Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        ScalarOwned::String(s) => Value::String(s),
    }
}
