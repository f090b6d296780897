//! `dsrctl lsp`: a language server over stdio. Every finding `validate` gives (not only the
//! schema errors a YAML plugin shows), live as the buffers change, across the project; hover
//! docs from the JSON Schemas; completion of step ids, connectors, tenants, kinds,
//! identities and template helpers; go-to-definition for `needs`, `after` and `same_as`.
//! The protocol is here; what is known about a file is in `analysis.rs`.

mod analysis;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Completion, GotoDefinition, HoverRequest, Request as _};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionResponse, Diagnostic,
    DiagnosticSeverity, GotoDefinitionResponse, Hover, HoverContents, HoverProviderCapability,
    InitializeParams, Location, MarkupContent, MarkupKind, NumberOrString, OneOf, Position,
    PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, Url,
};

use crate::load::{Cache, FsSource, Severity};
pub use analysis::{At, Overlay};

/// Serves the protocol on stdin/stdout until the client says `exit`.
pub fn serve() -> anyhow::Result<()> {
    let (connection, io) = Connection::stdio();
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "[".into(), " ".into(), "{".into()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    };
    let params = connection.initialize(serde_json::to_value(capabilities)?)?;
    let params: InitializeParams = serde_json::from_value(params)?;
    #[allow(deprecated)]
    let root = params
        .root_uri
        .as_ref()
        .and_then(|u| u.to_file_path().ok())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut server = Server {
        overlay: Overlay {
            fs: FsSource(root.clone()),
            open: HashMap::new(),
        },
        root,
        published: BTreeSet::new(),
        cache: Cache::new(),
    };
    server.publish(&connection)?;
    for message in &connection.receiver {
        match message {
            Message::Request(req) => {
                if connection.handle_shutdown(&req)? {
                    break;
                }
                let response = server.answer(req);
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) => {
                if server.note(n) {
                    server.publish(&connection)?;
                }
            }
            Message::Response(_) => {}
        }
    }
    // The writer thread ends when the connection's sender is gone.
    drop(connection);
    io.join()?;
    Ok(())
}

struct Server {
    overlay: Overlay,
    root: PathBuf,
    /// Files that were sent findings, so that a fixed one is sent an empty list.
    published: BTreeSet<String>,
    /// What each unchanged playbook gave, so an edit re-checks only what it changed.
    cache: Cache,
}

impl Server {
    fn rel(&self, uri: &Url) -> Option<String> {
        let path = uri.to_file_path().ok()?;
        let rel = path.strip_prefix(&self.root).ok()?;
        Some(rel.to_string_lossy().replace('\\', "/"))
    }

    fn uri(&self, rel: &str) -> Option<Url> {
        Url::from_file_path(self.root.join(rel)).ok()
    }

    fn text(&self, rel: &str) -> String {
        match self.overlay.open.get(rel) {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(self.root.join(rel)).unwrap_or_default(),
        }
    }

