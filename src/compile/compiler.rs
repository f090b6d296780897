use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::CompileError;
use crate::journal::{
    BoundConnector, CaptureRef, Disposition, IdentitySource, PLAN_FORMAT_VERSION, Plan,
    PlannedAction, PlannedStep, ServicePlan,
};
use crate::load::{LoadedPlaybook, Project};
use crate::model::{ConnectorConfig, DsrKind, KindSpec, Playbook, Request, Step, Tenant};

/// Compiles a request with the project's playbooks into a plan. Reads no files and
/// contacts nothing: the project is already loaded and validated.
pub fn compile(
    project: &Project,
    request: &Request,
    now: DateTime<Utc>,
) -> Result<Plan, CompileError> {
    let tenant =
        project
            .config
            .tenants
            .get(&request.tenant)
            .ok_or_else(|| CompileError::UnknownTenant {
                request: request.id.clone(),
                tenant: request.tenant.clone(),
                known: project
                    .config
                    .tenants
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;

    let mut playbooks: Vec<&LoadedPlaybook> = project.playbooks.iter().collect();
    playbooks.sort_by(|a, b| a.playbook.service.cmp(&b.playbook.service));

    // First pass: which services run, and with which kinds.
    let mut services = Vec::new();
    let mut runs: Vec<(&LoadedPlaybook, Vec<DsrKind>)> = Vec::new();
    for lp in &playbooks {
        let pb = &lp.playbook;
        let (disposition, connector) = disposition(pb, request.kind, tenant, &request.tenant)?;
        if let Disposition::Run { kinds } = &disposition {
            runs.push((lp, kinds.clone()));
        }
        services.push(ServicePlan {
            service: pb.service.clone(),
            playbook: lp.path.clone(),
            disposition,
            connector,
            notes: pb.notes.clone(),
            redact: pb.redact.clone(),
            holds: categories(&pb.holds),
            title: pb.title.clone(),
            processing: pb.processing.clone(),
        });
    }

    // Identities: given by the request, or discovered by a running service.
    let mut discovered: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for (lp, kinds) in &runs {
        for (identity, source) in &lp.playbook.discovers {
            let Some((step_id, capture)) = source.split_once('.') else {
                continue;
            };
            if let Some(kind) = kinds
                .iter()
                .find(|k| steps_of(&lp.playbook, **k).iter().any(|s| s.id == step_id))
            {
                let key = step_key(&lp.playbook.service, step_id, *kind, kinds.len());
                discovered.entry(identity.clone()).or_insert((
                    lp.playbook.service.clone(),
                    key,
                    capture.to_owned(),
                ));
            }
        }
    }
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    for (lp, _) in &runs {
        for identity in &lp.playbook.needs_identities {
            let known = request.subject.contains_key(identity)
                || discovered
                    .get(identity)
                    .is_some_and(|(svc, _, _)| svc != &lp.playbook.service)
                || lp.playbook.discovers.contains_key(identity);
            if !known {
                skipped.entry(lp.playbook.service.clone()).or_insert(format!(
                    "it needs the identity `{identity}`, which the request does not give and no running service discovers"
                ));
            }
        }
    }
    for sp in &mut services {
        if let Some(reason) = skipped.get(&sp.service) {
            sp.disposition = Disposition::Skipped {
                reason: reason.clone(),
            };
            sp.connector = None;
        }
    }
    runs.retain(|(lp, _)| !skipped.contains_key(&lp.playbook.service));

    // Second pass: step instances (counted first: a plan of 10,000 services must not
    // hold twice its steps' room while the vector grows).
    let count = runs
        .iter()
        .flat_map(|(lp, kinds)| kinds.iter().map(|k| steps_of(&lp.playbook, *k).len()))
        .sum();
    let mut steps = Vec::with_capacity(count);
    for (lp, kinds) in &runs {
        build_service_steps(lp, kinds, request, &discovered, &mut steps)?;
    }
    resolve_after(&runs, &mut steps)?;
    let steps = topological(steps)?;

    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        created_at: now,
        request: request.clone(),
        inputs: project.inputs.clone(),
        services,
        steps,
    })
}

