//! Mutations exactly once, under the faults a real network has: against a service that acts
//! and then loses its answer, resets, hangs past the timeout or answers garbage, a mutation
//! that is not idempotent has one effect across `dsrctl run` and any number of `resume`s.
//! Its `verify` decides whether it was done; without one, a person does. Failures that say
//! the service did not act (connection refused, 429, 503 with Retry-After) are retried.

mod support;

use dsrctl::journal::{StepOutcome, StepStatus};
use support::cli::{Output, ProjectDir};
use support::faulty_api::{FILE, FaultyApi, Mishap, config, playbook};
use support::items::playbook as vendor_playbook;

const SUBJECT: &str = "alice@example.com";
const REQUEST: &str = "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n";

/// Faults after which the service has acted but the client cannot know.
const DOUBTFUL: [Mishap; 5] = [
    Mishap::LoseAnswer,
    Mishap::Reset,
    Mishap::Hang,
    Mishap::Garbage,
    Mishap::Truncated,
];

fn project(url: &str, playbook: &str) -> ProjectDir {
    ProjectDir::new()
        .file("dsrctl.yaml", &config(url))
        .file("policies/vendor.yaml", playbook)
        .file("request.yaml", REQUEST)
}

async fn run(p: &ProjectDir) -> Output {
    p.cmd()
        .args(["run", "request.yaml", "--approve", "tester"])
        .run()
        .await
}

async fn resume(p: &ProjectDir, run: &str) -> Output {
    p.cmd().args(["resume", run]).run().await
}

/// The run id `dsrctl run` announced.
fn run_id(out: &Output) -> String {
    out.stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")?
                .split_once(" of request")
                .map(|(id, _)| id.to_owned())
        })
        .unwrap_or_else(|| panic!("no run id in:\n{}", out.stderr))
}

/// The journaled outcome of step `id` in run `run`.
async fn outcome(p: &ProjectDir, run: &str, id: &str) -> StepOutcome {
    let project = dsrctl::load::load_project(p.path()).unwrap();
    let store = dsrctl::workflow::open_store(&project, &p.path().join(".dsrctl"))
        .await
        .unwrap();
    let found = store
        .outcomes(run)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.instance.ends_with(&format!("/{id}")))
        .unwrap_or_else(|| panic!("no outcome of `{id}` in run {run}"));
    store.close().await;
    found
}

/// Regression (issue 15, point 1): a POST declared `idempotent: false` whose answer was lost
/// after the service acted was sent 5 times in one run (the retry loop resent it on every
/// connection error) and again on each `resume` (20 effects after three), although its
/// `verify` would have shown it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_post_with_lost_answers_is_sent_once_and_verified() {
    let api = FaultyApi::start().await;
    api.always(FILE, Mishap::LoseAnswer);
    let p = project(api.url(), &playbook(true));

    let first = run(&p).await;
    let id = run_id(&first);
    let mut effects = vec![api.effects(FILE)];
    for _ in 0..3 {
        resume(&p, &id).await;
        effects.push(api.effects(FILE));
    }
    eprintln!("effects after run, resume, resume, resume: {effects:?}");
    assert_eq!(effects, [1, 1, 1, 1], "{}\n{}", first.stdout, first.stderr);
    assert_eq!(api.calls(FILE), 1);
    let o = outcome(&p, &id, "file-erasure").await;
    assert_eq!(o.status, StepStatus::Succeeded, "{o:?}");
    assert!(o.sent);
    let message = o.message.clone().unwrap_or_default();
    assert!(
        message.contains("verified done") && message.contains("not sent again"),
        "{message}"
    );
    assert!(o.verification.is_some_and(|v| v.passed));
}

