//! A pipeline's outputs: one connector each, its settings and templates, the schema it
//! must conform to, and the pipeline or topic it sends to.

use super::*;

pub(super) fn check_outputs(
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
            let url = &h.value.url;
            if let Some(open) = url.value.find("{{")
                && !crate::expr::past_url_authority(&url.value[..open])
            {
                let at = yaml::value_offset_to_source(
                    &text,
                    url.span.start,
                    &url.value,
                    url.value[..open].chars().count(),
                );
                l.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        "a template in the scheme, host or port of an HTTP output: message content would choose where the request (and its credentials) goes",
                    )
                    .at(&file, Span::new(at, at + 2))
                    .with_help("put the host in the configuration (`${env:ERP_URL}/orders/{{ body.id }}`); templates may fill the path and query, where their values are percent-encoded"),
                );
                ok = false;
            }
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
            // Values cannot add directories (the sink refuses `/`, `..`); the fixed text must
            // not leave the output root either.
            let shape = crate::expr::template_skeleton(&f.value.path.value, "x");
            if crate::project::project_path(&shape).is_err() {
                let b = shape.as_bytes();
                let absolute = shape.starts_with(['/', '\\'])
                    || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':');
                let what = if absolute {
                    "is absolute"
                } else if shape.contains('\0') {
                    "contains a NUL byte"
                } else {
                    "climbs above the output root with `..`"
                };
                l.push(
                    Diagnostic::error(
                        Code::OutsideOutputRoot,
                        format!("the file output's path {what}: file outputs write only under the output root"),
                    )
                    .at(&file, f.value.path.span)
                    .with_help("write a path relative to the output root (`exports/orders.jsonl`); the operator chooses the root with `railyard run --output-root DIR` (default: the data directory)"),
                );
                ok = false;
            }
            if f.value.format == Some(crate::model::pipeline::FileFormat::Csv) {
                l.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        "a file output writes `jsonl` (a line per message) or `json` (a file per message), not `csv`",
                    )
                    .at(&file, f.span)
                    .with_help("read CSV with a file input; write `format: jsonl` or `format: json`"),
                );
                ok = false;
            }
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
