//! The project loader: files → diagnostics + a compiled [`Project`].
//!
//! Order of work: schemas (the registry), plugins, mappings, then pipelines in two passes
//! (parse all, so references between pipelines resolve; then check each), then project-wide
//! checks (cycles between pipelines, topic schemas). Every phase reports into one diagnostics
//! list and carries on with what it could build, so one run shows every problem.

pub mod baseline;
mod check;
pub mod cron;
pub mod files;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use self::check::{OutputDef, PIPELINE_KEYS, Pipeline, Step, SwitchCaseDef};
pub use self::files::{Listing, MemFiles, ProjectFiles, ReadError, project_path};
pub(crate) use self::files::{Named, RefKind};
pub use self::plan::{InputSpec, OutputSpec, pipeline_topic};
use crate::diag::{Code, Diagnostic, Severity, SourceText, Span};
use crate::expr::{JmesPath, RhaiScript, rhai_engine};
use crate::model::mapping::MappingFile;
use crate::model::pipeline::PipelineFile;
use crate::schema::{SchemaRegistry, SchemaSource};
use crate::yaml::{self, Node, de::DeError};

/// Largest pipeline, mapping or plugin file the loader reads.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// Largest schema or fixture file the loader reads.
pub const MAX_DATA_BYTES: u64 = 32 << 20;

pub struct LoadOptions<'a> {
    /// Looks up `${env:NAME}`; the binary passes the process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Treat a missing environment variable as an error (it is a warning for `validate`).
    pub strict_env: bool,
    /// What the project is loaded for; decides how much a problem of the `tests:` matters.
    pub purpose: Purpose,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions {
            env: &|_| None,
            strict_env: false,
            purpose: Purpose::Check,
        }
    }
}

/// What a project is loaded for. The checks are the same for every purpose; only problems of
/// what one purpose never uses change severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Purpose {
    /// `validate`, `test` and the other checking commands: every problem is reported at its
    /// full severity.
    #[default]
    Check,
    /// `run`: serving never reads a test fixture, so a fixture that is missing, too large or
    /// unreadable is a warning, and a deployment that ships without `tests/` starts.
    Run,
}

/// A loaded project: everything that compiled, plus the sources for rendering diagnostics.
pub struct Project {
    pub sources: BTreeMap<String, SourceText>,
    pub schemas: SchemaRegistry,
    pub mappings: BTreeMap<String, Mapping>,
    pub pipelines: BTreeMap<String, Pipeline>,
    pub plugins: BTreeMap<String, Plugin>,
    /// The sandboxed Rhai engine every script, mapping and plugin of this project runs in,
    /// with the retail functions and the `plugins/` modules registered (`money::fn(..)`).
    pub rhai: Arc<rhai::Engine>,
    /// Reference tables from `tables/`, for `lookup()`.
    pub tables: Arc<crate::functions::Tables>,
    /// The `${env:…}` values that are secrets, for redacting what is shown
    /// ([`crate::redact`]).
    pub secrets: crate::redact::Secrets,
}

pub struct Loaded {
    pub project: Project,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// A compiled mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub name: String,
    pub file: String,
    pub from: String,
    pub to: String,
    pub engine: MappingEngine,
    pub def: MappingFile,
}

#[derive(Clone, Debug)]
pub enum MappingEngine {
    JmesPath(JmesPath),
    /// Output path segments → expression.
    Fields(Vec<(Vec<String>, JmesPath)>),
    Rhai(RhaiScript),
}

impl Mapping {
    /// Applies the mapping to `body`.
    pub fn apply(&self, engine: &rhai::Engine, body: &Value) -> Result<Value, String> {
        match &self.engine {
            MappingEngine::JmesPath(e) => e.search(body),
            MappingEngine::Fields(fields) => {
                let mut out = Value::Object(Default::default());
                for (path, e) in fields {
                    let v = e
                        .search(body)
                        .map_err(|err| format!("field `{}`: {err}", path.join(".")))?;
                    set_path(&mut out, path, v);
                }
                Ok(out)
            }
            MappingEngine::Rhai(s) => s.eval(engine, body),
        }
    }
}

