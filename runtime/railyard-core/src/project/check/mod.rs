//! Semantic checks of pipelines: references, expressions, the schema chain, cycles, topics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::plan::{InputSpec, OutputSpec};
use super::{Loader, Mapping, ParsedPipeline, Plugin, check_name};
use crate::delivery::RetryPolicy;
use crate::diag::{Code, Diagnostic, Span};
use crate::expr::{JmesPath, RhaiScript, template_parts};
use crate::model::pipeline::{
    ExpectedBody, Input, OnShort, Output, PipelineFile, StepKind, SwitchMode, TestInput,
};
use crate::model::{Lenient, OneOrMany, OrShort, Spanned};
use crate::schema::{SchemaId, SchemaRegistry};
use crate::yaml::{self, Node};

mod outputs;
mod project_wide;
mod refs;
mod steps;

use self::outputs::*;
use self::project_wide::*;
pub(crate) use self::project_wide::{expected_body, known_root, root_errors, test_input};
pub(crate) use self::refs::schema_ref;
use self::refs::*;
use self::steps::*;

/// A checked, compiled pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub name: String,
    pub version: u32,
    pub file: String,
    pub def: PipelineFile,
    /// The input connector and its settings.
    pub input: InputSpec,
    /// `on_error.retry` with the defaults filled in.
    pub retry: RetryPolicy,
    pub input_schema: Option<String>,
    pub dedupe_key: Option<JmesPath>,
    pub steps: Vec<Step>,
    pub outputs: Vec<OutputDef>,
    /// Files this pipeline depends on besides its own: mapping, schema, plugin and script
    /// files. A change to one of them rebuilds this pipeline on reload.
    pub depends_on: BTreeSet<String>,
    /// Content hash (12 hex digits) of the pipeline file, every file it depends on and the
    /// reference tables: it changes exactly when what the pipeline does may have changed, even
    /// if `version` was not bumped. Every message records it next to `pipeline_version`.
    pub revision: String,
}

impl OutputDef {
    /// The connector's name, as written in the YAML.
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}

/// A compiled step.
#[derive(Clone, Debug)]
pub enum Step {
    Validate {
        schema: String,
    },
    Map {
        mapping: String,
    },
    Filter {
        condition: JmesPath,
    },
    Switch {
        mode: SwitchMode,
        cases: Vec<SwitchCaseDef>,
        default: Option<Box<SwitchCaseDef>>,
    },
    Split {
        path: JmesPath,
        schema: Option<String>,
    },
    Batch {
        count: Option<u32>,
        window: Option<Duration>,
        schema: Option<String>,
    },
    Dedupe {
        key: JmesPath,
        ttl: Duration,
    },
    Metadata {
        set: Vec<(String, JmesPath)>,
        copy: Vec<(String, String)>,
        remove: Vec<String>,
    },
    Script {
        script: RhaiScript,
        produces: Option<String>,
    },
    Plugin {
        module: String,
        function: String,
        with: Option<serde_json::Value>,
        produces: Option<String>,
    },
    Reserve {
        sku: JmesPath,
        qty: JmesPath,
        location: Option<JmesPath>,
        on_short: OnShort,
    },
}

#[derive(Clone, Debug)]
pub struct SwitchCaseDef {
    pub name: Option<String>,
    pub when: Option<JmesPath>,
    pub steps: Vec<Step>,
    pub outputs: Vec<OutputDef>,
}

/// A checked output: its connector kind, its definition and its compiled templates.
#[derive(Clone, Debug)]
pub struct OutputDef {
    /// The output connector and its settings.
    pub spec: OutputSpec,
    pub def: Output,
    pub schema: Option<String>,
    /// `{{ expr }}` parts of templated settings, compiled, keyed by their source text.
    pub templates: BTreeMap<String, JmesPath>,
}

/// What the loader knows of the message's schema at a point in the pipeline.
#[derive(Clone, Debug)]
enum Ty {
    /// Conforms to `id`, established by `by` at `span` in `file`.
    Known {
        id: String,
        file: String,
        span: Span,
        by: String,
    },
    /// No schema declared: nothing to check against.
    Any,
    /// An earlier error made the schema unknowable; stay quiet to avoid cascades.
    Poison,
}

