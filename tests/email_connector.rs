//! The email connector, for processors without an API: a message through a real SMTP server
//! (aiosmtpd from PyPI, STARTTLS and AUTH required) with the request id in its subject and
//! the subject's identities attached, then a task for the person who records the answer.
//! The subject's email never appears in dsrctl's output or state in clear; a dry run sends
//! nothing; a send whose outcome is unknown (a crash while the relay held the message) is
//! never sent again but handed to a person; bad connector settings are named by `validate`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::cli::{Output, ProjectDir};
use support::tools::missing;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const SUBJECT: &str = "alice@example.com";
const REQUEST: &str = "id: r-mail-1\nkind: delete\ntenant: t1\njurisdiction: gdpr\nreceived: 2026-11-02\nsubject: { email: alice@example.com, user_id: u-77 }\n";

/// The aiosmtpd sink (`tests/smtp/sink.py`), stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    /// Starts the sink, or `None` (failing under CI) when aiosmtpd is not installed.
    fn start() -> Option<Sink> {
        let python = match std::env::var_os("DSRCTL_SMTP_SINK") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-smtp/bin/python"),
        };
        let has_aiosmtpd = Command::new(&python)
            .args(["-c", "import aiosmtpd, trustme"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_aiosmtpd {
            missing(
                "aiosmtpd",
                "set DSRCTL_SMTP_SINK to a python with tests/requirements-smtp.txt installed, or install it into .venv-smtp (as .ci/run does)",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let port_file = dir.path().join("port");
        let child = Command::new(&python)
            .arg(script)
            .arg("--out")
            .arg(dir.path())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--ca-file")
            .arg(dir.path().join("ca.pem"))
            .args(["--user", "relay-user", "--password", "relay-secret-7"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the sink starts");
        let start = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the sink did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Some(Sink { child, port, dir })
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The messages received: raw text and envelope.
    fn messages(&self) -> Vec<(String, serde_json::Value)> {
        (1..)
            .map_while(|n| {
                let raw = std::fs::read_to_string(self.dir.path().join(format!("{n}.eml"))).ok()?;
                let env =
                    std::fs::read_to_string(self.dir.path().join(format!("{n}.json"))).ok()?;
                Some((raw, serde_json::from_str(&env).unwrap()))
            })
            .collect()
    }
}

fn playbook(attach: &str) -> String {
    format!(
        r#"service: vendor
connector: mail
needs_identities: [email]
dsr:
  access: {{ unsupported: "test" }}
  export: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete:
    - id: ask-erasure
      email:
        to: [privacy@vendor.example]
        subject: "Erasure request"
        body: |
          Please erase every record you hold about {{{{subject.email}}}} under our contract
          (GDPR art. 17 and 28), and confirm by return.
        attach: [{attach}]
        answer_within: 30d
"#
    )
}

fn config(port: u16, tls: &str, extra: &str) -> String {
    format!(
        "tenants:\n  t1:\n    connectors:\n      mail:\n        kind: email\n        host: 127.0.0.1\n        port: {port}\n        tls: {tls}\n        from: \"Privacy team <privacy@example.com>\"\n        timeout: 2s\n{extra}"
    )
}

fn project(config: &str, playbook: &str) -> ProjectDir {
    ProjectDir::new()
        .file("dsrctl.yaml", config)
        .file("policies/vendor.yaml", playbook)
        .file("request.yaml", REQUEST)
        .file("relay.secret", "relay-secret-7\n")
}

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

async fn step(p: &ProjectDir, run: &str) -> serde_json::Value {
    let out = p.expect(0, &["status", run, "--format", "json"]).await;
    out.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "vendor/ask-erasure")
        .cloned()
        .expect("the email step")
}

/// Every file of the project's state directory holds no `needle` in clear.
fn state_holds(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(state_holds(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_goes_out_once_over_starttls_and_waits_for_the_answer() {
    let Some(sink) = Sink::start() else { return };
    let extra = format!(
        "        ca_file: {}\n        username: relay-user\n        password: {{ file: relay.secret }}\n",
        sink.ca().display()
    );
    let p = project(
        &config(sink.port, "starttls", &extra),
        &playbook("identities"),
    );
    p.expect(0, &["validate"]).await;

    // A dry run sends nothing, and says what would be sent.
    let plan = p.expect(0, &["plan", "request.yaml"]).await;
    assert!(sink.messages().is_empty(), "a dry run sent a message");
    assert!(plan.stdout.contains("1 to send"), "{}", plan.stdout);

    let out = p
        .cmd()
        .args([
            "--log-format",
            "json",
            "run",
            "request.yaml",
            "--approve",
            "dpo",
        ])
        .run()
        .await
        .expect_code(0);
    let run = out
        .stderr
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let message = v["fields"]["message"].as_str()?;
            let rest = message.strip_prefix("run ")?;
            rest.split_once(" of request").map(|(id, _)| id.to_owned())
        })
        .unwrap_or_else(|| panic!("no run id in:\n{}", out.stderr));
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains(SUBJECT),
            "the subject's email in the output:\n{text}"
        );
    }
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "one message");
    let (raw, envelope) = &messages[0];
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["privacy@vendor.example"])
    );
    assert_eq!(envelope["mail_from"], "privacy@example.com");
    assert_eq!(envelope["tls"], true, "sent after STARTTLS");
    assert_eq!(envelope["login"], "relay-user", "signed in");
    let message = mail_parse(raw);
    assert!(
        message.subject.contains("Erasure request") && message.subject.contains("r-mail-1"),
        "{}",
        message.subject
    );
    assert!(
        message
            .text
            .contains("erase every record you hold about alice@example.com"),
        "{}",
        message.text
    );
    let csv = message
        .attachments
        .iter()
        .find(|(name, _)| name == "identities.csv")
        .map(|(_, body)| body.clone())
        .expect("identities.csv attached");
    assert!(
        csv.contains("email,alice@example.com") && csv.contains("user_id,u-77"),
        "{csv}"
    );

    // The step is a task for the person who records the answer, due in 30 days.
    let s = step(&p, &run).await;
    assert_eq!(s["status"], "waiting", "{s}");
    let due = chrono::DateTime::parse_from_rfc3339(s["due_at"].as_str().unwrap()).unwrap();
    let days = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "due in {days} days");
    let tasks = p.expect(0, &["task", "list"]).await;
    assert!(tasks.stdout.contains("ask-erasure"), "{}", tasks.stdout);

    // Resuming sends nothing again.
    p.expect(0, &["resume", &run]).await;
    assert_eq!(sink.messages().len(), 1, "sent once");
    p.write("answer.txt", "We erased the data on 2026-11-20.\n");
    p.expect(
        0,
        &[
            "task",
            "done",
            &run,
            "vendor/ask-erasure",
            "--by",
            "ops",
            "--evidence",
            "answer.txt",
        ],
    )
    .await;
    assert_eq!(step(&p, &run).await["status"], "succeeded");
    p.expect(0, &["resume", &run]).await;
    assert_eq!(sink.messages().len(), 1, "sent once");
    let leaks = state_holds(&p.path().join(".dsrctl"), SUBJECT.as_bytes());
    assert!(
        leaks.is_empty(),
        "the subject's email in clear in {leaks:?}"
    );
}

