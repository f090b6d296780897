//! `select`: keeping only the records of a read's result that match the subject, for
//! services whose API has no filter (IoT Central users, DPS enrollments).

use serde_json::Value;

use crate::compile::{Renderer, TemplateError};
use crate::model::Select;

/// A `select` with its templates rendered for one instance.
#[derive(Debug, Clone)]
pub(super) struct Matcher {
    items: String,
    conditions: Vec<(String, String)>,
    ignore_case: bool,
}

impl Matcher {
    /// Renders the expected values of `select.where` against the step's context.
    pub(super) fn render(r: &Renderer, s: &Select, ctx: &Value) -> Result<Self, TemplateError> {
        let conditions = s
            .filter
            .iter()
            .map(|(pointer, template)| Ok((pointer.clone(), r.render(template, ctx)?)))
            .collect::<Result<_, TemplateError>>()?;
        Ok(Matcher {
            items: s.items.clone(),
            conditions,
            ignore_case: s.ignore_case,
        })
    }

    /// Whether one record meets every condition. A missing value never matches.
    pub(super) fn matches(&self, record: &Value) -> bool {
        self.conditions.iter().all(|(pointer, want)| {
            let text = match record.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                _ => return false,
            };
            if self.ignore_case {
                text.to_lowercase() == want.to_lowercase()
            } else {
                &text == want
            }
        })
    }

    /// Drops the records that do not match from the list at `items`. A single record
    /// there is kept when it matches and becomes `null` otherwise; nothing there stays
    /// nothing.
    pub(super) fn apply(&self, body: &mut Value) {
        let target = if self.items.is_empty() {
            Some(body)
        } else {
            body.pointer_mut(&self.items)
        };
        match target {
            Some(Value::Array(records)) => records.retain(|r| self.matches(r)),
            Some(Value::Null) | None => {}
            Some(single) => {
                if !self.matches(single) {
                    *single = Value::Null;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(yaml_where: &[(&str, &str)], items: &str, ignore_case: bool) -> Select {
        Select {
            items: items.to_owned(),
            filter: yaml_where
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ignore_case,
        }
    }

    #[test]
    fn keeps_only_matching_records_of_a_list() {
        let r = Renderer::new();
        let ctx = json!({"subject": {"email": "Alice@Contoso.com"}});
        let m = Matcher::render(
            &r,
            &select(&[("/email", "{{subject.email}}")], "", true),
            &ctx,
        )
        .unwrap();
        let mut body = json!([
            {"id": "u1", "email": "alice@contoso.com"},
            {"id": "u2", "email": "bob@contoso.com"},
            {"id": "sp", "type": "servicePrincipal"}
        ]);
        m.apply(&mut body);
        assert_eq!(body, json!([{"id": "u1", "email": "alice@contoso.com"}]));
    }

    #[test]
    fn case_counts_unless_ignored_and_every_condition_must_hold() {
        let r = Renderer::new();
        let ctx = json!({"subject": {"email": "Alice@Contoso.com"}});
        let m = Matcher::render(
            &r,
            &select(
                &[("/email", "{{subject.email}}"), ("/n", "2")],
                "/value",
                false,
            ),
            &ctx,
        )
        .unwrap();
        let mut body = json!({"value": [
            {"email": "alice@contoso.com", "n": 2},
            {"email": "Alice@Contoso.com", "n": 2},
            {"email": "Alice@Contoso.com", "n": 3}
        ]});
        m.apply(&mut body);
        assert_eq!(
            body,
            json!({"value": [{"email": "Alice@Contoso.com", "n": 2}]})
        );
    }

    #[test]
    fn a_single_record_that_does_not_match_becomes_nothing() {
        let r = Renderer::new();
        let ctx = json!({"subject": {"email": "a@x.com"}});
        let m = Matcher::render(
            &r,
            &select(&[("/email", "{{subject.email}}")], "", false),
            &ctx,
        )
        .unwrap();
        let mut body = json!({"email": "b@x.com"});
        m.apply(&mut body);
        assert!(body.is_null());
        let missing = Matcher::render(&r, &select(&[("/x", "{{subject.phone}}")], "", false), &ctx);
        assert!(missing.unwrap_err().missing.is_some());
    }
}
