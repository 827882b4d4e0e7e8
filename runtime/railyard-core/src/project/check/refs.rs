//! References by name and schema id, with did-you-mean help, and the schema chain's
//! expectations (`expect_schema`).

use super::*;

/// Reports a mismatch between the schema the message has (`ty`) and the one `what` expects.
pub(super) fn expect_schema(
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

pub(super) fn optional_schema(
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

pub(super) fn unknown_name<'a>(
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