impl Ty {
    fn known(id: &str, file: &str, span: Span, by: impl Into<String>) -> Ty {
        Ty::Known {
            id: id.to_string(),
            file: file.to_string(),
            span,
            by: by.into(),
        }
    }
    fn id(&self) -> Option<&str> {
        match self {
            Ty::Known { id, .. } => Some(id),
            _ => None,
        }
    }
}

struct Ctx<'p> {
    file: String,
    text: std::sync::Arc<str>,
    schemas: &'p SchemaRegistry,
    mappings: &'p BTreeMap<String, Mapping>,
    plugins: &'p BTreeMap<String, Plugin>,
    /// name → (input kind, input schema, file, span of the name)
    pipelines: &'p BTreeMap<String, PipelineHead>,
    depends_on: BTreeSet<String>,
    route_names: BTreeSet<String>,
    /// pipeline outputs: (target, span)
    sends_to: Vec<(String, Span)>,
    /// topic outputs: (topic, schema state, span)
    publishes: Vec<(String, Option<String>, Span)>,
}

#[derive(Clone, Debug)]
pub(crate) struct PipelineHead {
    input_kind: Option<&'static str>,
    input_schema: Option<String>,
    file: String,
    span: Span,
}

fn input_kind(input: &Input) -> Vec<(&'static str, Span)> {
    InputSpec::connectors(input)
}

fn output_kinds(o: &Output) -> Vec<(&'static str, Span)> {
    OutputSpec::connectors(o)
}

pub(crate) fn check_pipelines(
    l: &mut Loader<'_>,
    parsed: &[ParsedPipeline],
    schemas: &SchemaRegistry,
    mappings: &BTreeMap<String, Mapping>,
    plugins: &BTreeMap<String, Plugin>,
) -> BTreeMap<String, Pipeline> {
    // Pass 1: names, duplicates, and each pipeline's input, so outputs can check their targets.
    let mut heads: BTreeMap<String, PipelineHead> = BTreeMap::new();
    for p in parsed {
        let Some((name, span)) = &p.name else {
            continue;
        };
        if let Some(first) = heads.get(name) {
            l.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    format!("pipeline `{name}` is defined twice"),
                )
                .at(&p.file, *span)
                .with_related(&first.file, first.span, "first defined here")
                .with_help("pipeline names are unique in a project; rename one of them"),
            );
            continue;
        }
        let (input_kind, input_schema) = match p.def.as_ref().and_then(|d| d.input.ok()) {
            Some(input) => {
                let kinds = input_kind(&input.value);
                (
                    (kinds.len() == 1).then(|| kinds[0].0),
                    input.value.schema.as_ref().map(|s| s.value.clone()),
                )
            }
            None => (None, None),
        };
        heads.insert(
            name.clone(),
            PipelineHead {
                input_kind,
                input_schema,
                file: p.file.clone(),
                span: *span,
            },
        );
    }

    // Pass 2: check each pipeline.
    let mut out = BTreeMap::new();
    let mut graph: BTreeMap<String, Vec<(String, String, Span)>> = BTreeMap::new();
    let mut producers: Vec<(String, String, Option<String>, String, Span)> = Vec::new();
    let mut consumers: Vec<(String, String, Option<String>, String, Span)> = Vec::new();
    for p in parsed {
        let Some(def) = &p.def else { continue };
        if heads
            .get(&def.pipeline.value)
            .is_some_and(|h| h.file != p.file)
        {
            continue; // the duplicate was reported
        }
        let mut ctx = Ctx {
            file: p.file.clone(),
            text: p.text.clone(),
            schemas,
            mappings,
            plugins,
            pipelines: &heads,
            depends_on: BTreeSet::new(),
            route_names: BTreeSet::new(),
            sends_to: Vec::new(),
            publishes: Vec::new(),
        };
        if let Some(pipeline) = check_pipeline(l, &mut ctx, def) {
            graph.insert(
                pipeline.name.clone(),
                ctx.sends_to
                    .iter()
                    .map(|(t, s)| (t.clone(), p.file.clone(), *s))
                    .collect(),
            );
            for (topic, schema, span) in &ctx.publishes {
                producers.push((
                    topic.clone(),
                    pipeline.name.clone(),
                    schema.clone(),
                    p.file.clone(),
                    *span,
                ));
            }
            if let Some(t) = def.input.ok().and_then(|i| i.value.topic.as_ref()) {
                let name = match &t.value {
                    OrShort::Short(s) => s.clone(),
                    OrShort::Full(f) => f.name.value.clone(),
                };
                consumers.push((
                    name,
                    pipeline.name.clone(),
                    pipeline.input_schema.clone(),
                    p.file.clone(),
                    t.span,
                ));
            }
            out.insert(pipeline.name.clone(), pipeline);
        }
    }

    report_cycles(l, &graph);
    report_topic_schemas(l, &producers, &consumers);
    report_shared_http_paths(l, parsed, &heads);
    out
}

