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

fn check_steps(
    l: &mut Loader<'_>,
    ctx: &mut Ctx<'_>,
    steps: &[Lenient<Spanned<StepKind>>],
    mut ty: Ty,
    in_case: bool,
) -> (Vec<Step>, Ty, bool) {
    let file = ctx.file.clone();
    let text = ctx.text.clone();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, step) in steps.iter().enumerate() {
        let Lenient::Ok(step) = step else {
            ok = false;
            ty = Ty::Poison;
            continue;
        };
        let step_no = i + 1;
        let label = format!("step {step_no} `{}`", step.value.kind_name());
        let compiled = match &step.value {
            StepKind::Validate(v) => {
                let schema = match &v.value {
                    OrShort::Short(s) => Spanned::new(s.clone(), v.span),
                    OrShort::Full(f) => f.schema.clone(),
                };
                if schema_ref(l, &file, &schema, ctx.schemas) {
                    ctx.depends_on
                        .extend(ctx.schemas.get(&schema.value).map(|e| e.file.clone()));
                    ty = Ty::known(&schema.value, &file, schema.span, label.clone());
                    Some(Step::Validate {
                        schema: schema.value,
                    })
                } else {
                    ty = Ty::Poison;
                    None
                }
            }
            StepKind::Map(m) => {
                let name = match &m.value {
                    OrShort::Short(s) => Spanned::new(s.clone(), m.span),
                    OrShort::Full(f) => f.mapping.clone(),
                };
                match ctx.mappings.get(&name.value) {
                    Some(mapping) => {
                        ctx.depends_on.insert(mapping.file.clone());
                        ctx.depends_on.extend(
                            [&mapping.from, &mapping.to]
                                .iter()
                                .filter_map(|id| ctx.schemas.get(id).map(|e| e.file.clone())),
                        );
                        if let Some(f) = &mapping.def.rhai_file {
                            ctx.depends_on
                                .insert(f.value.trim_start_matches("./").to_string());
                        }
                        expect_schema(
                            l,
                            &file,
                            &ty,
                            &mapping.from,
                            name.span,
                            &format!("step {step_no} `map: {}`", name.value),
                            Some((
                                &mapping.file,
                                mapping.def.from.span,
                                format!(
                                    "mapping `{}` declares `from: {}`",
                                    name.value, mapping.from
                                ),
                            )),
                        );
                        ty = Ty::known(
                            &mapping.to,
                            &file,
                            name.span,
                            format!("step {step_no} `map: {}`", name.value),
                        );
                        Some(Step::Map {
                            mapping: name.value.clone(),
                        })
                    }
                    None => {
                        unknown_name(
                            l,
                            &file,
                            &name,
                            "mapping",
                            Code::UnknownMapping,
                            ctx.mappings.keys().map(String::as_str),
                        );
                        ty = Ty::Poison;
                        None
                    }
                }
            }
            StepKind::Filter(f) => {
                let cond = match &f.value {
                    OrShort::Short(s) => Spanned::new(s.clone(), f.span),
                    OrShort::Full(full) => full.condition.clone(),
                };
                l.jmespath(&file, &text, &cond)
                    .map(|condition| Step::Filter { condition })
            }
            StepKind::Switch(s) => {
                let mut cases = Vec::new();
                let mut continuing: Vec<(Ty, Span)> = Vec::new();
                let mut case_ok = true;
                if s.value.cases.is_empty() {
                    l.push(
                        Diagnostic::error(Code::MissingKey, "a switch needs at least one case")
                            .at(&file, s.span),
                    );
                    case_ok = false;
                }
                for case in &s.value.cases {
                    if case.value.when.is_none() {
                        l.push(
                            Diagnostic::error(
                                Code::MissingKey,
                                "missing key `when`: every case needs a condition",
                            )
                            .at(&file, case.span)
                            .with_help("use `default:` for messages no case matches"),
                        );
                        case_ok = false;
                    }
                    match check_case(l, ctx, &case.value, ty.clone()) {
                        Some((c, end)) => {
                            if c.outputs.is_empty() {
                                continuing.push((end, case.span));
                            }
                            cases.push(c);
                        }
                        None => case_ok = false,
                    }
                }
                let default = match &s.value.default {
                    Some(d) => {
                        if let Some(w) = &d.value.when {
                            l.push(
                                Diagnostic::error(Code::InvalidValue, "`default` takes no `when`")
                                    .at(&file, w.span),
                            );
                            case_ok = false;
                        }
                        match check_case(l, ctx, &d.value, ty.clone()) {
                            Some((c, end)) => {
                                if c.outputs.is_empty() {
                                    continuing.push((end, d.span));
                                }
                                Some(Box::new(c))
                            }
                            None => {
                                case_ok = false;
                                None
                            }
                        }
                    }
                    None => {
                        continuing.push((ty.clone(), s.span));
                        None
                    }
                };
                // Messages that leave the switch by different branches must agree on their schema.
                let known: Vec<(&str, Span)> = continuing
                    .iter()
                    .filter_map(|(t, s)| t.id().map(|id| (id, *s)))
                    .collect();
                if let Some((first, first_span)) = known.first()
                    && let Some((other, other_span)) = known.iter().find(|(id, _)| id != first)
                {
                    l.push(
                        Diagnostic::error(
                            Code::SchemaMismatch,
                            format!("messages leave this switch as `{first}` by one branch and as `{other}` by another"),
                        )
                        .at(&file, *other_span)
                        .with_label(format!("continues as `{other}`"))
                        .with_related(&file, *first_span, format!("continues as `{first}`"))
                        .with_help("give the branches their own `output`, or map them to the same schema"),
                    );
                    case_ok = false;
                }
                ty = if continuing.iter().any(|(t, _)| matches!(t, Ty::Poison)) {
                    Ty::Poison
                } else {
                    continuing.into_iter().next().map_or(Ty::Any, |(t, _)| t)
                };
                case_ok.then_some(Step::Switch {
                    mode: s.value.mode,
                    cases,
                    default,
                })
            }
            StepKind::Split(s) => {
                let path = l.jmespath(&file, &text, &s.value.path);
                let schema = optional_schema(l, ctx, &s.value.schema);
                ty = match &s.value.schema {
                    Some(id) if schema.is_some() => {
                        Ty::known(&id.value, &file, id.span, label.clone())
                    }
                    Some(_) => Ty::Poison,
                    None => Ty::Any,
                };
                path.map(|path| Step::Split { path, schema })
            }
            StepKind::Batch(b) => {
                let v = &b.value;
                if in_case {
                    l.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            "a batch cannot sit inside a switch case",
                        )
                        .at(&file, step.span)
                        .with_help("batch at the top level of `steps`, before or after the switch"),
                    );
                    ok = false;
                }
                if v.count.is_none() && v.window.is_none() {
                    l.push(
                        Diagnostic::error(
                            Code::MissingKey,
                            "a batch needs `count`, `window`, or both",
                        )
                        .at(&file, b.span)
                        .with_help(
                            "e.g. `batch: { count: 500, window: 5s }` for POS micro-batches",
                        ),
                    );
                }
                if let Some(c) = &v.count
                    && c.value == 0
                {
                    l.push(
                        Diagnostic::error(Code::InvalidValue, "`count` must be at least 1")
                            .at(&file, c.span),
                    );
                }
                let schema = optional_schema(l, ctx, &v.schema);
                ty = match &v.schema {
                    Some(id) if schema.is_some() => {
                        Ty::known(&id.value, &file, id.span, label.clone())
                    }
                    Some(_) => Ty::Poison,
                    None => Ty::Any,
                };
                let valid = (v.count.is_some() || v.window.is_some())
                    && v.count.as_ref().is_none_or(|c| c.value > 0);
                valid.then(|| Step::Batch {
                    count: v.count.as_ref().map(|c| c.value),
                    window: v.window.as_ref().map(|w| w.value.0),
                    schema,
                })
            }
            StepKind::Dedupe(d) => {
                let key = l.jmespath(&file, &text, &d.value.key);
                if d.value.ttl.value.0.is_zero() {
                    l.push(
                        Diagnostic::error(Code::InvalidValue, "`ttl` must be longer than zero")
                            .at(&file, d.value.ttl.span),
                    );
                }
                key.filter(|_| !d.value.ttl.value.0.is_zero())
                    .map(|key| Step::Dedupe {
                        key,
                        ttl: d.value.ttl.value.0,
                    })
            }
            StepKind::Metadata(m) => {
                let mut set = Vec::new();
                let mut m_ok = true;
                let targets = m
                    .value
                    .set
                    .iter()
                    .map(|(k, e)| (k, e.span))
                    .chain(m.value.copy.iter().map(|(k, v)| (k, v.span)));
                for (k, span) in targets.collect::<Vec<_>>() {
                    if crate::engine::RESERVED_META.contains(&k.as_str()) {
                        l.push(
                            Diagnostic::error(
                                Code::InvalidValue,
                                format!("`meta.{k}` belongs to the runtime and cannot be set"),
                            )
                            .at(&file, span)
                            .with_help(format!(
                                "reserved: {}",
                                crate::engine::RESERVED_META.join(", ")
                            )),
                        );
                        m_ok = false;
                    }
                }
                for (k, e) in &m.value.set {
                    match l.jmespath(&file, &text, e) {
                        Some(c) => set.push((k.clone(), c)),
                        None => m_ok = false,
                    }
                }
                m_ok.then(|| Step::Metadata {
                    set,
                    copy: m
                        .value
                        .copy
                        .iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect(),
                    remove: m.value.remove.clone(),
                })
            }
            StepKind::Script(s) => {
                let v = &s.value;
                let script = match (&v.rhai, &v.file) {
                    (Some(r), None) => l.rhai_inline(&file, &text, r),
                    (None, Some(f)) => {
                        ctx.depends_on
                            .insert(f.value.trim_start_matches("./").to_string());
                        l.rhai_file(&file, f)
                    }
                    _ => {
                        l.push(
                            Diagnostic::error(
                                Code::ConnectorCount,
                                "a script needs exactly one of `rhai` or `file`",
                            )
                            .at(&file, s.span),
                        );
                        None
                    }
                };
                let produces = optional_schema(l, ctx, &v.produces);
                if let Some(p) = &v.produces {
                    ty = if produces.is_some() {
                        Ty::known(&p.value, &file, p.span, label.clone())
                    } else {
                        Ty::Poison
                    };
                }
                script.map(|script| Step::Script { script, produces })
            }
            StepKind::Plugin(p) => {
                let v = &p.value;
                let function = v
                    .function
                    .as_ref()
                    .map_or("process".to_string(), |f| f.value.clone());
                let found = match ctx.plugins.get(&v.module.value) {
                    None => {
                        unknown_name(
                            l,
                            &file,
                            &v.module,
                            "plugin module",
                            Code::UnknownPlugin,
                            ctx.plugins.keys().map(String::as_str),
                        );
                        false
                    }
                    Some(plugin) => {
                        ctx.depends_on.insert(plugin.file.clone());
                        let has = plugin.script.has_fn(&function, 1)
                            || plugin.script.has_fn(&function, 2);
                        if !has {
                            let span = v.function.as_ref().map_or(v.module.span, |f| f.span);
                            l.push(
                                Diagnostic::error(
                                    Code::UnknownPlugin,
                                    format!("plugin `{}` has no function `{function}` taking (body) or (body, settings)", v.module.value),
                                )
                                .at(&file, span)
                                .with_related(&plugin.file, Span::default(), "module defined here"),
                            );
                        }
                        has
                    }
                };
                let produces = optional_schema(l, ctx, &v.produces);
                if let Some(pr) = &v.produces {
                    ty = if produces.is_some() {
                        Ty::known(&pr.value, &file, pr.span, label.clone())
                    } else {
                        Ty::Poison
                    };
                }
                found.then(|| Step::Plugin {
                    module: v.module.value.clone(),
                    function,
                    with: v.with.clone(),
                    produces,
                })
            }
            StepKind::Reserve(r) => {
                let v = &r.value;
                let sku = l.jmespath(&file, &text, &v.sku);
                let qty = l.jmespath(&file, &text, &v.qty);
                let location = v.location.as_ref().map(|e| l.jmespath(&file, &text, e));
                match (sku, qty, location) {
                    (Some(sku), Some(qty), None) => Some(Step::Reserve {
                        sku,
                        qty,
                        location: None,
                        on_short: v.on_short,
                    }),
                    (Some(sku), Some(qty), Some(Some(loc))) => Some(Step::Reserve {
                        sku,
                        qty,
                        location: Some(loc),
                        on_short: v.on_short,
                    }),
                    _ => None,
                }
            }
        };
        match compiled {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    (out, ty, ok)
}