/// A message as the test reads it.
struct Mail {
    subject: String,
    text: String,
    attachments: Vec<(String, String)>,
}

/// A small MIME reader for what lettre writes: headers, a text part and attachments, each
/// quoted-printable, base64 or plain.
fn mail_parse(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap();
    let header = |head: &str, name: &str| -> Option<String> {
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let decode = |head: &str, body: &str| -> String {
        match header(head, "Content-Transfer-Encoding").as_deref() {
            Some(e) if e.eq_ignore_ascii_case("base64") => {
                use base64::Engine;
                let clean: String = body.split_whitespace().collect();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(clean)
                        .unwrap(),
                )
                .unwrap()
            }
            Some(e) if e.eq_ignore_ascii_case("quoted-printable") => {
                let joined = body.replace("=\n", "");
                let mut out = Vec::new();
                let bytes = joined.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'='
                        && i + 2 < bytes.len()
                        && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
                    {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    out.push(bytes[i]);
                    i += 1;
                }
                String::from_utf8(out).unwrap()
            }
            _ => body.to_owned(),
        }
    };
    let subject = header(head, "Subject").unwrap_or_default();
    let content_type = header(head, "Content-Type").unwrap_or_default();
    let mut mail = Mail {
        subject,
        text: String::new(),
        attachments: Vec::new(),
    };
    if let Some(b) = content_type.split("boundary=").nth(1) {
        let boundary = format!("--{}", b.trim_matches('"').split(';').next().unwrap());
        for part in body.split(&boundary).skip(1) {
            let part = part.trim_start_matches('\n');
            if part.starts_with("--") {
                break;
            }
            let Some((phead, pbody)) = part.split_once("\n\n") else {
                continue;
            };
            let text = decode(phead, pbody.trim_end_matches('\n'));
            let disposition = header(phead, "Content-Disposition").unwrap_or_default();
            match disposition.split("filename=").nth(1) {
                Some(name) => mail
                    .attachments
                    .push((name.trim_matches('"').to_owned(), text)),
                None => mail.text = text,
            }
        }
    } else {
        mail.text = decode(head, body);
    }
    mail
}