fn disposition(
    pb: &Playbook,
    kind: DsrKind,
    tenant: &Tenant,
    tenant_name: &str,
) -> Result<(Disposition, Option<BoundConnector>), CompileError> {
    let kinds = match pb.dsr.get(kind) {
        None => {
            return Ok((
                Disposition::Skipped {
                    reason: format!("the playbook does not declare `{kind}`"),
                },
                None,
            ));
        }
        Some(KindSpec::Unsupported(u)) => {
            return Ok((
                Disposition::Exempt {
                    reason: u.unsupported.clone(),
                },
                None,
            ));
        }
        Some(KindSpec::Steps(_)) => vec![kind],
        Some(KindSpec::Reuse(_)) => expand_reuse(pb, kind, &mut Vec::new())?,
    };
    let Some(cfg) = tenant.connectors.get(&pb.connector) else {
        return Ok((
            Disposition::Skipped {
                reason: format!("tenant `{tenant_name}` has no connector `{}`", pb.connector),
            },
            None,
        ));
    };
    let bound = BoundConnector {
        tenant: tenant_name.to_owned(),
        name: pb.connector.clone(),
        kind: cfg.kind_name().to_owned(),
    };
    Ok((Disposition::Run { kinds }, Some(bound)))
}

/// The kinds whose steps a kind runs, reuses expanded in order (`restrict: same_as: [export,
/// delete]` with `export: same_as: [access]` runs access then delete).
fn expand_reuse(
    pb: &Playbook,
    kind: DsrKind,
    seen: &mut Vec<DsrKind>,
) -> Result<Vec<DsrKind>, CompileError> {
    let bad = |target: DsrKind| CompileError::BadReuse {
        service: pb.service.clone(),
        kind: kind.to_string(),
        target: target.to_string(),
    };
    if seen.contains(&kind) {
        return Err(bad(kind));
    }
    seen.push(kind);
    let out = match pb.dsr.get(kind) {
        Some(KindSpec::Steps(_)) => vec![kind],
        Some(KindSpec::Reuse(r)) => {
            let mut out = Vec::new();
            for target in &r.same_as {
                for k in expand_reuse(pb, *target, seen)? {
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
            out
        }
        _ => return Err(bad(kind)),
    };
    seen.pop();
    Ok(out)
}

/// The steps of `scope` whose results `step`'s templates may use: those it needs, directly
/// or not (validation refuses a template naming any other), itself (its verification reads
/// its own answer) and the step it previews from. Not every step of the phase: a derived
/// erasure has hundreds, and each step's context would copy every one's captures.
fn visible_scope(
    step: &Step,
    scope: &BTreeMap<String, String>,
    local_needs: &HashMap<&str, Vec<&str>>,
) -> BTreeMap<String, String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = vec![step.id.as_str()];
    if let Some(crate::model::Preview::Step(id)) = step.preview.as_deref() {
        todo.push(id);
    }
    while let Some(id) = todo.pop() {
        if seen.insert(id)
            && let Some(needs) = local_needs.get(id)
        {
            todo.extend(needs.iter().copied());
        }
    }
    scope
        .iter()
        .filter(|(local, _)| seen.contains(local.as_str()))
        .map(|(l, k)| (l.clone(), k.clone()))
        .collect()
}

/// The step a `for_each: step.capture` runs over.
fn for_each_source(step: &Step) -> Option<&str> {
    step.for_each
        .as_deref()
        .and_then(|r| r.split_once('.'))
        .map(|(id, _)| id)
}

/// The steps a kind declares (empty for a reuse or an exemption).
pub fn steps_of(pb: &Playbook, kind: DsrKind) -> &[Step] {
    pb.dsr.steps(kind)
}

fn step_key(service: &str, id: &str, kind: DsrKind, phases: usize) -> String {
    if phases > 1 {
        format!("{service}/{kind}.{id}")
    } else {
        format!("{service}/{id}")
    }
}

fn build_service_steps(
    lp: &LoadedPlaybook,
    kinds: &[DsrKind],
    request: &Request,
    discovered: &BTreeMap<String, (String, String, String)>,
    out: &mut Vec<PlannedStep>,
) -> Result<(), CompileError> {
    let pb = &lp.playbook;
    let mut previous_phase: Vec<String> = Vec::new();
    for &kind in kinds {
        let declared = steps_of(pb, kind);
        let scope: BTreeMap<String, String> = declared
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    step_key(&pb.service, &s.id, kind, kinds.len()),
                )
            })
            .collect();
        // What each step needs by id, its `for_each` source included (as validation sees it).
        let local_needs: HashMap<&str, Vec<&str>> = declared
            .iter()
            .map(|s| {
                let mut needs: Vec<&str> = s.needs.iter().map(String::as_str).collect();
                needs.extend(for_each_source(s));
                (s.id.as_str(), needs)
            })
            .collect();
        let mut phase_keys = Vec::new();
        for step in declared {
            let bad = |message: String| CompileError::BadReference {
                service: pb.service.clone(),
                step: step.id.clone(),
                message,
            };
            let key = scope[&step.id].clone();
            let action = planned_action(step).ok_or_else(|| {
                bad("a step needs exactly one action: http, sql, manual or wait".to_owned())
            })?;
            let mut needs: Vec<String> = Vec::new();
            for n in &step.needs {
                needs.push(
                    scope.get(n).cloned().ok_or_else(|| {
                        bad(format!("needs `{n}`, which is not a step of `{kind}`"))
                    })?,
                );
            }
            if step.needs.is_empty() {
                needs.extend(previous_phase.iter().cloned());
            }
            let for_each = match &step.for_each {
                None => None,
                Some(r) => {
                    let (id, capture) = r
                        .split_once('.')
                        .ok_or_else(|| bad(format!("for_each `{r}` must be `step-id.capture`")))?;
                    let step_key = scope.get(id).cloned().ok_or_else(|| {
                        bad(format!(
                            "for_each names `{id}`, which is not a step of `{kind}`"
                        ))
                    })?;
                    if !needs.contains(&step_key) {
                        needs.push(step_key.clone());
                    }
                    Some(CaptureRef {
                        step: step_key,
                        capture: capture.to_owned(),
                    })
                }
            };
            let mut identities = BTreeMap::new();
            for identity in &pb.needs_identities {
                if request.subject.contains_key(identity) {
                    continue;
                }
                if let Some((svc, src_key, capture)) = discovered.get(identity)
                    && svc != &pb.service
                {
                    if !needs.contains(src_key) {
                        needs.push(src_key.clone());
                    }
                    identities.insert(
                        identity.clone(),
                        IdentitySource {
                            step: src_key.clone(),
                            capture: capture.clone(),
                        },
                    );
                }
            }
            let discovers = pb
                .discovers
                .iter()
                .filter_map(|(identity, src)| {
                    let (id, capture) = src.split_once('.')?;
                    (id == step.id).then(|| (identity.clone(), capture.to_owned()))
                })
                .collect();
            out.push(PlannedStep {
                key: key.clone(),
                service: pb.service.clone(),
                id: step.id.clone(),
                kind,
                description: step.description.clone(),
                connector: match &action {
                    PlannedAction::Wait(_) => None,
                    PlannedAction::Manual(_) => step.connector.clone(),
                    _ => Some(
                        step.connector
                            .clone()
                            .unwrap_or_else(|| pb.connector.clone()),
                    ),
                },
                mutates: step.mutates.unwrap_or_else(|| action.mutates_by_default()),
                idempotent: step
                    .idempotent
                    .unwrap_or_else(|| action.idempotent_by_default()),
                action,
                needs,
                scope: visible_scope(step, &scope, &local_needs),
                identities,
                for_each,
                select: step.select.clone(),
                capture: step.capture.clone(),
                discovers,
                absent_on: step.absent_on.clone(),
                collect: step.collect.clone(),
                preview: step.preview.clone(),
                verify: step.verify.clone(),
                poll: step.poll.clone(),
            });
            phase_keys.push(key);
        }
        previous_phase = phase_keys;
    }
    Ok(())
}

