//! Intake and the request lifecycle decided by people: recording a request (approved at once
//! by the one approval rule when it may be), approving, declining and extending it. Every face
//! (`dsrctl request ...`, the HTTP API of `dsrctl serve`, `dsrctl request import`) records
//! them here, each change with its audit entry naming who acted.

use serde_json::json;

use super::{AUTO_APPROVAL, Workflow, WorkflowError, approval_needed};
use crate::journal::{RequestRecord, RequestState};
use crate::model::Request;
use crate::store::{AuditNote, DrpOrigin, RequestImport, StoreError};

/// How the ids of requests received through the Data Rights Protocol begin: such an id says
/// which agent may read the request, so no other intake may give one.
pub const DRP_ID_PREFIX: &str = "drp-";

/// Refuses an id of the Data Rights Protocol's kind.
pub fn reject_reserved_id(id: &str) -> Result<(), WorkflowError> {
    if id.starts_with(DRP_ID_PREFIX) {
        return Err(WorkflowError::ReservedId(id.to_owned()));
    }
    Ok(())
}

/// A request recorded at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The state it was recorded in: `approved` when the rule approved it, else `received`.
    pub state: RequestState,
    /// Why a person must approve it, when one must.
    pub approval_needed: Option<String>,
}

impl Workflow {
    /// The state a new request is recorded in, by the one approval rule on its plan with
    /// today's playbooks: `approved` when its plan erases and restricts nothing, else
    /// `received` with why a person must approve it. A request that cannot be planned yet
    /// waits for a person too.
    pub fn intake_decision(&self, request: &Request) -> Received {
        let why = match self.compile(request) {
            Ok(plan) => approval_needed(&plan),
            Err(e) => Some(format!("it cannot be planned yet ({e})")),
        };
        Received {
            state: if why.is_none() {
                RequestState::Approved
            } else {
                RequestState::Received
            },
            approval_needed: why,
        }
    }

    /// Records a new request, approved at once when the approval rule allows, with its
    /// audit entries (`request.received` by `actor`, and `request.approved` by intake). A
    /// request of a tenant the project does not define is refused, and so are an id already
    /// recorded ([`StoreError::DuplicateRequest`]) and an id of the Data Rights Protocol's
    /// kind ([`WorkflowError::ReservedId`]).
    pub async fn receive(
        &self,
        request: &Request,
        actor: Option<&str>,
    ) -> Result<Received, WorkflowError> {
        reject_reserved_id(&request.id)?;
        self.record_new(request, actor, None).await
    }

    /// Records a request an Authorized Agent sent through the Data Rights Protocol, as
    /// [`Workflow::receive`] does, with where it came from in the same transaction.
    pub async fn receive_from_agent(
        &self,
        request: &Request,
        actor: &str,
        origin: DrpOrigin,
    ) -> Result<Received, WorkflowError> {
        self.record_new(request, Some(actor), Some(origin)).await
    }

    async fn record_new(
        &self,
        request: &Request,
        actor: Option<&str>,
        drp: Option<DrpOrigin>,
    ) -> Result<Received, WorkflowError> {
        self.known_tenant(&request.tenant)?;
        let (decision, mut import) = self.intake(request.clone(), actor, false);
        import.drp = drp;
        // The request and its audit entries in one transaction: a crash or a failed append
        // cannot leave a request recorded that the audit log does not know. The reason marks
        // an approval as the rule's, so a start whose plan has come to need a person waits
        // for one.
        let recorded = self.store().import_requests(&[import]).await?;
        if recorded.first() != Some(&true) {
            return Err(StoreError::DuplicateRequest(request.id.clone()).into());
        }
        Ok(decision)
    }

    /// What intake records of a new request: its state by the approval rule and its audit
    /// entries (`imported` marks those of `dsrctl request import`).
    pub(super) fn intake(
        &self,
        request: Request,
        actor: Option<&str>,
        imported: bool,
    ) -> (Received, RequestImport) {
        let decision = self.intake_decision(&request);
        let auto = decision.state == RequestState::Approved;
        let mut detail = json!({"kind": request.kind, "tenant": request.tenant,
                                "jurisdiction": request.jurisdiction, "received": request.received});
        if imported {
            detail["imported"] = json!(true);
        }
        let mut audit = vec![AuditNote {
            kind: "request.received".to_owned(),
            detail,
            actor: actor.map(str::to_owned),
        }];
        if auto {
            audit.push(AuditNote {
                kind: "request.approved".to_owned(),
                detail: json!({"auto": true, "why": AUTO_APPROVAL}),
                actor: Some("intake".to_owned()),
            });
        }
        let import = RequestImport {
            request,
            state: decision.state,
            reason: auto.then(|| AUTO_APPROVAL.to_owned()),
            audit,
            drp: None,
        };
        (decision, import)
    }

    /// Refuses a tenant the project does not define, naming those it does.
    pub fn known_tenant(&self, tenant: &str) -> Result<(), WorkflowError> {
        let tenants = &self.project().config.tenants;
        if tenants.contains_key(tenant) {
            return Ok(());
        }
        Err(WorkflowError::UnknownTenant {
            tenant: tenant.to_owned(),
            known: tenants.keys().cloned().collect(),
        })
    }

    /// Approves a received request in the name of `by`.
    pub async fn approve_request(&self, id: &str, by: &str) -> Result<(), WorkflowError> {
        self.approve_request_because(id, by, None).await
    }

    /// Approves a received request in the name of `by`, with the reason when one is given.
    pub async fn approve_request_because(
        &self,
        id: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), WorkflowError> {
        self.store()
            .set_request_state(id, RequestState::Approved, None)
            .await?;
        let detail = match reason {
            Some(r) => json!({"reason": r}),
            None => json!({}),
        };
        self.store()
            .append_audit("request.approved", id, detail, Some(by))
            .await?;
        Ok(())
    }

    /// Declines a request, with the reason, in the name of `by`.
    pub async fn decline_request(
        &self,
        id: &str,
        reason: &str,
        by: Option<&str>,
    ) -> Result<(), WorkflowError> {
        self.store()
            .set_request_state(id, RequestState::Declined, Some(reason.to_owned()))
            .await?;
        self.store()
            .append_audit("request.declined", id, json!({"reason": reason}), by)
            .await?;
        Ok(())
    }

    /// Extends a request's deadline (once), with the reason, in the name of `by`.
    pub async fn extend_request(
        &self,
        id: &str,
        reason: &str,
        by: Option<&str>,
    ) -> Result<RequestRecord, WorkflowError> {
        let record = self.store().extend_request(id, reason).await?;
        self.store()
            .append_audit(
                "request.extended",
                id,
                json!({"reason": reason, "deadline": record.deadline}),
                by,
            )
            .await?;
        Ok(record)
    }
}

/// Whether an error is the store refusing an id already recorded.
pub fn is_duplicate(e: &WorkflowError) -> bool {
    matches!(e, WorkflowError::Store(StoreError::DuplicateRequest(_)))
}