/// Two pipelines listening on one HTTP path: `run` cannot serve both and refuses to start
/// (the HTTP connector's `routes` keys routes by the exact `path`, whatever the methods), so
/// `validate` refuses it too, at the second pipeline's path, pointing at the first.
fn report_shared_http_paths(
    l: &mut Loader<'_>,
    parsed: &[ParsedPipeline],
    heads: &BTreeMap<String, PipelineHead>,
) {
    // path → (pipeline, file, span of its path, line of that span)
    let mut taken: BTreeMap<&str, (&str, &str, Span, usize)> = BTreeMap::new();
    for p in parsed {
        let Some(def) = &p.def else { continue };
        if heads
            .get(&def.pipeline.value)
            .is_some_and(|h| h.file != p.file)
        {
            continue; // a duplicate name, reported; `run` never sees it
        }
        let Some(http) = def.input.ok().and_then(|i| i.value.http.as_ref()) else {
            continue;
        };
        let path = &http.value.path;
        match taken.get(path.value.as_str()) {
            Some(&(first, first_file, first_span, first_line)) => l.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    format!(
                        "HTTP path `{}` is already served by pipeline `{first}`; `run` cannot route one path to two pipelines",
                        path.value
                    ),
                )
                .at(&p.file, path.span)
                .with_label(format!(
                    "also the path of `{first}` ({first_file}:{first_line})"
                ))
                .with_related(
                    first_file,
                    first_span,
                    format!("pipeline `{first}` listens on `{}` here", path.value),
                )
                .with_help(
                    "give each pipeline its own path, or send both kinds of request to one pipeline and `switch` on them",
                ),
            ),
            None => {
                let line = p.text.get(..path.span.start).map_or(1, |before| {
                    before.bytes().filter(|b| *b == b'\n').count() + 1
                });
                taken.insert(
                    path.value.as_str(),
                    (def.pipeline.value.as_str(), p.file.as_str(), path.span, line),
                );
            }
        }
    }
}