fn set_path(target: &mut Value, path: &[String], v: Value) {
    let mut cur = target;
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == path.len() {
            map.insert(seg.clone(), v);
            return;
        }
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

#[derive(Clone, Debug)]
pub struct Plugin {
    pub name: String,
    pub file: String,
    pub script: RhaiScript,
}

/// Loads and checks the project. Never fails: problems are diagnostics.
pub fn load(files: &dyn ProjectFiles, options: &LoadOptions<'_>) -> Loaded {
    let mut l = Loader {
        files,
        options,
        diags: Vec::new(),
        sources: BTreeMap::new(),
        engine: rhai_engine(),
        secrets: Default::default(),
    };

    let schemas = l.load_schemas();
    let tables = l.load_tables();
    let plugins = l.load_plugins();
    let mappings = l.load_mappings(&schemas);
    let parsed = l.parse_pipelines();
    let pipelines = check::check_pipelines(&mut l, &parsed, &schemas, &mappings, &plugins);

    let mut diagnostics = l.diags;
    sort_diagnostics(&mut diagnostics);
    // Invariant: nothing from a file with an error counts as compiled. Reload relies on this to
    // keep the previous version of a pipeline whose file (or mapping) went bad.
    let bad: std::collections::BTreeSet<&str> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| d.file.as_deref())
        .collect();
    let mut pipelines = pipelines;
    let mut mappings = mappings;
    mappings.retain(|_, m| !bad.contains(m.file.as_str()));
    pipelines.retain(|_, p| {
        !bad.contains(p.file.as_str()) && !p.depends_on.iter().any(|f| bad.contains(f.as_str()))
    });
    for p in pipelines.values_mut() {
        p.revision = revision(&l.sources, p);
    }
    Loaded {
        project: Project {
            sources: l.sources,
            schemas,
            mappings,
            pipelines,
            plugins,
            rhai: Arc::new(l.engine),
            tables: Arc::new(tables),
            secrets: l.secrets,
        },
        diagnostics,
    }
}

/// The content hash of what `p` runs: its file, the files it depends on, and the tables.
fn revision(sources: &BTreeMap<String, SourceText>, p: &Pipeline) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let tables = sources.keys().filter(|k| k.starts_with("tables/"));
    let files = std::iter::once(&p.file).chain(&p.depends_on).chain(tables);
    for path in files {
        h.update(path.as_bytes());
        h.update([0]);
        if let Some(src) = sources.get(path) {
            h.update(src.text.as_bytes());
        }
        h.update([0]);
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Orders diagnostics by file and position, errors before warnings at the same place, and
/// drops exact duplicates (a sub-tree re-checked after a failure can report the same thing).
pub fn sort_diagnostics(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        (&a.file, a.span.start, a.severity, a.code, &a.message).cmp(&(
            &b.file,
            b.span.start,
            b.severity,
            b.code,
            &b.message,
        ))
    });
    diags.dedup_by(|a, b| a.file == b.file && a.span == b.span && a.message == b.message);
}

pub(crate) struct Loader<'a> {
    files: &'a dyn ProjectFiles,
    options: &'a LoadOptions<'a>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) sources: BTreeMap<String, SourceText>,
    pub(crate) engine: rhai::Engine,
    pub(crate) secrets: crate::redact::Secrets,
}