    /// Takes in a change of the buffers; whether findings must be sent again.
    fn note(&mut self, n: Notification) -> bool {
        let method = n.method.as_str();
        match method {
            DidOpenTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                else {
                    return false;
                };
                if let Some(rel) = self.rel(&p.text_document.uri) {
                    self.overlay.open.insert(rel, p.text_document.text);
                }
                true
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return false;
                };
                // Full sync: the last change holds the whole text.
                if let (Some(rel), Some(change)) = (
                    self.rel(&p.text_document.uri),
                    p.content_changes.into_iter().last(),
                ) {
                    self.overlay.open.insert(rel, change.text);
                }
                true
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                else {
                    return false;
                };
                if let Some(rel) = self.rel(&p.text_document.uri) {
                    self.overlay.open.remove(&rel);
                }
                true
            }
            DidSaveTextDocument::METHOD => true,
            _ => false,
        }
    }

    /// Validates the project as the editor has it and sends the findings of every file.
    fn publish(&mut self, connection: &Connection) -> anyhow::Result<()> {
        let findings = analysis::findings(&self.overlay, &mut self.cache);
        let mut now = BTreeSet::new();
        for (rel, diags) in &findings {
            let Some(uri) = self.uri(rel) else { continue };
            let diagnostics = diags.iter().map(to_lsp).collect();
            send(connection, uri, diagnostics)?;
            now.insert(rel.clone());
        }
        for fixed in self.published.difference(&now) {
            if let Some(uri) = self.uri(fixed) {
                send(connection, uri, Vec::new())?;
            }
        }
        self.published = now;
        Ok(())
    }

    fn answer(&self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => self.hover(req.params),
            Completion::METHOD => self.complete(req.params),
            GotoDefinition::METHOD => self.definition(req.params),
            _ => {
                return Response::new_err(
                    id,
                    lsp_server::ErrorCode::MethodNotFound as i32,
                    format!("dsrctl lsp does not answer {}", req.method),
                );
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(e) => Response::new_err(
                id,
                lsp_server::ErrorCode::InvalidParams as i32,
                e.to_string(),
            ),
        }
    }

    fn place(
        &self,
        params: &lsp_types::TextDocumentPositionParams,
    ) -> Option<(String, String, At)> {
        let rel = self.rel(&params.text_document.uri)?;
        let text = self.text(&rel);
        let at = At {
            line: params.position.line,
            character: params.position.character,
        };
        Some((rel, text, at))
    }

    fn hover(&self, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let p: lsp_types::HoverParams = serde_json::from_value(params)?;
        let hover = self
            .place(&p.text_document_position_params)
            .and_then(|(rel, text, at)| analysis::hover(&rel, &text, at))
            .map(|markdown| Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: markdown,
                }),
                range: None,
            });
        Ok(serde_json::to_value(hover)?)
    }

    fn complete(&self, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let p: lsp_types::CompletionParams = serde_json::from_value(params)?;
        let items: Vec<CompletionItem> = self
            .place(&p.text_document_position)
            .map(|(rel, text, at)| analysis::complete(&self.overlay, &rel, &text, at))
            .unwrap_or_default()
            .into_iter()
            .map(|c| CompletionItem {
                label: c.label,
                detail: Some(c.detail.to_owned()),
                kind: Some(CompletionItemKind::VALUE),
                ..CompletionItem::default()
            })
            .collect();
        Ok(serde_json::to_value(CompletionResponse::Array(items))?)
    }

    fn definition(&self, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let p: lsp_types::GotoDefinitionParams = serde_json::from_value(params)?;
        let uri = p.text_document_position_params.text_document.uri.clone();
        let found = self
            .place(&p.text_document_position_params)
            .and_then(|(rel, text, at)| analysis::definition(&rel, &text, at))
            .map(|span| {
                GotoDefinitionResponse::Scalar(Location {
                    uri,
                    range: range(span.start.line, span.start.character, span.len),
                })
            });
        Ok(serde_json::to_value(found)?)
    }
}

fn send(connection: &Connection, uri: Url, diagnostics: Vec<Diagnostic>) -> anyhow::Result<()> {
    let params = PublishDiagnosticsParams {
        uri,
        diagnostics,
        version: None,
    };
    connection
        .sender
        .send(Message::Notification(Notification::new(
            PublishDiagnostics::METHOD.to_owned(),
            params,
        )))?;
    Ok(())
}

fn range(line: u32, character: u32, len: u32) -> Range {
    Range {
        start: Position { line, character },
        end: Position {
            line,
            character: character + len,
        },
    }
}

/// A finding of `validate` as the protocol has it (0-based; a whole-file finding on the
/// first line).
fn to_lsp(d: &crate::load::Diagnostic) -> Diagnostic {
    let line = u32::try_from(d.line.saturating_sub(1)).unwrap_or(0);
    let character = u32::try_from(d.col.saturating_sub(1)).unwrap_or(0);
    let len = u32::try_from(d.len.max(1)).unwrap_or(1);
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    Diagnostic {
        range: range(line, character, len),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        source: Some("dsrctl".to_owned()),
        message,
        ..Diagnostic::default()
    }
}
