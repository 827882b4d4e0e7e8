//! The typed plan the runtime runs: which connector a pipeline's input and each output is,
//! with its settings, as enums. The file model (`model::pipeline`) has one optional field per
//! connector so that YAML reads naturally; the loader checks exactly one is set and builds
//! these, and `validate`, `run`, `map` and `test` all dispatch on them with exhaustive
//! matches. Adding a connector adds a variant here, and the compiler lists every place that
//! must handle it.

use crate::diag::Span;
use crate::model::OrShort;
use crate::model::pipeline::{
    AmqpInput, AmqpOutput, FileInput, FileOutput, HttpInput, HttpOutput, Input, Output,
    ScheduleInput,
};

/// A pipeline's input connector.
#[derive(Clone, Debug)]
pub enum InputSpec {
    /// Webhooks and API calls on a path of the runtime's HTTP server.
    Http(HttpInput),
    /// A RabbitMQ queue.
    Amqp(AmqpInput),
    /// A topic, consumed by consumer group `group` (the pipeline's name by default).
    Topic { name: String, group: String },
    /// `pipeline: {}`: what other pipelines send with a `pipeline:` output, over the internal
    /// topic [`pipeline_topic`].
    Pipeline { topic: String, group: String },
    /// Files dropped in a directory.
    File(FileInput),
    /// A message on an interval or a cron schedule.
    Schedule(ScheduleInput),
    /// JSON lines on standard input (`railyard map`/`test` only).
    Stdin,
}

/// The internal topic behind `output: { pipeline: name }` and `input: { pipeline: {} }`.
pub fn pipeline_topic(name: &str) -> String {
    format!("pipeline:{name}")
}

impl InputSpec {
    /// The connector fields set in `input`, with their spans (exactly one is valid; the
    /// loader reports none or several).
    pub fn connectors(input: &Input) -> Vec<(&'static str, Span)> {
        // Destructured without `..`: a connector field added to `Input` does not compile
        // until it is listed here and in `of`.
        let Input {
            http,
            amqp,
            topic,
            file,
            schedule,
            stdin,
            pipeline,
            schema: _,
            dedupe_key: _,
            correlation_header: _,
        } = input;
        let mut kinds = Vec::with_capacity(1);
        let spans = [
            ("http", http.as_ref().map(|x| x.span)),
            ("amqp", amqp.as_ref().map(|x| x.span)),
            ("topic", topic.as_ref().map(|x| x.span)),
            ("file", file.as_ref().map(|x| x.span)),
            ("schedule", schedule.as_ref().map(|x| x.span)),
            ("stdin", stdin.as_ref().map(|x| x.span)),
            ("pipeline", pipeline.as_ref().map(|x| x.span)),
        ];
        for (kind, span) in spans {
            if let Some(span) = span {
                kinds.push((kind, span));
            }
        }
        kinds
    }

    /// The connector of `input` when exactly one is set (the loader reports the rest).
    /// `pipeline` is the pipeline's name: the default consumer group.
    pub fn of(input: &Input, pipeline: &str) -> Option<InputSpec> {
        let Input {
            http,
            amqp,
            topic,
            file,
            schedule,
            stdin,
            pipeline: from_pipelines,
            schema: _,
            dedupe_key: _,
            correlation_header: _,
        } = input;
        let mut specs = Vec::with_capacity(1);
        if let Some(h) = http {
            specs.push(InputSpec::Http(h.value.clone()));
        }
        if let Some(a) = amqp {
            specs.push(InputSpec::Amqp(a.value.clone()));
        }
        if let Some(t) = topic {
            specs.push(match &t.value {
                OrShort::Short(name) => InputSpec::Topic {
                    name: name.clone(),
                    group: pipeline.to_string(),
                },
                OrShort::Full(f) => InputSpec::Topic {
                    name: f.name.value.clone(),
                    group: f.group.clone().unwrap_or_else(|| pipeline.to_string()),
                },
            });
        }
        if from_pipelines.is_some() {
            specs.push(InputSpec::Pipeline {
                topic: pipeline_topic(pipeline),
                group: pipeline.to_string(),
            });
        }
        if let Some(f) = file {
            specs.push(InputSpec::File(f.value.clone()));
        }
        if let Some(s) = schedule {
            specs.push(InputSpec::Schedule(s.value.clone()));
        }
        if stdin.is_some() {
            specs.push(InputSpec::Stdin);
        }
        match specs.len() {
            1 => specs.pop(),
            _ => None,
        }
    }

