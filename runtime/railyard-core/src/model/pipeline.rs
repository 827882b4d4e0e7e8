//! The pipeline file format (`pipelines/*.yaml`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ByteSize, Expr, HumanDuration, Lenient, OneOrMany, OrShort, SchemaRef, Spanned};

/// A pipeline: where messages come from, what happens to them, where they go, what happens
/// when that fails, and the tests that prove it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Railyard pipeline")]
pub struct PipelineFile {
    /// Unique name of the pipeline within the project (letters, digits, `-`, `_`, `.`).
    pub pipeline: Spanned<String>,
    /// Version of this pipeline definition; every message records the version it ran on.
    #[serde(default)]
    pub version: Option<Spanned<u32>>,
    /// What the pipeline is for, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// Where messages come from.
    pub input: Lenient<Spanned<Input>>,
    /// What happens to each message, in order.
    #[serde(default)]
    pub steps: Vec<Lenient<Spanned<StepKind>>>,
    /// Where messages go: one output, or a list for fan-out (a message is done when all confirm).
    pub output: Outputs,
    /// What happens when a step or an output fails for a message.
    #[serde(default)]
    pub on_error: Option<Lenient<Spanned<ErrorPolicy>>>,
    /// Example-based tests run by `railyard test`.
    #[serde(default)]
    pub tests: Vec<Lenient<Spanned<TestCase>>>,
}

/// One output or a list of outputs (fan-out), each parsed on its own.
pub type Outputs = Lenient<Spanned<OneOrMany<Lenient<Spanned<Output>>>>>;

/// The input of a pipeline: exactly one connector, plus the schema of what it receives.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Receive webhooks and API calls over HTTP.
    #[serde(default)]
    pub http: Option<Spanned<HttpInput>>,
    /// Consume a RabbitMQ queue.
    #[serde(default)]
    pub amqp: Option<Spanned<AmqpInput>>,
    /// Consume a topic (an embedded durable queue, or a RabbitMQ exchange when a broker is configured).
    #[serde(default)]
    pub topic: Option<Spanned<OrShort<TopicInput>>>,
    /// Pick up files dropped in a directory (CSV or JSON lines), each processed once.
    #[serde(default)]
    pub file: Option<Spanned<FileInput>>,
    /// Emit a message on an interval or a cron schedule (polling APIs).
    #[serde(default)]
    pub schedule: Option<Spanned<ScheduleInput>>,
    /// Read JSON lines from standard input.
    #[serde(default)]
    pub stdin: Option<Spanned<StdinInput>>,
    /// Receive messages that other pipelines send with a `pipeline:` output.
    #[serde(default)]
    pub pipeline: Option<Spanned<PipelineInput>>,
    /// Schema id of the body this input receives; validated on arrival.
    #[serde(default)]
    pub schema: Option<SchemaRef>,
    /// JMESPath over `{headers, body}` whose value identifies a delivery for deduplication,
    /// e.g. `headers."x-shopify-event-id"`.
    #[serde(default)]
    pub dedupe_key: Option<Expr>,
    /// Header that carries the correlation id; a new id is created when it is absent.
    #[serde(default)]
    pub correlation_header: Option<String>,
}

/// Receive HTTP requests on a path of the runtime's server.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpInput {
    /// Route path, e.g. `/webhooks/shopify/orders`.
    pub path: Spanned<String>,
    /// Accepted methods (default `[POST]`).
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    /// Largest accepted body; larger requests get 413 (default `1MiB`).
    #[serde(default)]
    pub max_body: Option<Spanned<ByteSize>>,
    /// Accepted content types; others get 415 (default `[application/json]`).
    #[serde(default)]
    pub content_types: Vec<String>,
    /// Signature verification; a mismatch gets 401.
    #[serde(default)]
    pub verify: Option<Spanned<Verify>>,
    /// API-key authentication: the request must carry one of `keys` in `header`.
    #[serde(default)]
    pub api_key: Option<Spanned<ApiKey>>,
    /// Credential headers to keep in the message's metadata. By default `authorization`,
    /// `proxy-authorization`, `cookie`, the API-key header and the signature header are
    /// removed once checked, so they are never stored, dead-lettered or forwarded.
    #[serde(default)]
    pub keep_headers: Vec<String>,
}