fn check_case(
    l: &mut Loader<'_>,
    ctx: &mut Ctx<'_>,
    case: &crate::model::pipeline::SwitchCase,
    ty: Ty,
) -> Option<(SwitchCaseDef, Ty)> {
    let file = ctx.file.clone();
    let text = ctx.text.clone();
    if let Some(n) = &case.name
        && !ctx.route_names.insert(n.value.clone())
    {
        l.push(
            Diagnostic::error(
                Code::DuplicateName,
                format!("two switch cases are named `{}`", n.value),
            )
            .at(&file, n.span),
        );
    }
    let when = match &case.when {
        Some(w) => Some(l.jmespath(&file, &text, w)?),
        None => None,
    };
    let (steps, end, steps_ok) = check_steps(l, ctx, &case.steps, ty, true);
    let (outputs, outputs_ok) = match &case.output {
        Some(o) => check_outputs(l, ctx, o, &end),
        None => (Vec::new(), true),
    };
    (steps_ok && outputs_ok).then(|| {
        (
            SwitchCaseDef {
                name: case.name.as_ref().map(|n| n.value.clone()),
                when,
                steps,
                outputs,
            },
            end,
        )
    })
}

fn check_outputs(
    l: &mut Loader<'_>,
    ctx: &mut Ctx<'_>,
    outputs: &crate::model::pipeline::Outputs,
    ty: &Ty,
) -> (Vec<OutputDef>, bool) {
    let file = ctx.file.clone();
    let text = ctx.text.clone();
    let mut defs = Vec::new();
    let mut ok = true;
    let Lenient::Ok(outputs) = outputs else {
        return (defs, false);
    };
    if outputs.value.0.is_empty() {
        l.push(
            Diagnostic::error(Code::MissingKey, "the output list is empty").at(&file, outputs.span),
        );
        return (defs, false);
    }
    for o in &outputs.value.0 {
        let Lenient::Ok(o) = o else {
            ok = false;
            continue;
        };
        let kinds = output_kinds(&o.value);
        let kind = match kinds.as_slice() {
            [(k, _)] => *k,
            [] => {
                l.push(
                    Diagnostic::error(Code::ConnectorCount, "this output names no connector")
                        .at(&file, o.span)
                        .with_help(
                            "add one of `topic`, `amqp`, `http`, `file`, `stdout`, `pipeline`",
                        ),
                );
                ok = false;
                continue;
            }
            [_, (second, span), ..] => {
                l.push(
                    Diagnostic::error(
                        Code::ConnectorCount,
                        format!(
                            "this output names {} connectors; write one list item per output",
                            kinds.len()
                        ),
                    )
                    .at(&file, *span)
                    .with_label(format!("second connector `{second}`"))
                    .with_help(
                        "`output:` takes a list for fan-out: `output: [{topic: a}, {http: {...}}]`",
                    ),
                );
                ok = false;
                continue;
            }
        };
        let mut schema = None;
        if let Some(s) = &o.value.schema {
            if schema_ref(l, &file, s, ctx.schemas) {
                ctx.depends_on
                    .extend(ctx.schemas.get(&s.value).map(|e| e.file.clone()));
                expect_schema(
                    l,
                    &file,
                    ty,
                    &s.value,
                    s.span,
                    &format!("the `{kind}` output"),
                    None,
                );
                schema = Some(s.value.clone());
            } else {
                ok = false;
            }
        }
        let mut templates = BTreeMap::new();
        let mut template = |l: &mut Loader<'_>, t: &Spanned<String>| match template_parts(&t.value)
        {
            Ok(parts) => {
                for (expr, char_offset) in parts {
                    match JmesPath::compile(&expr) {
                        Ok(c) => {
                            templates.insert(expr, c);
                        }
                        Err(err) => {
                            let at = yaml::value_offset_to_source(
                                &text,
                                t.span.start,
                                &t.value,
                                char_offset + err.char_offset,
                            );
                            l.push(
                                Diagnostic::error(
                                    Code::JmespathSyntax,
                                    format!("invalid JMESPath in template: {}", err.message),
                                )
                                .at(&file, Span::new(at, at + 1))
                                .with_label(err.message),
                            );
                            return false;
                        }
                    }
                }
                true
            }
            Err(err) => {
                let at =
                    yaml::value_offset_to_source(&text, t.span.start, &t.value, err.char_offset);
                l.push(
                    Diagnostic::error(Code::JmespathSyntax, err.message)
                        .at(&file, Span::new(at, at + 2)),
                );
                false
            }
        };
        let v = &o.value;
        if let Some(t) = &v.topic {
            let name = match &t.value {
                OrShort::Short(s) => Spanned::new(s.clone(), t.span),
                OrShort::Full(f) => f.name.clone(),
            };
            ok &= template(l, &name);
            ctx.publishes
                .push((name.value.clone(), ty.id().map(str::to_string), name.span));
        }
        if let Some(a) = &v.amqp
            && let Some(rk) = &a.value.routing_key
        {
            ok &= template(l, rk);
        }
        if let Some(h) = &v.http {
            ok &= template(l, &h.value.url);
            for hv in h.value.headers.values() {
                ok &= template(l, hv);
            }
            if let Some(m) = &h.value.method {
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
                    ok = false;
                }
            }
            for code in h.value.success.iter().chain(&h.value.retry_on) {
                if !(100..=599).contains(code) {
                    l.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("`{code}` is not an HTTP status code"),
                        )
                        .at(&file, h.span),
                    );
                    ok = false;
                }
            }
            if let Some(m) = &h.value.mapping {
                match ctx.mappings.get(&m.value) {
                    Some(mapping) => {
                        ctx.depends_on.insert(mapping.file.clone());
                        expect_schema(
                            l,
                            &file,
                            ty,
                            &mapping.from,
                            m.span,
                            &format!("the HTTP body mapping `{}`", m.value),
                            Some((
                                &mapping.file,
                                mapping.def.from.span,
                                format!("mapping `{}` declares `from: {}`", m.value, mapping.from),
                            )),
                        );
                    }
                    None => {
                        unknown_name(
                            l,
                            &file,
                            m,
                            "mapping",
                            Code::UnknownMapping,
                            ctx.mappings.keys().map(String::as_str),
                        );
                        ok = false;
                    }
                }
            }
        }
        if let Some(f) = &v.file {
            ok &= template(l, &f.value.path);
        }
        if let Some(p) = &v.pipeline {
            match ctx.pipelines.get(&p.value) {
                None => {
                    unknown_name(
                        l,
                        &file,
                        p,
                        "pipeline",
                        Code::UnknownPipeline,
                        ctx.pipelines.keys().map(String::as_str),
                    );
                    ok = false;
                }
                Some(head) => {
                    ctx.sends_to.push((p.value.clone(), p.span));
                    if head.input_kind.is_some_and(|k| k != "pipeline") {
                        l.push(
                            Diagnostic::error(
                                Code::InvalidValue,
                                format!(
                                    "pipeline `{}` cannot receive from other pipelines: its input is `{}`",
                                    p.value,
                                    head.input_kind.unwrap_or("?")
                                ),
                            )
                            .at(&file, p.span)
                            .with_related(&head.file, head.span, "declared here")
                            .with_help("give it `input: { pipeline: {} }`, or publish to a topic it consumes"),
                        );
                        ok = false;
                    } else if let Some(target) = &head.input_schema {
                        expect_schema(
                            l,
                            &file,
                            ty,
                            target,
                            p.span,
                            &format!("pipeline `{}`", p.value),
                            Some((
                                &head.file,
                                head.span,
                                format!("pipeline `{}` declares `input.schema: {target}`", p.value),
                            )),
                        );
                    }
                }
            }
        }
        let Some(spec) = OutputSpec::of(&o.value) else {
            ok = false;
            continue;
        };
        debug_assert_eq!(spec.kind(), kind);
        defs.push(OutputDef {
            spec,
            def: o.value.clone(),
            schema,
            templates,
        });
    }
    (defs, ok)
}