    /// The connector's name, as written in the YAML (for messages and metrics labels).
    pub fn kind(&self) -> &'static str {
        match self {
            InputSpec::Http(_) => "http",
            InputSpec::Amqp(_) => "amqp",
            InputSpec::Topic { .. } => "topic",
            InputSpec::Pipeline { .. } => "pipeline",
            InputSpec::File(_) => "file",
            InputSpec::Schedule(_) => "schedule",
            InputSpec::Stdin => "stdin",
        }
    }

    /// The (topic, consumer group) a topic or `pipeline:` input consumes.
    pub fn consumed_topic(&self) -> Option<(&str, &str)> {
        match self {
            InputSpec::Topic { name, group } => Some((name, group)),
            InputSpec::Pipeline { topic, group } => Some((topic, group)),
            InputSpec::Http(_)
            | InputSpec::Amqp(_)
            | InputSpec::File(_)
            | InputSpec::Schedule(_)
            | InputSpec::Stdin => None,
        }
    }
}

/// An output connector.
#[derive(Clone, Debug)]
pub enum OutputSpec {
    /// Publish to a topic; `name` may hold `{{ }}` templates.
    Topic { name: String },
    /// Hand to another pipeline, over its internal topic.
    Pipeline { pipeline: String, topic: String },
    /// A JSON line on standard output: the body, or the whole envelope `with_meta`.
    Stdout { with_meta: bool },
    /// Append a JSON line to a file (fsynced).
    File(FileOutput),
    /// Call an HTTP endpoint.
    Http(HttpOutput),
    /// Publish to a RabbitMQ exchange.
    Amqp(AmqpOutput),
}

impl OutputSpec {
    /// The connector fields set in `output`, with their spans (exactly one is valid).
    pub fn connectors(output: &Output) -> Vec<(&'static str, Span)> {
        // Destructured without `..`: see `InputSpec::connectors`.
        let Output {
            topic,
            amqp,
            http,
            file,
            stdout,
            pipeline,
            schema: _,
        } = output;
        let spans = [
            ("topic", topic.as_ref().map(|x| x.span)),
            ("amqp", amqp.as_ref().map(|x| x.span)),
            ("http", http.as_ref().map(|x| x.span)),
            ("file", file.as_ref().map(|x| x.span)),
            ("stdout", stdout.as_ref().map(|x| x.span)),
            ("pipeline", pipeline.as_ref().map(|x| x.span)),
        ];
        spans
            .into_iter()
            .filter_map(|(kind, span)| span.map(|s| (kind, s)))
            .collect()
    }

    /// The connector of `output` when exactly one is set (the loader reports the rest).
    pub fn of(output: &Output) -> Option<OutputSpec> {
        let Output {
            topic,
            amqp,
            http,
            file,
            stdout,
            pipeline,
            schema: _,
        } = output;
        let mut specs = Vec::with_capacity(1);
        if let Some(t) = topic {
            specs.push(OutputSpec::Topic {
                name: match &t.value {
                    OrShort::Short(s) => s.clone(),
                    OrShort::Full(f) => f.name.value.clone(),
                },
            });
        }
        if let Some(p) = pipeline {
            specs.push(OutputSpec::Pipeline {
                pipeline: p.value.clone(),
                topic: pipeline_topic(&p.value),
            });
        }
        if let Some(s) = stdout {
            specs.push(OutputSpec::Stdout {
                with_meta: s.value.with_meta == Some(true),
            });
        }
        if let Some(f) = file {
            specs.push(OutputSpec::File(f.value.clone()));
        }
        if let Some(h) = http {
            specs.push(OutputSpec::Http(h.value.clone()));
        }
        if let Some(a) = amqp {
            specs.push(OutputSpec::Amqp(a.value.clone()));
        }
        match specs.len() {
            1 => specs.pop(),
            _ => None,
        }
    }