/// Headers that carry credentials, removed from a webhook message's metadata once checked,
/// unless the input keeps them (`keep_headers`).
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

impl HttpInput {
    /// The headers (lower-case) this input removes from a message once checked:
    /// [`CREDENTIAL_HEADERS`], its API-key header and its signature header, minus
    /// `keep_headers`. The webhook route and `railyard test` both take them from here.
    pub fn stripped_headers(&self) -> Vec<String> {
        let keep: Vec<String> = self
            .keep_headers
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let api_key = self.api_key.as_ref().map(|k| {
            k.value
                .header
                .clone()
                .unwrap_or_else(|| "x-api-key".to_string())
        });
        let signature = self
            .verify
            .as_ref()
            .map(|v| v.value.hmac_sha256.value.header.value.clone());
        let mut out: Vec<String> = CREDENTIAL_HEADERS
            .iter()
            .map(|h| h.to_string())
            .chain(api_key)
            .chain(signature)
            .map(|h| h.to_ascii_lowercase())
            .filter(|h| !keep.contains(h))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// How a webhook proves it came from the platform.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// HMAC-SHA256 over the raw body (Shopify) or over URL + body (Square).
    pub hmac_sha256: Spanned<HmacVerify>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacVerify {
    /// Header that carries the signature, e.g. `X-Shopify-Hmac-Sha256`.
    pub header: Spanned<String>,
    /// Encoding of the signature in the header.
    #[serde(default)]
    pub encoding: Encoding,
    /// The shared secret, normally `${env:NAME}`.
    pub secret: Spanned<String>,
    /// What is signed.
    #[serde(default)]
    pub signed: Signed,
    /// The public URL the platform signs when `signed: url_and_body` (as configured at the platform).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Base64,
    Hex,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signed {
    /// The raw request body bytes (Shopify, most platforms).
    #[default]
    Body,
    /// The notification URL followed by the raw body (Square).
    UrlAndBody,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Header that carries the key (default `X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// Accepted keys, normally `${env:NAME}` references.
    pub keys: Vec<Spanned<String>>,
}

/// Consume a RabbitMQ queue owned by another system or declared here.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpInput {
    /// Broker URL; defaults to `RAILYARD_AMQP_URL`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Queue to consume.
    pub queue: Spanned<String>,
    /// Declare the queue (durable) and its bindings if absent (default true).
    #[serde(default)]
    pub declare: Option<bool>,
    /// Unacknowledged deliveries in flight (default 64).
    #[serde(default)]
    pub prefetch: Option<u16>,
    /// Bindings to create when declaring.
    #[serde(default)]
    pub bindings: Vec<AmqpBinding>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpBinding {
    pub exchange: Spanned<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// Consume a topic. Short form: `topic: orders.accepted`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicInput {
    /// Topic name.
    pub name: Spanned<String>,
    /// Consumer group: pipelines in one group share the messages (default: the pipeline name).
    #[serde(default)]
    pub group: Option<String>,
}

/// Pick up files dropped in a directory.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Directory to watch.
    pub dir: Spanned<String>,
    /// Glob of file names to pick up (default `*`).
    #[serde(default)]
    pub pattern: Option<String>,
    /// How to read each file into messages.
    pub format: FileFormat,
    /// CSV settings.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// Where processed files go (default `<dir>/done`).
    #[serde(default)]
    pub done_dir: Option<String>,
    /// Where rejected files go with a `.reason` file (default `<dir>/failed`).
    #[serde(default)]
    pub failed_dir: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// One message per CSV row, keyed by the header row.
    Csv,
    /// One message per line of JSON.
    Jsonl,
    /// The whole file is one JSON message.
    Json,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Field separator (default `,`; EU exports often use `;`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Whether the first row names the columns (default true).
    #[serde(default)]
    pub header: Option<bool>,
}

/// Emit a message on a schedule.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Fixed interval, e.g. `5m`.
    #[serde(default)]
    pub every: Option<Spanned<HumanDuration>>,
    /// Cron expression with seconds, e.g. `0 */15 * * * *`.
    #[serde(default)]
    pub cron: Option<Spanned<String>>,
    /// Body of each emitted message (default `{}`).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdinInput {}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {}

/// One processing step. Each step is a mapping with exactly one key naming its kind.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Validate the body against a schema: `validate: canonical.order@1`. The message is
    /// from then on known to conform to it.
    Validate(Spanned<OrShort<ValidateStep>>),
    /// Apply a named mapping: `map: shopify-order-to-canonical`.
    Map(Spanned<OrShort<MapStep>>),
    /// Keep messages for which a JMESPath condition over `{body, meta}` is true; drop the rest.
    Filter(Spanned<OrShort<FilterStep>>),
    /// Route messages by conditions to nested steps and outputs.
    Switch(Spanned<SwitchStep>),
    /// Turn an array in the message into one message per element.
    Split(Spanned<SplitStep>),
    /// Collect messages into one array message by count and time window.
    Batch(Spanned<BatchStep>),
    /// Drop messages whose key was seen within the TTL.
    Dedupe(Spanned<DedupeStep>),
    /// Set, copy or remove metadata entries.
    Metadata(Spanned<MetadataStep>),
    /// Run an inline Rhai script on the message.
    Script(Spanned<ScriptStep>),
    /// Call a function of a Rhai module from `plugins/`.
    Plugin(Spanned<PluginStep>),
    /// Reserve inventory for the message's lines.
    Reserve(Spanned<ReserveStep>),
}

impl StepKind {
    pub fn kind_name(&self) -> &'static str {
        match self {
            StepKind::Validate(_) => "validate",
            StepKind::Map(_) => "map",
            StepKind::Filter(_) => "filter",
            StepKind::Switch(_) => "switch",
            StepKind::Split(_) => "split",
            StepKind::Batch(_) => "batch",
            StepKind::Dedupe(_) => "dedupe",
            StepKind::Metadata(_) => "metadata",
            StepKind::Script(_) => "script",
            StepKind::Plugin(_) => "plugin",
            StepKind::Reserve(_) => "reserve",
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateStep {
    /// Schema id the body must conform to.
    pub schema: SchemaRef,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapStep {
    /// Name of a mapping in `mappings/`.
    pub mapping: Spanned<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterStep {
    /// JMESPath over `{body, meta}`; the message is kept when the result is truthy.
    pub condition: Expr,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchStep {
    /// `first`: the first matching case takes the message; `all`: every matching case gets a copy.
    #[serde(default)]
    pub mode: SwitchMode,
    /// The cases, tried in order.
    pub cases: Vec<Spanned<SwitchCase>>,
    /// What happens to a message no case matched (default: it continues after the switch).
    #[serde(default)]
    pub default: Option<Spanned<SwitchCase>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchMode {
    #[default]
    First,
    All,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchCase {
    /// Route name, reported by `railyard map` and asserted by tests (`expect.route`).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// JMESPath over `{body, meta}`; required on cases, absent on `default`.
    #[serde(default)]
    pub when: Option<Expr>,
    /// Steps applied to messages of this case.
    #[serde(default)]
    pub steps: Vec<Lenient<Spanned<StepKind>>>,
    /// Where messages of this case leave the pipeline; without it they continue after the switch.
    #[serde(default)]
    pub output: Option<Outputs>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitStep {
    /// JMESPath over `{body, meta}` selecting the array to split, e.g. `body.lines`.
    pub path: Expr,
    /// Schema id of each element (the new message body).
    #[serde(default)]
    pub schema: Option<SchemaRef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchStep {
    /// Emit when this many messages are collected.
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
    /// Emit when the oldest collected message is this old.
    #[serde(default)]
    pub window: Option<Spanned<HumanDuration>>,
    /// Schema id of the batch message (an array of the collected bodies).
    #[serde(default)]
    pub schema: Option<SchemaRef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DedupeStep {
    /// JMESPath over `{body, meta}` giving the deduplication key, e.g. `meta.dedupe_key`.
    pub key: Expr,
    /// How long a key is remembered (e.g. `72h`).
    pub ttl: Spanned<HumanDuration>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataStep {
    /// Entries to set: name → JMESPath over `{body, meta}`.
    #[serde(default)]
    pub set: BTreeMap<String, Expr>,
    /// Entries to copy: target name → source name.
    #[serde(default)]
    pub copy: BTreeMap<String, Spanned<String>>,
    /// Entries to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// Inline Rhai; `body` and `meta` are in scope and the script's value becomes the new body.
    #[serde(default)]
    pub rhai: Option<Spanned<String>>,
    /// A Rhai file, relative to the project root.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Schema id of the body the script produces (default: unchanged).
    #[serde(default)]
    pub produces: Option<SchemaRef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginStep {
    /// Module name: the file `plugins/<name>.rhai`.
    pub module: Spanned<String>,
    /// Function to call with the message (default `process`).
    #[serde(default)]
    pub function: Option<Spanned<String>>,
    /// Settings passed to the function as its second argument.
    #[serde(default)]
    pub with: Option<serde_json::Value>,
    /// Schema id of the body the plugin produces (default: unchanged).
    #[serde(default)]
    pub produces: Option<SchemaRef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveStep {
    /// JMESPath over `{body, meta}` giving the SKUs, e.g. `body.lines[].sku`.
    pub sku: Expr,
    /// JMESPath over `{body, meta}` giving the quantities, aligned with `sku`.
    pub qty: Expr,
    /// JMESPath over `{body, meta}` giving the stock location (default: the single pool).
    #[serde(default)]
    pub location: Option<Expr>,
    /// What to do when stock is short.
    #[serde(default)]
    pub on_short: OnShort,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnShort {
    /// Fail the message (it follows the error policy).
    #[default]
    Reject,
    /// Reserve what is available and mark the rest back-ordered.
    Backorder,
}

/// One output. Exactly one connector key, plus options.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Publish to a topic.
    #[serde(default)]
    pub topic: Option<Spanned<OrShort<TopicOutput>>>,
    /// Publish to a RabbitMQ exchange (persistent, publisher confirms awaited).
    #[serde(default)]
    pub amqp: Option<Spanned<AmqpOutput>>,
    /// Call an HTTP endpoint (ERP, marketplace API).
    #[serde(default)]
    pub http: Option<Spanned<HttpOutput>>,
    /// Append to a file.
    #[serde(default)]
    pub file: Option<Spanned<FileOutput>>,
    /// Print JSON lines to standard output.
    #[serde(default)]
    pub stdout: Option<Spanned<StdoutOutput>>,
    /// Hand the message to another pipeline of this project (its input must be `pipeline: {}`).
    #[serde(default)]
    pub pipeline: Option<Spanned<String>>,
    /// Schema id the message must conform to here; validated before sending.
    #[serde(default)]
    pub schema: Option<SchemaRef>,
}

/// Short form: `topic: orders.accepted`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicOutput {
    /// Topic name; may contain `{{ jmespath }}` templates over `{body, meta}`.
    pub name: Spanned<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpOutput {
    /// Broker URL; defaults to `RAILYARD_AMQP_URL`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Exchange to publish to (`""` is the default exchange).
    pub exchange: Spanned<String>,
    /// Routing key; may contain `{{ jmespath }}` templates over `{body, meta}`.
    #[serde(default)]
    pub routing_key: Option<Spanned<String>>,
    /// Mark messages persistent (default true).
    #[serde(default)]
    pub persistent: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOutput {
    /// HTTP method (default `POST`).
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// URL; may contain `{{ jmespath }}` templates and `${env:NAME}`.
    pub url: Spanned<String>,
    /// Request headers; values may contain templates.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Mapping that produces the request body (default: the message body).
    #[serde(default)]
    pub mapping: Option<Spanned<String>>,
    /// Status codes that mean success (default 200–299).
    #[serde(default)]
    pub success: Vec<u16>,
    /// Status codes worth retrying (default 408, 425, 429, 500–599).
    #[serde(default)]
    pub retry_on: Vec<u16>,
    /// Request timeout (default `30s`).
    #[serde(default)]
    pub timeout: Option<Spanned<HumanDuration>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    /// File path, relative to the output root (`railyard run --output-root`, the data
    /// directory by default) and inside it; may contain `{{ jmespath }}` templates.
    pub path: Spanned<String>,
    /// `jsonl` appends one line per message; `json` writes one file per message.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Write each message with its context around the body, for audit trails:
    /// `{id, correlation_id, received_at, source, pipeline, pipeline_version,
    /// pipeline_revision, body}` (default false: the body alone).
    #[serde(default)]
    pub envelope: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutput {
    /// Print the metadata alongside the body (default false).
    #[serde(default)]
    pub with_meta: Option<bool>,
}

/// What happens when a message fails.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorPolicy {
    /// Retries for transient failures (timeouts, 5xx, 429).
    #[serde(default)]
    pub retry: Option<Spanned<RetryPolicy>>,
    /// Where a message goes when it fails for good: `store` (the dead-letter store) or an output.
    #[serde(default)]
    pub dead_letter: Option<Spanned<OrShort<Output>>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub attempts: Spanned<u32>,
    /// Backoff shape.
    #[serde(default)]
    pub backoff: Backoff,
    /// First delay (default `500ms`).
    #[serde(default)]
    pub initial: Option<Spanned<HumanDuration>>,
    /// Longest delay (default `1m`).
    #[serde(default)]
    pub max: Option<Spanned<HumanDuration>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    #[default]
    Exponential,
    Fixed,
}

/// An example-based test of the whole pipeline.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the test shows, in a sentence.
    pub name: Spanned<String>,
    /// The input message: a fixture path relative to the project root, or inline.
    pub input: Spanned<OrShort<TestInput>>,
    /// What must come out.
    pub expect: Spanned<Expectation>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// Inline body.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Body from a fixture file (JSON), relative to the project root.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Inbound headers (HTTP inputs) or properties (AMQP).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Expected outcome. Give one of `output`, `outputs`, `dropped` or `error`; `route` and `assert`
/// combine with the others.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The single output body: a fixture path, or inline JSON compared exactly.
    #[serde(default)]
    pub output: Option<Spanned<ExpectedBody>>,
    /// Every output body, in order.
    #[serde(default)]
    pub outputs: Option<Vec<Spanned<ExpectedBody>>>,
    /// The output must contain at least these fields with these values.
    #[serde(default)]
    pub subset: Option<serde_json::Value>,
    /// JMESPath assertions over the output `{body, meta}`; each must be `true`.
    #[serde(default)]
    pub assert: Vec<Expr>,
    /// Name of the switch case the message must take.
    #[serde(default)]
    pub route: Option<Spanned<String>>,
    /// The message must be dropped by a filter or dedupe.
    #[serde(default)]
    pub dropped: Option<bool>,
    /// The message must fail with this error.
    #[serde(default)]
    pub error: Option<Spanned<ExpectedError>>,
}

/// Expected body: `{file: path}` or `{body: <json>}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedBody {
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    /// Error code, e.g. `schema-violation`.
    pub code: String,
    /// Index or name of the failing step.
    #[serde(default)]
    pub step: Option<String>,
    /// Instance path of a schema violation, e.g. `/lines/0/quantity`.
    #[serde(default)]
    pub path: Option<String>,
}