fn check_pipeline(l: &mut Loader<'_>, ctx: &mut Ctx<'_>, def: &PipelineFile) -> Option<Pipeline> {
    let file = ctx.file.clone();
    let mut ok = check_name(l, &file, &def.pipeline, "pipeline");
    let version = def.version.as_ref().map_or(1, |v| v.value);

    // Input: exactly one connector.
    let failed_input = Input::default();
    let (input, input_span) = match def.input.ok() {
        Some(i) => (&i.value, i.span),
        None => {
            ok = false;
            (&failed_input, Span::default())
        }
    };
    let kinds = if def.input.ok().is_some() {
        input_kind(input)
    } else {
        vec![("none", Span::default())]
    };
    let input_kind = match kinds.as_slice() {
        [(k, _)] => *k,
        [] => {
            l.push(
                Diagnostic::error(Code::ConnectorCount, "the input names no connector")
                    .at(&file, input_span)
                    .with_help("add one of `http`, `amqp`, `topic`, `file`, `schedule`, `stdin`, `pipeline`"),
            );
            ok = false;
            "none"
        }
        [_, (second, span), ..] => {
            l.push(
                Diagnostic::error(
                    Code::ConnectorCount,
                    format!(
                        "the input names {} connectors ({}); a pipeline has exactly one input",
                        kinds.len(),
                        kinds.iter().map(|(k, _)| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                )
                .at(&file, *span)
                .with_label(format!("second connector `{second}`"))
                .with_help("split this into one pipeline per input, sending to a shared pipeline with `output: {pipeline: name}`"),
            );
            ok = false;
            "none"
        }
    };
    check_input_settings(l, ctx, input);

    let mut ty = if def.input.ok().is_some() {
        Ty::Any
    } else {
        Ty::Poison
    };
    if let Some(s) = &input.schema {
        ty = if schema_ref(l, &file, s, ctx.schemas) {
            ctx.depends_on
                .extend(ctx.schemas.get(&s.value).map(|e| e.file.clone()));
            Ty::known(&s.value, &file, s.span, "the input's `schema`")
        } else {
            Ty::Poison
        };
    }
    let dedupe_key = input.dedupe_key.as_ref().and_then(|e| {
        let c = l.jmespath(&file, &ctx.text, e);
        ok &= c.is_some();
        c
    });

    let (steps, ty, steps_ok) = check_steps(l, ctx, &def.steps, ty, false);
    ok &= steps_ok;
    let (outputs, outputs_ok) = check_outputs(l, ctx, &def.output, &ty);
    ok &= outputs_ok;

    if let Some(policy) = def.on_error.as_ref().and_then(|p| match p {
        Lenient::Ok(p) => Some(p),
        Lenient::Failed => {
            ok = false;
            None
        }
    }) {
        if let Some(r) = &policy.value.retry {
            if r.value.attempts.value == 0 {
                l.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        "`attempts` counts the first try too: it must be at least 1",
                    )
                    .at(&file, r.value.attempts.span),
                );
                ok = false;
            }
            if let (Some(i), Some(m)) = (&r.value.initial, &r.value.max)
                && i.value.0 > m.value.0
            {
                l.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        "the initial retry delay is longer than `max`",
                    )
                    .at(&file, i.span),
                );
                ok = false;
            }
        }
        if let Some(dl) = &policy.value.dead_letter {
            match &dl.value {
                OrShort::Short(s) if s == "store" => {}
                OrShort::Short(s) => {
                    l.push(
                        Diagnostic::error(Code::InvalidValue, format!("unknown dead-letter target `{s}`"))
                            .at(&file, dl.span)
                            .with_help("write `store` for the dead-letter store, or an output such as `{topic: orders.dead}`"),
                    );
                    ok = false;
                }
                OrShort::Full(o) => {
                    let one = Lenient::Ok(Spanned::new(
                        OneOrMany(vec![Lenient::Ok(Spanned::new(o.clone(), dl.span))]),
                        dl.span,
                    ));
                    ok &= check_outputs(l, ctx, &one, &Ty::Any).1;
                }
            }
        }
    }

    for t in &def.tests {
        let Lenient::Ok(t) = t else {
            ok = false;
            continue;
        };
        test_input(l, &file, &t.value.input);
        let e = &t.value.expect.value;
        let given = [
            e.output.is_some(),
            e.outputs.is_some(),
            e.dropped == Some(true),
            e.error.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            l.push(
                Diagnostic::error(
                    Code::ConnectorCount,
                    "a test expects one outcome: `output`, `outputs`, `dropped` or `error`",
                )
                .at(&file, t.value.expect.span),
            );
            ok = false;
        }
        if let Some(b) = &e.output {
            expected_body(l, &file, &b.value, b.span);
        }
        for b in e.outputs.iter().flatten() {
            expected_body(l, &file, &b.value, b.span);
        }
        for a in &e.assert {
            ok &= l.jmespath(&file, &ctx.text, a).is_some();
        }
        if let Some(route) = &e.route
            && !ctx.route_names.contains(&route.value)
        {
            let known: Vec<&str> = ctx.route_names.iter().map(String::as_str).collect();
            l.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("no switch case is named `{}`", route.value),
                )
                .at(&file, route.span)
                .with_help(
                    match crate::suggest::did_you_mean(&route.value, known.iter().copied()) {
                        Some(b) => format!("did you mean `{b}`?"),
                        None if known.is_empty() => {
                            "this pipeline has no named switch cases".to_string()
                        }
                        None => format!("named cases: {}", known.join(", ")),
                    },
                ),
            );
        }
    }

    if !ok {
        return None;
    }
    let input_spec = InputSpec::of(input, &def.pipeline.value)?;
    debug_assert_eq!(input_spec.kind(), input_kind);
    Some(Pipeline {
        name: def.pipeline.value.clone(),
        version,
        file,
        retry: RetryPolicy::of_file(def),
        def: def.clone(),
        input: input_spec,
        input_schema: input.schema.as_ref().map(|s| s.value.clone()),
        dedupe_key,
        steps,
        outputs,
        depends_on: std::mem::take(&mut ctx.depends_on),
        revision: String::new(),
    })
}