/// Reports a mismatch between the schema the message has (`ty`) and the one `what` expects.
fn expect_schema(
    l: &mut Loader<'_>,
    file: &str,
    ty: &Ty,
    expected: &str,
    span: Span,
    what: &str,
    declared_at: Option<(&String, Span, String)>,
) {
    let d = match ty {
        Ty::Known { id, .. } if id == expected => return,
        Ty::Poison => return,
        Ty::Known { id, file: by_file, span: by_span, by } => Diagnostic::error(
            Code::SchemaMismatch,
            format!("{what} expects `{expected}`, but the message is `{id}` here"),
        )
        .at(file, span)
        .with_label(format!("expects `{expected}`"))
        .with_related(by_file, *by_span, format!("`{id}` comes from {by}"))
        .with_help(match SchemaId::parse(expected).ok().zip(SchemaId::parse(id).ok()) {
            Some((e, g)) if e.namespace == g.namespace && e.name == g.name => format!(
                "the versions differ: add a mapping from `{id}` to `{expected}`, or move this step to `@{}`",
                g.major
            ),
            _ => format!("insert a `map` step from `{id}` to `{expected}` before it"),
        }),
        Ty::Any => Diagnostic::error(
            Code::SchemaMismatch,
            format!("{what} expects `{expected}`, but the message has no declared schema here"),
        )
        .at(file, span)
        .with_label(format!("expects `{expected}`"))
        .with_help(format!("declare `schema: {expected}` on the input, or add `validate: {expected}` before this step")),
    };
    let d = match declared_at {
        Some((f, s, msg)) => d.with_related(f, s, msg),
        None => d,
    };
    l.push(d);
}