/// Under every fault that leaves the client unsure, a verify-declared POST has one effect,
/// is found done by its verification, and is not sent again by a run or resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_declared_post_has_one_effect_under_every_fault() {
    for mishap in DOUBTFUL {
        let api = FaultyApi::start().await;
        api.always(FILE, mishap);
        let p = project(api.url(), &playbook(true));
        let first = run(&p).await;
        let id = run_id(&first);
        let mut effects = vec![api.effects(FILE)];
        for _ in 0..2 {
            resume(&p, &id).await;
            effects.push(api.effects(FILE));
        }
        eprintln!("{mishap:?}: effects after run, resume, resume: {effects:?}");
        assert_eq!(effects, [1, 1, 1], "{mishap:?}:\n{}", first.stdout);
        assert_eq!(api.effects(FILE), 1, "{mishap:?}: effects");
        assert_eq!(api.calls(FILE), 1, "{mishap:?}: calls");
        assert_eq!(api.filed(SUBJECT), 1);
        let o = outcome(&p, &id, "file-erasure").await;
        assert_eq!(o.status, StepStatus::Succeeded, "{mishap:?}: {o:?}");
        eprintln!("{mishap:?}: 1 effect; {}", o.message.unwrap_or_default());
    }
}

/// Without a `verify`, a POST that may have been processed becomes a task for a person that
/// names the doubt; resumes leave it waiting and send nothing; `task done` settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_post_under_every_fault_waits_for_a_person() {
    for mishap in DOUBTFUL {
        let api = FaultyApi::start().await;
        api.always(FILE, mishap);
        let p = project(api.url(), &playbook(false));
        let first = run(&p).await;
        let id = run_id(&first);
        let mut effects = vec![api.effects(FILE)];
        for _ in 0..2 {
            resume(&p, &id).await;
            effects.push(api.effects(FILE));
        }
        run(&p).await;
        effects.push(api.effects(FILE));
        eprintln!("{mishap:?}: effects after run, resume, resume, run: {effects:?}");
        assert_eq!(effects, [1, 1, 1, 1], "{mishap:?}:\n{}", first.stdout);
        let first = first.expect_code(0);
        assert!(
            first.stdout.contains("waiting"),
            "{mishap:?}: not waiting:\n{}",
            first.stdout
        );
        assert_eq!(api.effects(FILE), 1, "{mishap:?}: effects");
        assert_eq!(api.calls(FILE), 1, "{mishap:?}: calls");
        let o = outcome(&p, &id, "file-erasure").await;
        assert_eq!(o.status, StepStatus::Waiting, "{mishap:?}: {o:?}");
        let message = o.message.clone().unwrap_or_default();
        assert!(
            message.contains("may have been sent") && message.contains("dsrctl task done"),
            "{mishap:?}: {message}"
        );

        let tasks = p.expect(0, &["task", "list"]).await;
        assert!(
            tasks.stdout.contains("file-erasure"),
            "{mishap:?}: not listed as a task:\n{}",
            tasks.stdout
        );
        p.expect(0, &["task", "done", &id, "file-erasure", "--by", "ops"])
            .await;
        let o = outcome(&p, &id, "file-erasure").await;
        assert_eq!(o.status, StepStatus::Succeeded, "{mishap:?}: {o:?}");
        assert_eq!(api.effects(FILE), 1, "{mishap:?}: effects after task done");
        eprintln!("{mishap:?}: 1 effect; waited for a person, then done");
    }
}

/// A person who finds it was not done records `task fail`; the next resume sends it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_fail_on_a_doubtful_post_lets_resume_send_it_once() {
    let api = FaultyApi::start().await;
    api.next(FILE, [Mishap::ResetUnacted]);
    let p = project(api.url(), &playbook(false));
    let id = run_id(&run(&p).await.expect_code(0));
    assert_eq!(api.effects(FILE), 0);
    p.expect(
        0,
        &[
            "task",
            "fail",
            &id,
            "file-erasure",
            "--by",
            "ops",
            "--no-continue",
        ],
    )
    .await;
    resume(&p, &id).await.expect_code(0);
    resume(&p, &id).await.expect_code(0);
    assert_eq!(api.effects(FILE), 1);
    let o = outcome(&p, &id, "file-erasure").await;
    assert_eq!(o.status, StepStatus::Succeeded, "{o:?}");
}