fn check_input_settings(l: &mut Loader<'_>, ctx: &mut Ctx<'_>, input: &Input) {
    let file = ctx.file.clone();
    if let Some(h) = &input.http {
        let path = &h.value.path;
        if !path.value.starts_with('/') {
            l.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("HTTP path `{}` must start with `/`", path.value),
                )
                .at(&file, path.span),
            );
        }
        for m in &h.value.methods {
            const METHODS: &[&str] = &["POST", "PUT", "PATCH", "GET", "DELETE"];
            if !METHODS.contains(&m.value.to_ascii_uppercase().as_str()) {
                l.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("unknown HTTP method `{}`", m.value),
                    )
                    .at(&file, m.span)
                    .with_help(format!("one of: {}", METHODS.join(", "))),
                );
            }
        }
        if let Some(v) = &h.value.verify {
            let hm = &v.value.hmac_sha256.value;
            if hm.signed == crate::model::pipeline::Signed::UrlAndBody && hm.url.is_none() {
                l.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        "`signed: url_and_body` needs the public `url` the platform signs",
                    )
                    .at(&file, v.value.hmac_sha256.span),
                );
            }
            if hm.secret.value.trim().is_empty() {
                l.push(
                    Diagnostic::error(Code::InvalidValue, "the HMAC secret is empty")
                        .at(&file, hm.secret.span),
                );
            }
        }
    }
    if let Some(s) = &input.schedule {
        match (&s.value.every, &s.value.cron) {
            (None, None) | (Some(_), Some(_)) => l.push(
                Diagnostic::error(
                    Code::ConnectorCount,
                    "a schedule needs exactly one of `every` or `cron`",
                )
                .at(&file, s.span),
            ),
            (None, Some(c)) => {
                // The parser the schedule connector runs with: what validates is what runs.
                if let Err(why) = super::cron::parse_cron(&c.value) {
                    l.push(
                        Diagnostic::error(Code::InvalidValue, why)
                            .at(&file, c.span)
                            .with_help("minute hour day-of-month month day-of-week (with an optional leading second and trailing year), e.g. `*/15 * * * *`, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`"),
                    );
                }
            }
            (Some(e), None) if e.value.0.is_zero() => l.push(
                Diagnostic::error(Code::InvalidValue, "`every` must be longer than zero")
                    .at(&file, e.span),
            ),
            _ => {}
        }
    }
    if let Some(f) = &input.file
        && let Some(csv) = &f.value.csv
        && let Some(d) = &csv.delimiter
        && d.chars().count() != 1
    {
        l.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("CSV delimiter `{d}` must be one character"),
            )
            .at(&file, f.span),
        );
    }
}

/// Top-level keys of a pipeline file (checked against the generated schema by a test).
pub const PIPELINE_KEYS: &[&str] = &[
    "pipeline",
    "version",
    "description",
    "input",
    "steps",
    "output",
    "on_error",
    "tests",
];