/// Checks a schema reference: a well-formed id that the registry knows.
pub(crate) fn schema_ref(
    l: &mut Loader<'_>,
    file: &str,
    r: &Spanned<String>,
    schemas: &SchemaRegistry,
) -> bool {
    if let Err(msg) = SchemaId::parse(&r.value) {
        l.push(Diagnostic::error(Code::SchemaId, msg).at(file, r.span));
        return false;
    }
    if schemas.contains(&r.value) {
        return true;
    }
    l.push(
        Diagnostic::error(
            Code::UnknownSchema,
            format!("no schema has the id `{}`", r.value),
        )
        .at(file, r.span)
        .with_help_opt(schemas.nearest_help(&r.value).or_else(|| {
            Some(format!(
                "add `schemas/{}.json`",
                r.value.replacen(
                    '.',
                    "/",
                    r.value.matches('.').count().saturating_sub(1).max(1)
                )
            ))
        })),
    );
    false
}

fn optional_schema(
    l: &mut Loader<'_>,
    ctx: &mut Ctx<'_>,
    r: &Option<Spanned<String>>,
) -> Option<String> {
    let r = r.as_ref()?;
    let file = ctx.file.clone();
    if schema_ref(l, &file, r, ctx.schemas) {
        ctx.depends_on
            .extend(ctx.schemas.get(&r.value).map(|e| e.file.clone()));
        Some(r.value.clone())
    } else {
        None
    }
}

