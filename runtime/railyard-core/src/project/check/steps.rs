//! The steps of a pipeline: each step kind's settings, expressions and schema chain,
//! switch cases with their own steps and outputs.

use super::*;

pub(super) fn check_steps(
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
                            ctx.depends_on.insert(
                                crate::project::project_path(&f.value)
                                    .unwrap_or_else(|_| f.value.clone()),
                            );
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
                        ctx.depends_on.insert(
                            crate::project::project_path(&f.value)
                                .unwrap_or_else(|_| f.value.clone()),
                        );
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

pub(super) fn check_case(
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
