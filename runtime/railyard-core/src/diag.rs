//! Diagnostics as values.
//!
//! Every problem the loader finds becomes a [`Diagnostic`]: a severity, a stable [`Code`], a
//! message, a primary location (file + byte span) and an optional help line. Loaders collect
//! them into a `Vec` and keep going; nothing here ever aborts a load. Rendering (human, JSON,
//! GitHub annotations) lives in the binary, which turns byte spans into line:column through
//! [`SourceText`].

use std::fmt;
use std::sync::Arc;

/// A half-open byte range `start..end` into one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// A zero-width span at `offset`.
    pub const fn at(offset: usize) -> Span {
        Span {
            start: offset,
            end: offset,
        }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $slug:literal,)*) => {
        /// Stable diagnostic codes. The slug is part of the public interface (JSON output,
        /// CI filters); never rename one, add a new code instead.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in declaration order. Each has a golden test case under
            /// `tests/cases/<slug>/`.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $slug,)*
                }
            }

            /// One-line explanation of the code, for `railyard validate --explain`.
            pub fn explain(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($($doc, )*),)*
                }
            }
        }
    };
}

codes! {
    /// A file or directory could not be read (permissions, a symlink loop, a vanished file).
    Io => "io",
    /// A file is larger than the loader accepts for its kind.
    FileTooLarge => "file-too-large",
    /// A file is not valid UTF-8 text (often a binary file with a text extension).
    NotUtf8 => "not-utf8",
    /// A file holds no document at all.
    EmptyFile => "empty-file",
    /// The YAML is malformed: bad indentation, an unclosed quote, a duplicate key, a tab.
    YamlSyntax => "yaml-syntax",
    /// The YAML exceeds a safety budget: nesting depth, node count or alias expansion.
    YamlLimit => "yaml-limit",
    /// A JSON file (schema, fixture) is malformed.
    JsonSyntax => "json-syntax",
    /// A key that the file format does not define.
    UnknownKey => "unknown-key",
    /// A required key is absent.
    MissingKey => "missing-key",
    /// A value has the wrong type or an invalid form (duration, size, identifier, enum value).
    InvalidValue => "invalid-value",
    /// A step kind that does not exist.
    UnknownStep => "unknown-step",
    /// A connector block names zero or several connectors where exactly one is needed.
    ConnectorCount => "connector-count",
    /// A JMESPath expression does not parse.
    JmespathSyntax => "jmespath-syntax",
    /// A Rhai script does not parse.
    RhaiSyntax => "rhai-syntax",
    /// A schema id is not of the form `namespace.name@MAJOR`, or a file's `$id` disagrees with its location.
    SchemaId => "schema-id",
    /// Two schema files claim the same id.
    DuplicateSchema => "duplicate-schema",
    /// A schema is not a valid JSON Schema for its draft.
    InvalidSchema => "invalid-schema",
    /// A `$ref` points at a schema that is not in the project.
    UnresolvedRef => "unresolved-ref",
    /// A pipeline or mapping names a schema id that no file defines.
    UnknownSchema => "unknown-schema",
    /// A pipeline names a mapping that no file defines.
    UnknownMapping => "unknown-mapping",
    /// An output or reference names a pipeline that does not exist.
    UnknownPipeline => "unknown-pipeline",
    /// A plugin step names a Rhai module or function that does not exist.
    UnknownPlugin => "unknown-plugin",
    /// A file referenced from a pipeline or mapping (fixture, script) does not exist.
    MissingFile => "missing-file",
    /// A file the project names (fixture, script, schema, table, plugin), or a symlink in the
    /// project, resolves outside the project directory; the loader does not read it.
    OutsideProject => "outside-project",
    /// A file output's path is absolute or climbs above the output root with `..`: file
    /// outputs write only under the output root (`--output-root`, the data directory by
    /// default).
    OutsideOutputRoot => "outside-output-root",
    /// Two pipelines or two mappings share a name, or two pipelines share an HTTP path.
    DuplicateName => "duplicate-name",
    /// The schema a step produces is not the schema the next step accepts.
    SchemaMismatch => "schema-mismatch",
    /// Pipelines that send to each other in a loop.
    PipelineCycle => "pipeline-cycle",
    /// A `${env:NAME}` reference to a variable that is not set.
    MissingEnv => "missing-env",
    /// Publishers and consumers of one topic disagree on its schema.
    TopicSchema => "topic-schema",
    /// A schema changed in place (same id, so same major) in a way that breaks its readers or
    /// writers, compared with `railyard validate --baseline`: publish it under a new major.
    SchemaBreaking => "schema-breaking",
    /// A schema changed in place in a way no compatibility rule classifies (a changed
    /// `pattern` or `oneOf`, ...), compared with `railyard validate --baseline`.
    SchemaUnclassified => "schema-unclassified",
    /// A schema has a new major version while pipelines or mappings still name an older one
    /// (`railyard validate --baseline`).
    SchemaSuperseded => "schema-superseded",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary location: "the mapping that produces this schema is here".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub file: String,
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// Project-relative path of the file the diagnostic is about; `None` for project-wide problems.
    pub file: Option<String>,
    pub span: Span,
    /// Short text printed under the underlined source.
    pub label: Option<String>,
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            file: None,
            span: Span::default(),
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, file: impl Into<String>, span: Span) -> Diagnostic {
        self.file = Some(file.into());
        self.span = span;
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn with_related(
        mut self,
        file: impl Into<String>,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.related.push(Related {
            file: file.into(),
            span,
            message: message.into(),
        });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A loaded text file plus a line index, so byte spans can become line:column cheaply.
#[derive(Clone, Debug)]
pub struct SourceText {
    pub path: String,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

/// A 1-based line and column; the column counts characters, as editors and GitHub do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl SourceText {
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceText {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// Clamps `offset` to the text and to a char boundary.
    pub fn clamp(&self, offset: usize) -> usize {
        let mut o = offset.min(self.text.len());
        while o > 0 && !self.text.is_char_boundary(o) {
            o -= 1;
        }
        o
    }

    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = self.clamp(offset);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }

    /// Byte offset of a 1-based line and character column; clamps to the end of the line.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let line_end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next.saturating_sub(1));
        self.text[start..line_end]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_end, |(i, _)| start + i)
    }
}