    /// The mapping the output applies to the body before it sends it, if any.
    pub fn body_mapping(&self) -> Option<&str> {
        match self {
            OutputSpec::Http(h) => h.mapping.as_ref().map(|m| m.value.as_str()),
            OutputSpec::Topic { .. }
            | OutputSpec::Pipeline { .. }
            | OutputSpec::Stdout { .. }
            | OutputSpec::File(_)
            | OutputSpec::Amqp(_) => None,
        }
    }

    /// The connector's name, as written in the YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputSpec::Topic { .. } => "topic",
            OutputSpec::Pipeline { .. } => "pipeline",
            OutputSpec::Stdout { .. } => "stdout",
            OutputSpec::File(_) => "file",
            OutputSpec::Http(_) => "http",
            OutputSpec::Amqp(_) => "amqp",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::project::{self, LoadOptions, MemFiles};

    /// The plan of the one pipeline `p` whose input is `input` (YAML flow) and whose outputs
    /// are `outputs`.
    fn plan(input: &str, outputs: &str) -> (InputSpec, Vec<OutputSpec>) {
        let mut mem = MemFiles::new();
        let text = format!("pipeline: p\ninput: {input}\noutput: {outputs}\n");
        mem.insert("pipelines/p.yaml", text.as_str());
        mem.insert(
            "pipelines/q.yaml",
            "pipeline: q\ninput: { pipeline: {} }\noutput: { stdout: {} }\n",
        );
        let loaded = project::load(&mem, &LoadOptions::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let p = &loaded.project.pipelines["p"];
        (
            p.input.clone(),
            p.outputs.iter().map(|o| o.spec.clone()).collect(),
        )
    }

    #[test]
    fn topic_inputs_default_their_group_to_the_pipeline() {
        let (spec, _) = plan("{ topic: orders }", "{ stdout: {} }");
        assert_eq!(spec.consumed_topic(), Some(("orders", "p")));
        assert_eq!(spec.kind(), "topic");
        let (spec, _) = plan("{ topic: { name: orders, group: g } }", "{ stdout: {} }");
        assert_eq!(spec.consumed_topic(), Some(("orders", "g")));
        let (spec, _) = plan("{ pipeline: {} }", "{ stdout: {} }");
        assert_eq!(spec.consumed_topic(), Some(("pipeline:p", "p")));
        let (spec, _) = plan("{ http: { path: /in } }", "{ stdout: {} }");
        assert_eq!(spec.consumed_topic(), None);
        assert_eq!(spec.kind(), "http");
    }

    #[test]
    fn every_output_becomes_its_spec() {
        let (_, outputs) = plan(
            "{ stdin: {} }",
            "[{ topic: \"t.{{ body.k }}\" }, { pipeline: q }, { stdout: { with_meta: true } }, { file: { path: out.jsonl } }]",
        );
        let kinds: Vec<_> = outputs.iter().map(OutputSpec::kind).collect();
        assert_eq!(kinds, ["topic", "pipeline", "stdout", "file"]);
        assert!(matches!(&outputs[0], OutputSpec::Topic { name } if name == "t.{{ body.k }}"));
        assert!(matches!(&outputs[1], OutputSpec::Pipeline { topic, .. } if topic == "pipeline:q"));
        assert!(matches!(outputs[2], OutputSpec::Stdout { with_meta: true }));
    }
}
