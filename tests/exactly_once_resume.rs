//! Resuming a mutation in doubt, through the library: a verification deferred by
//! `verify.after` decides when it is due (on a clock the test moves), and a crash that left
//! a mutation `running` is treated like a lost answer.

mod support;

use dsrctl::compile::compile;
use dsrctl::engine::{Clock, RunResult};
use dsrctl::journal::{RunMode, RunStatus, StepOutcome, StepStatus};
use support::faulty_api::{FILE, FaultyApi, Mishap, playbook};
use support::items::{project_with, request};

/// Through the library, on a clock the test moves: a POST whose answer was lost, with a
/// verification that is due only after an hour (the service applies erasures slowly), waits
/// for that verification; resumes before it is due send and check nothing; the due
/// verification finds it done, and it is never sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_verification_decides_a_post_whose_answer_was_lost() {
    let api = FaultyApi::start().await;
    api.always(FILE, Mishap::LoseAnswer);
    let playbook = playbook(true).replace(
        "expect_status: [200]",
        "expect_status: [200]\n        after: 1h",
    );
    let p = project_with(api.url(), &[("vendor", playbook)]);
    let clock = Clock::fixed(chrono::Utc::now());
    let plan = compile(&p.project, &request("delete"), clock.now()).unwrap();
    let store = p.store().await;
    let run = store.create_run(&plan, RunMode::Apply).await.unwrap();
    let engine = p.engine(store.clone()).await.with_clock(clock.clone());
    let step = |r: &RunResult| {
        r.outcomes
            .iter()
            .find(|o| o.instance.ends_with("/file-erasure"))
            .cloned()
            .unwrap()
    };

    let first = engine
        .execute(&run, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    let o = step(&first);
    assert_eq!(o.status, StepStatus::Waiting, "{o:?}");
    assert!(
        o.doubt.is_some() && o.due_at.is_some() && !o.awaits_person(),
        "{o:?}"
    );
    clock.advance(chrono::Duration::minutes(30));
    let early = engine
        .execute(&run, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    assert_eq!(step(&early).status, StepStatus::Waiting);
    assert_eq!(api.calls("GET /erasures"), 0, "verified before it was due");

    clock.advance(chrono::Duration::minutes(31));
    let due = engine
        .execute(&run, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    let o = step(&due);
    assert_eq!(o.status, StepStatus::Succeeded, "{o:?}");
    assert!(o.message.as_deref().unwrap_or("").contains("verified done"));
    engine
        .execute(&run, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    assert_eq!(api.effects(FILE), 1);
    assert_eq!(api.calls(FILE), 1);
    store.close().await;
}

/// A crash while a POST without `verify` was being sent (the journal says `running`): the
/// resume sends nothing and hands it to a person, as after a lost answer; it used to be
/// shown as failed while the journal kept `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_post_without_verify_waits_for_a_person_on_resume() {
    let api = FaultyApi::start().await;
    let p = project_with(api.url(), &[("vendor", playbook(false))]);
    let plan = compile(&p.project, &request("delete"), chrono::Utc::now()).unwrap();
    let key = plan
        .steps
        .iter()
        .find(|s| s.id == "file-erasure")
        .unwrap()
        .key
        .clone();
    let store = p.store().await;
    let run = store.create_run(&plan, RunMode::Apply).await.unwrap();
    let mut started = StepOutcome::new(&key, &key, StepStatus::Running);
    started.started_at = Some(chrono::Utc::now());
    store.record(&run, &started).await.unwrap();

    let engine = p.engine(store.clone()).await;
    for _ in 0..2 {
        let resumed = engine
            .execute(&run, &plan, RunMode::Apply, None)
            .await
            .unwrap();
        assert_eq!(resumed.status, RunStatus::Waiting);
        let o = resumed.outcomes.iter().find(|o| o.instance == key).unwrap();
        assert!(o.awaits_person(), "{o:?}");
        assert!(
            o.doubt
                .as_ref()
                .is_some_and(|d| d.cause.contains("interrupted")),
            "{o:?}"
        );
    }
    assert_eq!(api.calls(FILE), 0);
    store.close().await;
}
