//! Checks across pipelines and files: send loops, topic producers and consumers that disagree
//! on a schema, test inputs and expectations, unknown root keys.

use super::*;

pub(super) fn report_cycles(
    l: &mut Loader<'_>,
    graph: &BTreeMap<String, Vec<(String, String, Span)>>,
) {
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

pub(super) type TopicEnd = (String, String, Option<String>, String, Span);

pub(super) fn report_topic_schemas(
    l: &mut Loader<'_>,
    producers: &[TopicEnd],
    consumers: &[TopicEnd],
) {
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