fn unknown_name<'a>(
    l: &mut Loader<'_>,
    file: &str,
    name: &Spanned<String>,
    what: &str,
    code: Code,
    known: impl Iterator<Item = &'a str> + Clone,
) {
    let help = match crate::suggest::did_you_mean(&name.value, known.clone()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None => {
            let near = crate::suggest::nearest(&name.value, known, 3);
            (!near.is_empty())
                .then(|| {
                    format!(
                        "known: {}",
                        near.iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .or_else(|| {
                    Some(match code {
                        Code::UnknownPlugin => {
                            "plugins are Rhai files `plugins/<module>.rhai`; this project has none yet"
                                .to_string()
                        }
                        _ => format!("the project has no {what}s yet"),
                    })
                })
        }
    };
    l.push(
        Diagnostic::error(code, format!("no {what} is named `{}`", name.value))
            .at(file, name.span)
            .with_help_opt(help),
    );
}

pub(crate) fn test_input(l: &mut Loader<'_>, file: &str, input: &Spanned<OrShort<TestInput>>) {
    match &input.value {
        OrShort::Short(path) => {
            l.require_file(file, &Spanned::new(path.clone(), input.span));
        }
        OrShort::Full(t) => match (&t.body, &t.file) {
            (Some(_), None) => {}
            (None, Some(f)) => {
                l.require_file(file, f);
            }
            _ => l.push(
                Diagnostic::error(
                    Code::ConnectorCount,
                    "a test input needs exactly one of `body` or `file`",
                )
                .at(file, input.span),
            ),
        },
    }
}

pub(crate) fn expected_body(l: &mut Loader<'_>, file: &str, b: &ExpectedBody, span: Span) {
    match (&b.body, &b.file) {
        (Some(_), None) => {}
        (None, Some(f)) => {
            l.require_file(file, f);
        }
        _ => l.push(
            Diagnostic::error(
                Code::ConnectorCount,
                "an expected body needs exactly one of `body` or `file`",
            )
            .at(file, span),
        ),
    }
}

/// Root-level problems of a pipeline file that failed to deserialize: every unknown key (with
/// a suggestion) and every missing required key. Section errors come from the lenient parse.
pub(crate) fn root_errors(l: &mut Loader<'_>, file: &str, node: &Node) {
    let Some(entries) = node.as_map() else { return };
    for (k, _) in entries {
        let key = k.scalar_text().unwrap_or_default();
        if !PIPELINE_KEYS.contains(&key.as_str()) {
            l.push(
                Diagnostic::error(Code::UnknownKey, format!("unknown key `{key}`"))
                    .at(file, k.span)
                    .with_help(
                        match crate::suggest::did_you_mean(&key, PIPELINE_KEYS.iter().copied()) {
                            Some(b) => format!("did you mean `{b}`?"),
                            None => format!("expected one of: {}", PIPELINE_KEYS.join(", ")),
                        },
                    ),
            );
        }
    }
    for required in ["pipeline", "input", "output"] {
        if node.get(required).is_none() {
            l.push(
                Diagnostic::error(Code::MissingKey, format!("missing key `{required}`"))
                    .at(file, node.span),
            );
        }
    }
}

/// The node without its unknown top-level keys, so the known sections can still be read.
pub(crate) fn known_root(node: &Node) -> Node {
    let mut n = node.clone();
    if let crate::yaml::NodeKind::Map(entries) = &mut n.kind {
        entries.retain(|(k, _)| k.as_str().is_some_and(|k| PIPELINE_KEYS.contains(&k)));
    }
    n
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

fn report_cycles(l: &mut Loader<'_>, graph: &BTreeMap<String, Vec<(String, String, Span)>>) {
    // Iterative DFS with colours; each cycle is reported once, at the edge that closes it.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on stack, 2 = done
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in graph.keys() {
        if state.contains_key(start.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        state.insert(start, 1);
        while let Some(&mut (node, ref mut idx)) = stack.last_mut() {
            let edges = graph.get(node).map(Vec::as_slice).unwrap_or_default();
            if *idx < edges.len() {
                let (target, file, span) = &edges[*idx];
                *idx += 1;
                match state.get(target.as_str()) {
                    Some(1) => {
                        let pos = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[pos..].iter().map(|(n, _)| n.to_string()).collect();
                        let mut key = cycle.clone();
                        key.sort();
                        if reported.insert(key) {
                            cycle.push(target.clone());
                            l.push(
                                Diagnostic::error(
                                    Code::PipelineCycle,
                                    format!("pipelines send to each other in a loop: {}", cycle.join(" → ")),
                                )
                                .at(file, *span)
                                .with_label("this output closes the loop")
                                .with_help("a message would circle forever; break the loop or route through a topic with a filter"),
                            );
                        }
                    }
                    Some(_) => {}
                    None if graph.contains_key(target) => {
                        state.insert(target, 1);
                        stack.push((target, 0));
                    }
                    None => {}
                }
            } else {
                state.insert(node, 2);
                stack.pop();
            }
        }
    }
}

type TopicEnd = (String, String, Option<String>, String, Span);

fn report_topic_schemas(l: &mut Loader<'_>, producers: &[TopicEnd], consumers: &[TopicEnd]) {
    for (topic, consumer, want, cfile, cspan) in consumers {
        let Some(want) = want else { continue };
        for (ptopic, producer, have, pfile, pspan) in producers {
            if ptopic != topic {
                continue;
            }
            if let Some(have) = have
                && have != want
            {
                l.push(
                    Diagnostic::error(
                        Code::TopicSchema,
                        format!("pipeline `{producer}` publishes `{have}` to topic `{topic}`, but `{consumer}` consumes it as `{want}`"),
                    )
                    .at(pfile, *pspan)
                    .with_label(format!("publishes `{have}`"))
                    .with_related(cfile, *cspan, format!("`{consumer}` expects `{want}`"))
                    .with_help("publish the schema the consumers expect, or version the topic (`orders.v2`)"),
                );
            }
        }
    }
}