/// A parsed pipeline file waiting for its semantic check.
pub(crate) struct ParsedPipeline {
    pub file: String,
    pub text: Arc<str>,
    pub def: Option<PipelineFile>,
    /// The name, even when the rest of the file failed to parse, so references to it resolve.
    pub name: Option<(String, Span)>,
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

impl Loader<'_> {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn list(&mut self, dir: &str) -> Vec<String> {
        let listing = self.files.list(dir);
        for (path, error) in listing.errors {
            self.push(error.diagnostic(&path, Named::Listed));
        }
        listing.files
    }

    /// Reads a file the project names — found in a project directory, or written in a config
    /// file — as `(project-relative path, bytes)`; or the diagnostic saying why it cannot,
    /// at the reference when there is one. Every file the loader reads goes through here:
    /// [`project_path`] refuses a path that leaves the project as written, and the
    /// [`ProjectFiles`] implementation one that leaves it through a symlink.
    pub(crate) fn read_file(
        &self,
        written: &str,
        limit: u64,
        named: Named<'_>,
    ) -> Result<(String, Vec<u8>), Diagnostic> {
        let path = project_path(written).map_err(|e| e.diagnostic(written, named))?;
        match self.files.read(&path, limit) {
            Ok(bytes) => Ok((path, bytes)),
            Err(e) => Err(e.diagnostic(&path, named)),
        }
    }

    /// Reads a text file, reporting why it cannot be used.
    pub(crate) fn read_text(
        &mut self,
        written: &str,
        limit: u64,
        named: Named<'_>,
    ) -> Option<SourceText> {
        if let Some(src) = self.sources.get(written) {
            return Some(src.clone());
        }
        let (path, bytes) = match self.read_file(written, limit, named) {
            Ok(read) => read,
            Err(d) => {
                self.push(d);
                return None;
            }
        };
        let path = path.as_str();
        if let Some(src) = self.sources.get(path) {
            return Some(src.clone());
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let lossy = String::from_utf8_lossy(bytes).into_owned();
                let offset = e.valid_up_to();
                let src = SourceText::new(path, lossy);
                self.sources.insert(path.to_string(), src);
                self.push(
                    Diagnostic::error(
                        Code::NotUtf8,
                        format!("file is not UTF-8 text: invalid byte 0x{:02X}", bytes.get(offset).copied().unwrap_or(0)),
                    )
                    .at(path, Span::new(offset, offset + 1))
                    .with_help("save the file as UTF-8; if it is binary, it does not belong in this directory"),
                );
                return None;
            }
        };
        if let Some(nul) = text.find('\0') {
            let src = SourceText::new(path, text.replace('\0', "\u{FFFD}"));
            self.sources.insert(path.to_string(), src);
            self.push(
                Diagnostic::error(Code::NotUtf8, "file looks binary: it contains NUL bytes")
                    .at(path, Span::new(nul, nul + 1))
                    .with_help(
                        "only text files belong in pipelines/, mappings/, schemas/ and plugins/",
                    ),
            );
            return None;
        }
        let src = SourceText::new(path, text);
        self.sources.insert(path.to_string(), src.clone());
        Some(src)
    }

    /// Parses a YAML file into nodes and resolves `${env:...}` references.
    fn parse_yaml(&mut self, src: &SourceText) -> Option<Node> {
        if src.text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        }) {
            self.push(
                Diagnostic::error(Code::EmptyFile, "file is empty")
                    .at(&src.path, Span::default())
                    .with_help("delete it, or write the pipeline or mapping it was meant to hold"),
            );
            return None;
        }
        let mut node = match yaml::parse(&src.text) {
            Ok(n) => n,
            Err(e) => {
                self.push(Diagnostic::error(e.code, e.message).at(&src.path, e.span));
                return None;
            }
        };
        if node.as_map().is_none() {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "expected a mapping at the top of the file, found {}",
                        node.type_name()
                    ),
                )
                .at(&src.path, node.span),
            );
            return None;
        }
        let secrets = &mut self.secrets;
        let missing = crate::env::interpolate_noting(
            &mut node,
            &src.text,
            self.options.env,
            &mut |key, name, value| secrets.note(key, name, value),
        );
        for m in missing {
            let (sev, msg) = if m.name.is_empty() {
                (
                    Severity::Error,
                    "malformed `${env:...}` reference: the variable name is empty".to_string(),
                )
            } else {
                (
                    if self.options.strict_env {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    format!("environment variable `{}` is not set", m.name),
                )
            };
            let mut d = Diagnostic::error(Code::MissingEnv, msg)
                .at(&src.path, m.span)
                .with_help("set it before `railyard run`, or give a default: `${env:NAME:-value}`");
            d.severity = sev;
            self.push(d);
        }
        Some(node)
    }

    pub(crate) fn de_error(&mut self, file: &str, e: DeError) {
        self.push(
            Diagnostic::error(e.code, e.message)
                .at(file, e.span.unwrap_or_default())
                .with_help_opt(e.help),
        );
    }

    /// Compiles a JMESPath expression written in `file`, reporting a syntax error at the exact
    /// character.
    pub(crate) fn jmespath(
        &mut self,
        file: &str,
        text: &str,
        e: &crate::Spanned<String>,
    ) -> Option<JmesPath> {
        match JmesPath::compile(&e.value) {
            Ok(c) => Some(c),
            Err(err) => {
                let at =
                    yaml::value_offset_to_source(text, e.span.start, &e.value, err.char_offset);
                self.push(
                    Diagnostic::error(
                        Code::JmespathSyntax,
                        format!("invalid JMESPath: {}", err.message),
                    )
                    .at(file, Span::new(at, at + 1))
                    .with_label(err.message),
                );
                None
            }
        }
    }

    /// Compiles inline Rhai written in `file`.
    pub(crate) fn rhai_inline(
        &mut self,
        file: &str,
        text: &str,
        s: &crate::Spanned<String>,
    ) -> Option<RhaiScript> {
        match RhaiScript::compile(&self.engine, &s.value) {
            Ok(c) => Some(c),
            Err(err) => {
                let at =
                    yaml::value_offset_to_source(text, s.span.start, &s.value, err.char_offset);
                self.push(
                    Diagnostic::error(Code::RhaiSyntax, format!("invalid Rhai: {}", err.message))
                        .at(file, Span::new(at, at + 1))
                        .with_label(err.message),
                );
                None
            }
        }
    }

    /// Compiles a Rhai file referenced from `from_file` at `reference`.
    pub(crate) fn rhai_file(
        &mut self,
        from_file: &str,
        reference: &crate::Spanned<String>,
    ) -> Option<RhaiScript> {
        let named = Named::Referenced {
            file: from_file,
            span: reference.span,
            kind: RefKind::Script,
        };
        let src = self.read_text(&reference.value, MAX_CONFIG_BYTES, named)?;
        self.compile_rhai_source(&src)
    }

    fn compile_rhai_source(&mut self, src: &SourceText) -> Option<RhaiScript> {
        match RhaiScript::compile(&self.engine, &src.text) {
            Ok(c) => Some(c),
            Err(err) => {
                let at = src
                    .text
                    .char_indices()
                    .nth(err.char_offset)
                    .map_or(src.text.len(), |(i, _)| i);
                self.push(
                    Diagnostic::error(Code::RhaiSyntax, format!("invalid Rhai: {}", err.message))
                        .at(&src.path, Span::new(at, at + 1))
                        .with_label(err.message),
                );
                None
            }
        }
    }

    /// Checks that a project-relative data file (fixture) exists. Only tests read fixtures,
    /// so for [`Purpose::Run`] a problem with one is a warning, never a reason not to start.
    pub(crate) fn require_file(
        &mut self,
        from_file: &str,
        reference: &crate::Spanned<String>,
    ) -> bool {
        let named = Named::Referenced {
            file: from_file,
            span: reference.span,
            kind: RefKind::Fixture,
        };
        let Err(mut d) = self.read_file(&reference.value, MAX_DATA_BYTES, named) else {
            return true;
        };
        if self.options.purpose == Purpose::Run {
            d.severity = Severity::Warning;
            d.label =
                Some("only `railyard test` reads fixtures; `run` starts without it".to_string());
        }
        self.push(d);
        false
    }

    fn load_schemas(&mut self) -> SchemaRegistry {
        let mut sources = Vec::new();
        for path in self.list("schemas") {
            if !(path.ends_with(".json") || is_yaml(&path)) {
                continue;
            }
            if let Some(text) = self.read_text(&path, MAX_DATA_BYTES, Named::Listed) {
                let rel = path.strip_prefix("schemas/").unwrap_or(&path).to_string();
                sources.push(SchemaSource { path, rel, text });
            }
        }
        SchemaRegistry::build(&sources, &mut self.diags)
    }

    /// Reference tables for `lookup()`: `tables/<name>.json` or `tables/<name>.csv`
    /// (subdirectories join with `.`: `tables/tax/codes.csv` is `tax.codes`).
    fn load_tables(&mut self) -> crate::functions::Tables {
        let mut tables = crate::functions::Tables::default();
        let mut defined_in: BTreeMap<String, String> = BTreeMap::new();
        for path in self.list("tables") {
            let rel = path.strip_prefix("tables/").unwrap_or(&path);
            let Some(stem) = rel
                .strip_suffix(".json")
                .or_else(|| rel.strip_suffix(".csv"))
            else {
                continue;
            };
            let name = stem.replace('/', ".");
            if let Some(first) = defined_in.get(&name) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        format!("table `{name}` is defined twice"),
                    )
                    .at(&path, Span::default())
                    .with_related(first, Span::default(), "first defined here"),
                );
                continue;
            }
            let bytes = match self.read_file(&path, MAX_DATA_BYTES, Named::Listed) {
                Ok((_, b)) => b,
                Err(d) => {
                    self.push(d);
                    continue;
                }
            };
            match crate::functions::Tables::parse_file(&name, &path, &bytes) {
                Ok(table) => {
                    defined_in.insert(name.clone(), path.clone());
                    tables = tables.with_table(name, table);
                }
                Err(msg) => {
                    self.push(Diagnostic::error(Code::InvalidValue, msg).at(&path, Span::default()))
                }
            }
        }
        tables
    }

    fn load_plugins(&mut self) -> BTreeMap<String, Plugin> {
        let mut plugins = BTreeMap::new();
        for path in self.list("plugins") {
            let Some(name) = path
                .strip_prefix("plugins/")
                .and_then(|p| p.strip_suffix(".rhai"))
            else {
                continue;
            };
            let name = name.replace('/', "::");
            let Some(src) = self.read_text(&path, MAX_CONFIG_BYTES, Named::Listed) else {
                continue;
            };
            if let Some(script) = self.compile_rhai_source(&src) {
                // Make the plugin importable as a module: `money::to_cents(x)` in any script
                // or Rhai mapping compiled after this.
                match rhai::Module::eval_ast_as_new(rhai::Scope::new(), script.ast(), &self.engine)
                {
                    Ok(module) => {
                        self.engine
                            .register_static_module(name.as_str(), module.into());
                    }
                    Err(e) => self.push(
                        Diagnostic::error(
                            Code::RhaiSyntax,
                            format!("plugin `{name}` fails to load: {e}"),
                        )
                        .at(&path, Span::default()),
                    ),
                }
                plugins.insert(
                    name.clone(),
                    Plugin {
                        name,
                        file: path,
                        script,
                    },
                );
            }
        }
        plugins
    }

    fn load_mappings(&mut self, schemas: &SchemaRegistry) -> BTreeMap<String, Mapping> {
        let mut out: BTreeMap<String, Mapping> = BTreeMap::new();
        for path in self.list("mappings") {
            if !is_yaml(&path) {
                continue;
            }
            let Some(src) = self.read_text(&path, MAX_CONFIG_BYTES, Named::Listed) else {
                continue;
            };
            let Some(node) = self.parse_yaml(&src) else {
                continue;
            };
            let (def, errors) = yaml::de::from_node_lenient::<MappingFile>(&node);
            for e in errors {
                self.de_error(&path, e);
            }
            let Some(def) = def else { continue };
            let Some(mapping) = self.compile_mapping(&path, &src.text, def, schemas) else {
                continue;
            };
            if let Some(existing) = out.get(&mapping.name) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        format!("mapping `{}` is defined twice", mapping.name),
                    )
                    .at(&path, mapping.def.mapping.span)
                    .with_related(
                        &existing.file,
                        existing.def.mapping.span,
                        "first defined here",
                    ),
                );
                continue;
            }
            out.insert(mapping.name.clone(), mapping);
        }
        out
    }

    fn compile_mapping(
        &mut self,
        file: &str,
        text: &str,
        def: MappingFile,
        schemas: &SchemaRegistry,
    ) -> Option<Mapping> {
        check_name(self, file, &def.mapping, "mapping");
        let from_ok = check::schema_ref(self, file, &def.from, schemas);
        let to_ok = check::schema_ref(self, file, &def.to, schemas);
        let given: Vec<&str> = [
            def.jmespath.as_ref().map(|_| "jmespath"),
            def.fields.as_ref().map(|_| "fields"),
            def.rhai.as_ref().map(|_| "rhai"),
            def.rhai_file.as_ref().map(|_| "rhai_file"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let msg = if given.is_empty() {
                "a mapping needs a body: one of `jmespath`, `fields`, `rhai` or `rhai_file`"
                    .to_string()
            } else {
                format!(
                    "a mapping has exactly one body, this one has {}: {}",
                    given.len(),
                    given
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.push(Diagnostic::error(Code::ConnectorCount, msg).at(file, def.mapping.span));
            return None;
        }
        let engine = if let Some(e) = &def.jmespath {
            MappingEngine::JmesPath(self.jmespath(file, text, e)?)
        } else if let Some(fields) = &def.fields {
            let mut out = Vec::new();
            let mut ok = true;
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in fields {
                let path: Vec<String> = k.value.split('.').map(str::to_string).collect();
                if path.iter().any(String::is_empty) {
                    self.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("field name `{}` has an empty segment", k.value),
                        )
                        .at(file, k.span),
                    );
                    ok = false;
                    continue;
                }
                if !seen.insert(k.value.clone()) {
                    self.push(
                        Diagnostic::error(
                            Code::YamlSyntax,
                            format!("field `{}` is mapped twice", k.value),
                        )
                        .at(file, k.span),
                    );
                    ok = false;
                }
                match self.jmespath(file, text, v) {
                    Some(c) => out.push((path, c)),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            MappingEngine::Fields(out)
        } else if let Some(r) = &def.rhai {
            MappingEngine::Rhai(self.rhai_inline(file, text, r)?)
        } else if let Some(r) = &def.rhai_file {
            MappingEngine::Rhai(self.rhai_file(file, r)?)
        } else {
            return None;
        };
        for t in &def.tests {
            let crate::model::Lenient::Ok(t) = t else {
                continue;
            };
            check::test_input(self, file, &t.value.input);
            if let crate::model::OrShort::Short(p) = &t.value.expect.value {
                self.require_file(file, &crate::Spanned::new(p.clone(), t.value.expect.span));
            } else if let crate::model::OrShort::Full(b) = &t.value.expect.value {
                check::expected_body(self, file, b, t.value.expect.span);
            }
        }
        if !(from_ok && to_ok) {
            return None;
        }
        Some(Mapping {
            name: def.mapping.value.clone(),
            file: file.to_string(),
            from: def.from.value.clone(),
            to: def.to.value.clone(),
            engine,
            def,
        })
    }

    fn parse_pipelines(&mut self) -> Vec<ParsedPipeline> {
        let mut out = Vec::new();
        for path in self.list("pipelines") {
            if !is_yaml(&path) {
                continue;
            }
            let Some(src) = self.read_text(&path, MAX_CONFIG_BYTES, Named::Listed) else {
                continue;
            };
            let Some(node) = self.parse_yaml(&src) else {
                continue;
            };
            let name = node
                .get("pipeline")
                .and_then(|n| n.scalar_text().map(|s| (s, n.span)));
            let (mut def, errors) = yaml::de::from_node_lenient::<PipelineFile>(&node);
            for e in errors {
                self.de_error(&path, e);
            }
            if def.is_none() {
                // The file's top level is broken (an unknown or missing key): report those,
                // then read the known sections anyway so their problems show in this run too.
                check::root_errors(self, &path, &node);
                let (retry, errors) =
                    yaml::de::from_node_lenient::<PipelineFile>(&check::known_root(&node));
                for e in errors {
                    self.de_error(&path, e);
                }
                def = retry;
            }
            out.push(ParsedPipeline {
                file: path,
                text: src.text.clone(),
                def,
                name,
            });
        }
        out
    }
}

/// Names of pipelines and mappings: what users type on the command line and in references.
pub(crate) fn check_name(
    l: &mut Loader<'_>,
    file: &str,
    name: &crate::Spanned<String>,
    what: &str,
) -> bool {
    let ok = !name.value.is_empty()
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        l.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("invalid {what} name `{}`", name.value),
            )
            .at(file, name.span)
            .with_help("use letters, digits, `-`, `_` and `.`, e.g. `shopify-order-intake`"),
        );
    }
    ok
}
