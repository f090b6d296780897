//! Dry-run previews: what a mutation would change, from reads only.

use serde_json::Value;

use super::Engine;
use super::executor::{RunCtx, lock};
use crate::connectors::{ConnectorError, Operation};
use crate::journal::{Change, ChangeAction, PlannedAction, PlannedStep};
use crate::model::{HttpMethod, Preview};

impl Engine {
    /// Computes the change a mutation would make. Never sends the mutation.
    pub(super) async fn preview_change(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        op: Option<&Operation>,
        item: Option<&Value>,
        tctx: &Value,
    ) -> Change {
        self.preview_checked(ctx, step, instance, op, item, tctx)
            .await
            .0
    }

    /// [`Engine::preview_change`], and why the mutation would be refused when the connector
    /// found, from reads only, that it cannot succeed (a mask too long for its column, NULL
    /// into a NOT NULL column): the dry run fails that step instead of the real run failing
    /// half-way.
    pub(super) async fn preview_checked(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        op: Option<&Operation>,
        item: Option<&Value>,
        tctx: &Value,
    ) -> (Change, Option<String>) {
        let mut change = Change {
            step: step.key.clone(),
            instance: instance.to_owned(),
            service: step.service.clone(),
            target: super::operation::target(&step.action),
            action: action_of(&step.action),
            before: None,
            after: None,
            count: None,
            reason: None,
            etag: None,
            fingerprint: None,
        };
        if let PlannedAction::Manual(m) = &step.action {
            // The instructions as the person will get them, with the subject's values (masked
            // by the views unless personal data is shown, sealed at rest like every change).
            change.reason = Some(
                self.renderer
                    .render(&m.instructions, tctx)
                    .unwrap_or_else(|_| m.instructions.clone()),
            );
            return (change, None);
        }
        change.after = after_of(op);
        let unknown = |mut c: Change, reason: String| {
            c.action = ChangeAction::Unknown;
            c.reason = Some(reason);
            c
        };
        match step.preview.as_deref() {
            Some(Preview::None(reason)) => return (unknown(change, reason.clone()), None),
            Some(Preview::Item) => match item {
                Some(item) => change.before = Some(item.clone()),
                None => {
                    return (
                        unknown(change, "`preview: item` outside a for_each".to_owned()),
                        None,
                    );
                }
            },
            Some(Preview::Step(id)) => {
                let key = step.scope.get(id).cloned().unwrap_or_else(|| id.clone());
                let found = lock(&ctx.bodies).get(&key).cloned();
                match found {
                    Some((body, etag)) => {
                        change.before = Some(body);
                        change.etag = etag;
                    }
                    None => {
                        change.count = Some(0);
                        change.reason = Some(format!("nothing held: `{id}` found nothing"));
                    }
                }
            }
            Some(Preview::Http(_) | Preview::Sql(_)) => {
                let read = match step.preview.as_deref() {
                    Some(Preview::Http(h)) => {
                        super::operation::http(&self.renderer, h, tctx, &[404])
                    }
                    Some(Preview::Sql(s)) => super::operation::sql(&self.renderer, s, tctx),
                    _ => unreachable!("matched above"),
                };
                let read = match read {
                    Ok(r) => r,
                    Err(e) => {
                        return (
                            unknown(
                                change,
                                format!("the preview read cannot be built: {}", e.message),
                            ),
                            None,
                        );
                    }
                };
                match self.call_read(ctx, step, &read, None).await {
                    Ok(resp) if resp.absent => {
                        change.count = Some(0);
                        change.reason =
                            Some("nothing held: the preview read found nothing".to_owned());
                    }
                    Ok(resp) => {
                        change.etag = resp.headers.get("etag").cloned();
                        change.before = Some(resp.body);
                    }
                    Err(e) => {
                        return (
                            unknown(change, format!("the preview read failed: {e}")),
                            None,
                        );
                    }
                }
            }
            None if step.action.previews_itself() => {
                let Some(op) = op else {
                    return (unknown(change, "no operation to preview".to_owned()), None);
                };
                match self.connector_preview(ctx, step, op).await {
                    Ok(Some(p)) => {
                        change.before = Some(p.before);
                        if p.after.is_some() {
                            change.after = p.after;
                        }
                        change.count = Some(p.count);
                    }
                    Ok(None) => {
                        return (
                            unknown(
                                change,
                                "the connector cannot preview this operation".to_owned(),
                            ),
                            None,
                        );
                    }
                    // The connector found, from reads, that the mutation cannot succeed.
                    Err(ConnectorError::Refused(why)) => {
                        let reason = format!("would fail: {why}");
                        return (unknown(change, reason.clone()), Some(reason));
                    }
                    Err(e) => {
                        return (
                            unknown(change, format!("the preview read failed: {e}")),
                            None,
                        );
                    }
                }
            }
            None => {
                return (
                    unknown(
                        change,
                        "the step declares no `preview`, so its effect cannot be shown".to_owned(),
                    ),
                    None,
                );
            }
        }
        if change.count.is_none() {
            change.count = change.before.as_ref().map(super::capture::count_records);
        }
        change.fingerprint = change
            .before
            .as_ref()
            .map(|b| crate::journal::sha256_hex(b.to_string().as_bytes()));
        (change, None)
    }
}

fn action_of(action: &PlannedAction) -> ChangeAction {
    match action {
        PlannedAction::Http(h) => match h.method {
            HttpMethod::Delete => ChangeAction::Delete,
            HttpMethod::Patch | HttpMethod::Put => ChangeAction::Update,
            HttpMethod::Post => ChangeAction::Send,
            HttpMethod::Get | HttpMethod::Head => ChangeAction::Unknown,
        },
        PlannedAction::Sql(s) => {
            if s.delete.is_some() {
                ChangeAction::Delete
            } else if s.update.is_some() {
                ChangeAction::Update
            } else if s
                .execute
                .as_deref()
                .is_some_and(|q| q.trim_start().to_ascii_lowercase().starts_with("delete"))
            {
                ChangeAction::Delete
            } else {
                ChangeAction::Update
            }
        }
        PlannedAction::Manual(_) => ChangeAction::Manual,
        PlannedAction::Email(_) => ChangeAction::Send,
        PlannedAction::Wait(_) => ChangeAction::Unknown,
    }
}

fn after_of(op: Option<&Operation>) -> Option<Value> {
    match op? {
        Operation::Http(h) => h.json_patch.clone().or_else(|| h.json.clone()).or_else(|| {
            h.form.as_ref().map(|f| {
                Value::Object(
                    f.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                )
            })
        }),
        Operation::Sql(_) | Operation::Email(_) => None,
    }
}