/// How a scripted relay answers the end of each message's content, in turn (the last
/// answer repeats).
#[derive(Clone, Copy)]
enum Answer {
    /// Never: the client cannot know whether it was accepted.
    Silence,
    /// An SMTP reply line, e.g. `451 4.3.0 try again later`.
    Reply(&'static str),
}

/// An SMTP relay (plain, on loopback) that takes whole messages and answers each as its
/// script says.
struct ScriptedRelay {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl ScriptedRelay {
    async fn start(script: &'static [Answer]) -> ScriptedRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = tokio::io::BufReader::new(read).lines();
                    let _ = write.write_all(b"220 relay ESMTP\r\n").await;
                    let mut in_data = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if in_data {
                            if line == "." {
                                in_data = false;
                                let n = count.fetch_add(1, Ordering::SeqCst);
                                match script[n.min(script.len() - 1)] {
                                    Answer::Silence => std::future::pending::<()>().await,
                                    Answer::Reply(r) => {
                                        let _ =
                                            write.write_all(format!("{r}\r\n").as_bytes()).await;
                                    }
                                }
                            }
                            continue;
                        }
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 relay\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => b"221 bye\r\n",
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        ScriptedRelay { port, received }
    }
}

/// A relay that answers "try again later" (4xx) did not take the message: the send is made
/// again, within the connector's retry policy, and the step succeeds once it is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_the_relay_deferred_is_made_again_until_accepted() {
    static SCRIPT: &[Answer] = &[
        Answer::Reply("451 4.3.0 Mailbox busy, try again later"),
        Answer::Reply("421 4.7.0 Too many messages, try again later"),
        Answer::Reply("250 2.0.0 Ok: queued"),
    ];
    let relay = ScriptedRelay::start(SCRIPT).await;
    let p = project(
        &config(
            relay.port,
            "none",
            "        retry: { attempts: 4, backoff: 50ms, max_elapsed: 10s }\n",
        ),
        &playbook("identities"),
    );
    let (out, s) = run_once(&p).await;
    assert_eq!(relay.received.load(Ordering::SeqCst), 3, "{out:?}");
    assert_eq!(s["status"], "waiting", "waits for the answer: {s}");
    assert_eq!(s["attempts"], 3, "{s}");
}

/// Runs the request once; what it printed and where its email step stands.
async fn run_once(p: &ProjectDir) -> (Output, serde_json::Value) {
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await;
    let run = run_id(&out);
    let s = step(p, &run).await;
    (out, s)
}

/// A relay that refuses the message for good (5xx) did not take it either, but asking again
/// cannot change that: the step fails after one send, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_the_relay_refused_for_good_is_not_made_again() {
    static SCRIPT: &[Answer] = &[Answer::Reply("550 5.7.1 Relaying denied")];
    let relay = ScriptedRelay::start(SCRIPT).await;
    let p = project(&config(relay.port, "none", ""), &playbook("identities"));
    let (out, s) = run_once(&p).await;
    assert_eq!(relay.received.load(Ordering::SeqCst), 1, "{out:?}");
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["attempts"], 1, "{s}");
    assert!(out.stdout.contains("Relaying denied"), "{out:?}");
}

/// Regression guard for principle 9: a send whose answer never came (the relay may have
/// accepted it) is not sent again by the run nor by any resume; it waits for a person, and
/// is sent again only after one records it was not done.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_with_an_unknown_outcome_is_never_sent_again_but_handed_to_a_person() {
    static SCRIPT: &[Answer] = &[Answer::Silence];
    let relay = ScriptedRelay::start(SCRIPT).await;
    let p = project(&config(relay.port, "none", ""), &playbook("identities"));
    let first = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await;
    let run = run_id(&first);
    assert_eq!(relay.received.load(Ordering::SeqCst), 1);
    for _ in 0..2 {
        p.cmd().args(["resume", &run]).run().await;
    }
    assert_eq!(relay.received.load(Ordering::SeqCst), 1, "sent once");
    let s = step(&p, &run).await;
    assert_eq!(s["status"], "waiting", "{s}");
    let tasks = p.expect(0, &["task", "list"]).await;
    assert!(tasks.stdout.contains("ask-erasure"), "{}", tasks.stdout);
}

/// The same after a crash: the process is killed while the relay holds the message.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_the_send_leaves_it_to_a_person_on_resume() {
    static SCRIPT: &[Answer] = &[Answer::Silence];
    let relay = ScriptedRelay::start(SCRIPT).await;
    let p = project(
        &config(relay.port, "none", "").replace("timeout: 2s", "timeout: 60s"),
        &playbook("identities"),
    );
    let exe = env!("CARGO_BIN_EXE_dsrctl");
    let mut child = Command::new(exe)
        .current_dir(p.path())
        .args(["run", "request.yaml", "--approve", "dpo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while relay.received.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the message never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    let _ = child.wait();
    let run = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")?
                .split_once(" of request")
                .map(|(id, _)| id.to_owned())
        })
        .unwrap_or_else(|| panic!("no run id in:\n{stderr}"));
    let resumed = p.cmd().args(["resume", &run]).run().await;
    assert_eq!(relay.received.load(Ordering::SeqCst), 1, "not sent again");
    let s = step(&p, &run).await;
    assert_eq!(s["status"], "waiting", "{s}\n{}", resumed.stderr);
    let _ = std::io::stderr().flush();
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_bad_email_settings() {
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      mail:\n        kind: email\n        host: smtp.example.net\n        tls: none\n        from: not an address\n        username: relay-user\n",
        )
        .file("policies/vendor.yaml", &playbook("identities"));
    let out = p.expect(1, &["validate"]).await;
    let text = format!("{}{}", out.stdout, out.stderr);
    for want in [
        "`from` of email connector `mail` is not an email address",
        "would send to `smtp.example.net` unencrypted",
        "has a `username` but no `password`",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert!(text.contains("dsrctl.yaml:"), "positioned:\n{text}");
}
