//! Rendering diagnostics: human (miette), JSON, and GitHub workflow commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};
use railyard_core::{Diagnostic, Severity, SourceText, Span};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Source excerpts with the problem underlined (for people).
    Human,
    /// One JSON array of diagnostics (for tools).
    Json,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
}

/// Renders paths as the user will look for them: the project directory they passed, joined
/// with the project-relative path.
pub struct Paths {
    prefix: String,
}

impl Paths {
    pub fn new(dir: &std::path::Path) -> Paths {
        let d = dir.to_string_lossy();
        let d = d.trim_start_matches("./").trim_end_matches('/');
        let prefix = if d.is_empty() || d == "." {
            String::new()
        } else {
            format!("{d}/")
        };
        Paths { prefix }
    }

    pub fn show(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }
}

pub struct Renderer<'a> {
    pub sources: &'a BTreeMap<String, SourceText>,
    pub paths: Paths,
    pub color: bool,
    pub width: usize,
    /// `${env:…}` secrets of the project: never in what is rendered.
    pub secrets: &'a railyard_core::redact::Secrets,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    severity: &'static str,
    code: &'static str,
    message: &'a str,
    help: Option<&'a str>,
}

impl<'a> Renderer<'a> {
    /// A renderer for diagnostics of the project loaded from `dir`.
    pub fn new(
        loaded: &'a railyard_core::project::Loaded,
        dir: &std::path::Path,
        color: bool,
    ) -> Renderer<'a> {
        Renderer {
            sources: &loaded.project.sources,
            paths: Paths::new(dir),
            color,
            width: 100,
            secrets: &loaded.project.secrets,
        }
    }

    /// What leaves the renderer: `text` with the project's secrets redacted.
    fn shown(&self, text: String) -> String {
        match self.secrets.redact(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(redacted) => redacted,
        }
    }

    fn positions(&self, file: Option<&str>, span: Span) -> Option<(usize, usize, usize, usize)> {
        let src = self.sources.get(file?)?;
        let a = src.line_col(span.start);
        let b = src.line_col(span.end.max(span.start));
        Some((a.line, a.column, b.line, b.column))
    }

    pub fn json(&self, diags: &[Diagnostic]) -> String {
        let items: Vec<JsonDiagnostic<'_>> = diags
            .iter()
            .map(|d| {
                let pos = self.positions(d.file.as_deref(), d.span);
                JsonDiagnostic {
                    file: d.file.as_deref().map(|f| self.paths.show(f)),
                    line: pos.map(|p| p.0),
                    column: pos.map(|p| p.1),
                    end_line: pos.map(|p| p.2),
                    end_column: pos.map(|p| p.3),
                    severity: d.severity.as_str(),
                    code: d.code.as_str(),
                    message: &d.message,
                    help: d.help.as_deref(),
                }
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
        s.push('\n');
        self.shown(s)
    }

    pub fn github(&self, diags: &[Diagnostic]) -> String {
        let mut out = String::new();
        for d in diags {
            let kind = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let mut props = Vec::new();
            if let Some(f) = &d.file {
                props.push(format!("file={}", escape_property(&self.paths.show(f))));
            }
            if let Some((l, c, el, ec)) = self.positions(d.file.as_deref(), d.span) {
                props.push(format!("line={l}"));
                props.push(format!("col={c}"));
                props.push(format!("endLine={el}"));
                props.push(format!("endColumn={ec}"));
            }
            props.push(format!("title={}", escape_property(d.code.as_str())));
            let mut message = d.message.clone();
            if let Some(h) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(h);
            }
            let _ = writeln!(
                out,
                "::{kind} {}::{}",
                props.join(","),
                escape_data(&message)
            );
        }
        self.shown(out)
    }

    pub fn human(&self, diags: &[Diagnostic]) -> String {
        let mut theme = if self.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        // The severity and code lead the message (`error[unknown-key]: ...`), rustc style.
        theme.characters.error = String::new();
        theme.characters.warning = String::new();
        theme.characters.advice = String::new();
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(self.width)
            .with_context_lines(1)
            .with_links(false);
        let mut out = String::new();
        for d in diags {
            let severity = match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            };
            let mut md = MietteDiagnostic::new(format!(
                "{}[{}]: {}",
                d.severity.as_str(),
                d.code.as_str(),
                d.message
            ))
            .with_severity(severity);
            if let Some(h) = &d.help {
                md = md.with_help(h.clone());
            }
            let src = d.file.as_ref().and_then(|f| self.sources.get(f));
            let rendered = match (src, &d.file) {
                (Some(src), Some(file)) if !src.text.is_empty() => {
                    let start = src.clamp(d.span.start);
                    let end = src.clamp(d.span.end.max(start));
                    md = md.with_label(LabeledSpan::new(d.label.clone(), start, end - start));
                    let report = miette::Report::new(md).with_source_code(NamedSource::new(
                        self.paths.show(file),
                        src.text.to_string(),
                    ));
                    render_one(&handler, report.as_ref())
                }
                (_, Some(file)) => {
                    // No source to show (unreadable, empty or binary file): name the file.
                    let shown = self.paths.show(file);
                    let md = if d.message.contains(file.as_str()) {
                        md
                    } else {
                        MietteDiagnostic {
                            message: format!("{} (in {shown})", md.message),
                            ..md
                        }
                    };
                    render_one(&handler, &md)
                }
                _ => render_one(&handler, &md),
            };
            out.push_str(&rendered);
            for r in &d.related {
                let Some(src) = self.sources.get(&r.file) else {
                    let _ = writeln!(
                        out,
                        "  note: {} ({})\n",
                        r.message,
                        self.paths.show(&r.file)
                    );
                    continue;
                };
                let lc = src.line_col(r.span.start);
                if r.span == Span::default() {
                    let _ = writeln!(
                        out,
                        "  note: {} ({})\n",
                        r.message,
                        self.paths.show(&r.file)
                    );
                    continue;
                }
                let start = src.clamp(r.span.start);
                let end = src.clamp(r.span.end.max(start));
                let note = MietteDiagnostic::new(format!("note: {}", r.message))
                    .with_severity(miette::Severity::Advice)
                    .with_label(LabeledSpan::new(None, start, end - start));
                let report = miette::Report::new(note).with_source_code(NamedSource::new(
                    self.paths.show(&r.file),
                    src.text.to_string(),
                ));
                let _ = lc;
                out.push_str(&render_one(&handler, report.as_ref()));
            }
        }
        self.shown(out)
    }
}

fn render_one(handler: &GraphicalReportHandler, d: &dyn miette::Diagnostic) -> String {
    let mut s = String::new();
    if handler.render_report(&mut s, d).is_err() {
        s = format!("{d}\n");
    }
    s.push('\n');
    s
}

/// GitHub workflow command data escaping.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub workflow command property escaping.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// "2 errors, 1 warning"
pub fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}
