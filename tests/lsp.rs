//! `dsrctl lsp` driven over stdio as an editor drives it: the findings of `validate` for an
//! unsaved buffer (a mistake only the project-wide checks see), cleared when it is fixed;
//! hover, completion and go-to-definition.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cli::ProjectDir;

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
    /// Notifications read while waiting for something else.
    seen: Vec<Value>,
}

impl Client {
    fn start(dir: &std::path::Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dsrctl"))
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dsrctl lsp");
        // A server that stops answering fails the test instead of hanging it.
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            let _ = Command::new("kill").arg(&pid).status();
        });
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            stdout,
            next_id: 1,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn read(&mut self) -> Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "the server closed"
            );
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                len = n.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let msg = self.read();
            if msg["id"] == json!(id) {
                assert!(msg.get("error").is_none(), "{msg}");
                return msg["result"].clone();
            }
            self.seen.push(msg);
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next findings sent for `uri`.
    fn diagnostics_for(&mut self, uri: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(i) = self.seen.iter().position(|m| {
                m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
            }) {
                let m = self.seen.remove(i);
                return m["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
            assert!(Instant::now() < deadline, "no diagnostics for {uri}");
            let msg = self.read();
            self.seen.push(msg);
        }
    }
}

const PLAYBOOK: &str = "\
service: crm
connector: api
needs_identities: [email]
dsr:
  access:
    - id: find
      http: { method: GET, path: /contacts, query: { email: \"{{subject.email}}\" } }
      collect: contacts
    - id: more
      needs: [find]
      http: { method: GET, path: /more }
      collect: more
  export: { same_as: [access] }
  rectify: { unsupported: t }
  restrict: { unsupported: t }
  delete: { unsupported: t }
";

#[test]
fn an_editor_gets_findings_hover_completion_and_definitions() {
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      api: { kind: http, base_url: \"http://127.0.0.1:9\" }\n",
        )
        .file("policies/crm.yaml", PLAYBOOK);
    let root = p.path().canonicalize().unwrap();
    let uri = format!("file://{}/policies/crm.yaml", root.display());
    let mut c = Client::start(&root);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    );
    c.notify("initialized", json!({}));

    // A step that needs one that does not exist: a project check, not a schema error.
    let broken = PLAYBOOK.replace("needs: [find]", "needs: [fnd]");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": broken}}),
    );
    let started = Instant::now();
    let found = c.diagnostics_for(&uri);
    // The initial publish (the saved file is valid) may come first: wait for the finding.
    let found = if found.is_empty() {
        c.diagnostics_for(&uri)
    } else {
        found
    };
    eprintln!("findings after {:?}", started.elapsed());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["source"], "dsrctl");
    assert_eq!(found[0]["range"]["start"]["line"], 9, "{found:#?}");
    assert!(
        found[0]["message"].as_str().unwrap().contains("fnd"),
        "{found:#?}"
    );
    assert!(found[0]["code"].is_string());

    // Fixed in the buffer (not saved): the finding goes.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": PLAYBOOK}]}),
    );
    assert_eq!(c.diagnostics_for(&uri), Vec::<Value>::new());

    let at = |line: u32, character: u32| json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
    let hover = c.request("textDocument/hover", at(9, 7));
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(text.starts_with("**needs**"), "{hover}");

    let completion = c.request("textDocument/completion", at(9, 14));
    let labels: Vec<&str> = completion
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert_eq!(labels, ["find", "more"], "{completion}");
    let connectors = c.request("textDocument/completion", at(1, 11));
    assert_eq!(connectors[0]["label"], "api", "{connectors}");

    let definition = c.request("textDocument/definition", at(9, 15));
    assert_eq!(definition["uri"], json!(uri));
    assert_eq!(
        definition["range"]["start"],
        json!({"line": 5, "character": 10})
    );

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