fn planned_action(step: &Step) -> Option<PlannedAction> {
    if step.action_count() != 1 {
        return None;
    }
    if let Some(h) = &step.http {
        return Some(PlannedAction::Http(h.clone()));
    }
    if let Some(s) = &step.sql {
        return Some(PlannedAction::Sql(s.clone()));
    }
    if let Some(m) = &step.manual {
        return Some(PlannedAction::Manual(m.clone()));
    }
    if let Some(e) = &step.email {
        return Some(PlannedAction::Email(e.clone()));
    }
    step.wait.clone().map(PlannedAction::Wait)
}

/// Adds the cross-service `after` edges: `service` (all its steps) or `service/step-id`.
fn resolve_after(
    runs: &[(&LoadedPlaybook, Vec<DsrKind>)],
    steps: &mut [PlannedStep],
) -> Result<(), CompileError> {
    let mut by_service: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for s in steps.iter() {
        by_service
            .entry(s.service.clone())
            .or_default()
            .push((s.id.clone(), s.key.clone()));
    }
    for (lp, kinds) in runs {
        for &kind in kinds {
            for step in steps_of(&lp.playbook, kind) {
                if step.after.is_empty() {
                    continue;
                }
                let key = step_key(&lp.playbook.service, &step.id, kind, kinds.len());
                let mut extra = Vec::new();
                for target in &step.after {
                    let (service, id) = match target.split_once('/') {
                        Some((s, i)) => (s, Some(i)),
                        None => (target.as_str(), None),
                    };
                    // A service that does not run for this request imposes no order.
                    let Some(targets) = by_service.get(service) else {
                        continue;
                    };
                    extra.extend(
                        targets
                            .iter()
                            .filter(|(sid, _)| id.is_none_or(|i| i == sid))
                            .map(|(_, k)| k.clone()),
                    );
                }
                if let Some(planned) = steps.iter_mut().find(|s| s.key == key) {
                    for k in extra {
                        if !planned.needs.contains(&k) {
                            planned.needs.push(k);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Orders steps so that each comes after what it needs (stable: playbook order otherwise),
/// in place.
fn topological(mut steps: Vec<PlannedStep>) -> Result<Vec<PlannedStep>, CompileError> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.as_str(), i))
        .collect();
    let mut indegree = vec![0usize; steps.len()];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for n in &s.needs {
            if let Some(&j) = index.get(n.as_str()) {
                indegree[i] += 1;
                dependants[j].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependants[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() != steps.len() {
        let stuck: Vec<usize> = (0..steps.len()).filter(|i| indegree[*i] > 0).collect();
        return Err(CompileError::Cycle(cycle_path(&steps, &index, &stuck)));
    }
    // `place[i]`: where the step now at `i` goes; each swap puts one step in its place.
    let mut place = vec![0usize; steps.len()];
    for (pos, &i) in order.iter().enumerate() {
        place[i] = pos;
    }
    for i in 0..steps.len() {
        while place[i] != i {
            let j = place[i];
            steps.swap(i, j);
            place.swap(i, j);
        }
    }
    Ok(steps)
}

fn cycle_path(steps: &[PlannedStep], index: &HashMap<&str, usize>, stuck: &[usize]) -> String {
    // Walk `needs` from a stuck step until a step repeats: that loop is the cycle.
    let mut path = vec![stuck[0]];
    loop {
        let current = *path.last().unwrap_or(&stuck[0]);
        let next = steps[current]
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied())
            .find(|j| stuck.contains(j));
        let Some(next) = next else { break };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<&str> = path[pos..].iter().map(|&i| steps[i].key.as_str()).collect();
            cycle.push(steps[next].key.as_str());
            return cycle.join(" -> ");
        }
        path.push(next);
    }
    path.iter()
        .map(|&i| steps[i].key.as_str())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The connector config of a planned step in the request's tenant.
pub fn connector_config<'a>(
    project: &'a Project,
    tenant: &str,
    name: &str,
) -> Option<&'a ConnectorConfig> {
    project.config.tenants.get(tenant)?.connectors.get(name)
}

/// The data categories a playbook holds, each once, in the order first given (a dataset
/// names a category at every column that holds it).
fn categories(holds: &[crate::model::DataCategory]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    holds
        .iter()
        .filter(|h| seen.insert(h.category.as_str()))
        .map(|h| h.category.clone())
        .collect()
}