/// When the service did not act (the request was lost on the way), the verification says
/// so: the run fails without sending again, and a resume checks once more and sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_found_not_done_after_a_reset_is_sent_on_resume_after_a_check() {
    let api = FaultyApi::start().await;
    api.next(FILE, [Mishap::ResetUnacted]);
    let p = project(api.url(), &playbook(true));
    let first = run(&p).await.expect_code(1);
    let id = run_id(&first);
    assert_eq!(api.effects(FILE), 0);
    assert_eq!(api.calls(FILE), 1, "sent again in the same run");
    let o = outcome(&p, &id, "file-erasure").await;
    assert_eq!(o.status, StepStatus::Failed);
    assert!(
        o.message.as_deref().unwrap_or("").contains("not done"),
        "{o:?}"
    );
    resume(&p, &id).await.expect_code(0);
    resume(&p, &id).await.expect_code(0);
    assert_eq!(api.effects(FILE), 1);
    assert_eq!(api.calls(FILE), 2);
    let o = outcome(&p, &id, "file-erasure").await;
    assert_eq!(o.status, StepStatus::Succeeded, "{o:?}");
}

/// 429 and 503 with Retry-After say the service did not act: a POST is retried through
/// them in the same run, and acts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_retried_through_try_later_answers() {
    let api = FaultyApi::start().await;
    api.next(FILE, [Mishap::TooMany, Mishap::Unavailable]);
    let p = project(api.url(), &playbook(false));
    run(&p).await.expect_code(0);
    assert_eq!(api.calls(FILE), 3);
    assert_eq!(api.effects(FILE), 1);
}

/// A refused connection sent nothing: the POST fails plainly (no doubt, no task) and a
/// resume against the service, once it is there, sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_refused_at_connect_is_a_plain_failure_and_resume_sends_it() {
    let api = FaultyApi::start().await;
    let p = project(&support::refused_url(), &playbook(false));
    let first = run(&p).await.expect_code(1);
    let id = run_id(&first);
    let o = outcome(&p, &id, "file-erasure").await;
    assert_eq!(o.status, StepStatus::Failed, "{o:?}");
    assert_eq!(o.attempts, 5, "connect errors are retried for every method");
    p.write("dsrctl.yaml", &config(api.url()));
    resume(&p, &id).await.expect_code(0);
    resume(&p, &id).await.expect_code(0);
    assert_eq!(api.effects(FILE), 1);
}

/// An idempotent DELETE whose every attempt timed out after the service acted fails; the
/// resume checks it first, finds it done, and does not send it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_idempotent_delete_is_verified_before_resume_sends_it() {
    let api = FaultyApi::start().await;
    api.always("DELETE /items", Mishap::Hang);
    let playbook = &vendor_playbook(
        "vendor",
        "",
        r#"    - id: drop
      http: { method: DELETE, path: "/items/{{seg subject.email}}" }
      absent_on: [404]
      preview: { http: { method: GET, path: "/items/{{seg subject.email}}" } }
      verify: { http: { method: GET, path: "/items/{{seg subject.email}}" }, expect_status: [404] }
"#,
    );
    let p = project(api.url(), playbook);
    let id = run_id(&run(&p).await.expect_code(1));
    let sent = api.calls("DELETE /items");
    assert_eq!(sent, 5, "an idempotent DELETE is retried after timeouts");
    api.heal("DELETE /items");
    resume(&p, &id).await.expect_code(0);
    assert_eq!(
        api.calls("DELETE /items"),
        sent,
        "sent again although it was done"
    );
    assert_eq!(api.effects("DELETE /items"), 1);
    let o = outcome(&p, &id, "drop").await;
    assert_eq!(o.status, StepStatus::Succeeded, "{o:?}");
    assert!(o.message.unwrap_or_default().contains("verified done"));
}

/// An idempotent DELETE is still retried through a reset, in the same run: the second call
/// finds the item gone (404, `absent_on`), and the item was deleted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_delete_is_retried_through_a_reset() {
    let api = FaultyApi::start().await;
    api.next("DELETE /items", [Mishap::Reset]);
    let playbook = &vendor_playbook(
        "vendor",
        "",
        r#"    - id: drop
      http: { method: DELETE, path: "/items/{{seg subject.email}}" }
      absent_on: [404]
      preview: { http: { method: GET, path: "/items/{{seg subject.email}}" } }
"#,
    );
    let p = project(api.url(), playbook);
    let id = run_id(&run(&p).await.expect_code(0));
    assert_eq!(api.calls("DELETE /items"), 2, "retried after the reset");
    assert_eq!(api.effects("DELETE /items"), 1);
    let o = outcome(&p, &id, "drop").await;
    assert!(o.status.lets_dependants_run(), "{o:?}");
    assert_eq!(o.attempts, 2);
}
