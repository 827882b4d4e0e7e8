//! Expression engines: JMESPath and Rhai, compiled once at load time.
//!
//! Both report errors as a message plus a character offset into the expression's text, which
//! the loader turns into a file position with [`crate::yaml::value_offset_to_source`]. The
//! engines stay behind these functions so the JMESPath implementation can be swapped when the
//! engine benchmark (`benches/engine.rs`) says so.

use std::sync::Arc;

use serde_json::Value;

/// A compile error inside an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    /// Character offset into the expression's text where the problem is.
    pub char_offset: usize,
}

/// The JMESPath runtime: the 26 standard functions with standard (numeric-only) ordering,
/// plus Railyard's retail functions ([`crate::functions`]). One per process: expressions
/// borrow it for `'static`.
static RUNTIME: std::sync::LazyLock<jpx_core::Runtime> = std::sync::LazyLock::new(|| {
    let mut runtime = jpx_core::Runtime::strict();
    crate::functions::register_jmespath(&mut runtime);
    runtime
});

/// A compiled JMESPath expression (jpx-core: evaluates on `serde_json::Value` directly, with no
/// conversion into a separate value type).
#[derive(Clone)]
pub struct JmesPath {
    expr: Arc<jpx_core::Expression<'static>>,
}

impl std::fmt::Debug for JmesPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JmesPath({})", self.expr.as_str())
    }
}

/// How deep an expression may nest: brackets in its text (`(`, `[`, `{`) and levels of its
/// parsed tree, for JMESPath; expression and block levels for Rhai
/// ([`rhai_limits::MAX_EXPR_DEPTH`]). Far above any hand-written expression, and far below what
/// overflows a thread's stack in a parser, an evaluator or the drop of a tree, so a poison
/// expression is a load-time diagnostic, never a crash of `validate`, `test` or `run`.
pub const MAX_EXPR_NESTING: usize = 64;

fn too_deep(char_offset: usize) -> ExprError {
    ExprError {
        message: format!(
            "expression is nested more than {MAX_EXPR_NESTING} levels deep (the limit is \
             {MAX_EXPR_NESTING}); split it into several steps or fields"
        ),
        char_offset,
    }
}

/// Bounds how deep the parser will recurse, from the text, before the parser sees it. The
/// parser recurses once per bracket (`(`, `[`, `{`) and once per projection (`[*]`, `.*`,
/// `[]`, `[?..]`) in a run of them: `a[*].b[*].c` parses `b[*].c` inside the first projection.
/// A run ends where a projection does: at `|`, `||`, `&&`, a comparison, `,` or `:`. The depth
/// counted at any point is the open brackets plus the projections of the current run at each;
/// quoted identifiers, raw strings and JSON literals are skipped, escapes included.
fn check_text_nesting(source: &str) -> Result<(), ExprError> {
    let chars: Vec<char> = source.chars().collect();
    // One entry per open bracket (and the top level): the projections of its current run.
    let mut levels: Vec<usize> = vec![0];
    let depth = |levels: &[usize]| levels.len() + levels.iter().sum::<usize>();
    let next_non_space = |from: usize| {
        chars
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, c)| !c.is_whitespace())
            .map(|(j, c)| (j, *c))
    };
    fn project(levels: &mut [usize]) {
        if let Some(run) = levels.last_mut() {
            *run += 1;
        }
    }
    fn stop(levels: &mut [usize]) {
        if let Some(run) = levels.last_mut() {
            *run = 0;
        }
    }
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '[' => match next_non_space(i + 1) {
                // `[]`: a flatten projection.
                Some((j, ']')) => {
                    project(&mut levels);
                    i = j;
                }
                // `[*]`: a wildcard projection.
                Some((j, '*')) if matches!(next_non_space(j + 1), Some((_, ']'))) => {
                    project(&mut levels);
                    i = next_non_space(j + 1).map_or(j, |(k, _)| k);
                }
                // `[?`: a filter projection whose condition is inside the brackets.
                Some((j, '?')) => {
                    project(&mut levels);
                    levels.push(0);
                    i = j;
                }
                _ => levels.push(0),
            },
            '(' | '{' => levels.push(0),
            ')' | ']' | '}' if levels.len() > 1 => {
                levels.pop();
            }
            // `.*` or a leading `*`: a wildcard projection over an object's values.
            '*' => project(&mut levels),
            // Where a projection stops.
            '|' | ',' | ':' | '<' | '>' | '=' => {
                stop(&mut levels);
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                stop(&mut levels);
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                stop(&mut levels);
                i += 1;
            }
            _ => {}
        }
        if depth(&levels) > MAX_EXPR_NESTING {
            return Err(too_deep(i.min(chars.len().saturating_sub(1))));
        }
        i += 1;
    }
    Ok(())
}

impl JmesPath {
    pub fn compile(source: &str) -> Result<JmesPath, ExprError> {
        if source.trim().is_empty() {
            return Err(ExprError {
                message: "empty JMESPath expression".to_string(),
                char_offset: 0,
            });
        }
        check_text_nesting(source)?;
        match RUNTIME.compile(source) {
            Ok(expr) => {
                check_functions(expr.as_ast())?;
                Ok(JmesPath {
                    expr: Arc::new(expr),
                })
            }
            Err(e) => {
                let message = match &e.reason {
                    jpx_core::ErrorReason::Parse(m) => m.clone(),
                    other => other.to_string(),
                };
                // At the end of input, point at the last character rather than past it
                // (past it is the next line of the YAML file).
                let trimmed = source.trim_end().chars().count();
                let char_offset = e.offset.min(trimmed.saturating_sub(1));
                // The parser's own guard (a chain or a run of `!` past its depth): the same
                // limit, in the same words, as the checks here.
                if message.contains("nesting exceeds maximum depth") {
                    return Err(too_deep(char_offset));
                }
                Err(ExprError {
                    message: tidy_jmespath_message(&message),
                    char_offset,
                })
            }
        }
    }

    pub fn as_str(&self) -> &str {
        self.expr.as_str()
    }

    /// Evaluates the expression on `data` with standard JMESPath semantics.
    pub fn search(&self, data: &Value) -> Result<Value, String> {
        self.expr.search(data).map_err(|e| match e.reason {
            jpx_core::ErrorReason::Parse(m) => m,
            jpx_core::ErrorReason::Runtime(r) => r.to_string(),
            other => other.to_string(),
        })
    }
}

/// Every function an expression calls must exist: an unknown name is a load-time error with a
/// suggestion, not a runtime surprise. And the tree is at most [`MAX_EXPR_NESTING`] deep (a
/// long `a.b.c…` or `a || b || …` chain nests without brackets): the evaluator recurses once
/// per level. The walk itself keeps its own stack.
fn check_functions(ast: &jpx_core::ast::Ast) -> Result<(), ExprError> {
    use jpx_core::ast::Ast;
    let mut stack = vec![(ast, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_EXPR_NESTING {
            return Err(too_deep(ast_offset(node)));
        }
        let inner = depth + 1;
        match node {
            Ast::Function { offset, name, args } => {
                if RUNTIME.get_function(name).is_none() {
                    let known = crate::functions::JMESPATH_BUILTINS
                        .iter()
                        .copied()
                        .chain(crate::functions::FUNCTIONS.iter().map(|f| f.name));
                    let hint = match crate::suggest::did_you_mean(name, known) {
                        Some(best) => format!("; did you mean `{best}()`?"),
                        None => String::new(),
                    };
                    return Err(ExprError {
                        message: format!("unknown function `{name}()`{hint}"),
                        // The node's offset is just past the name.
                        char_offset: offset.saturating_sub(name.chars().count()),
                    });
                }
                if let Some(def) = crate::functions::find(name)
                    && !(def.min_args..=def.max_args).contains(&args.len())
                {
                    let want = if def.min_args == def.max_args {
                        def.min_args.to_string()
                    } else {
                        format!("{} to {}", def.min_args, def.max_args)
                    };
                    return Err(ExprError {
                        message: format!(
                            "`{name}()` takes {want} argument{}, this call passes {}",
                            if def.max_args == 1 { "" } else { "s" },
                            args.len()
                        ),
                        char_offset: offset.saturating_sub(name.chars().count()),
                    });
                }
                stack.extend(args.iter().map(|a| (a, inner)));
            }
            Ast::Comparison { lhs, rhs, .. }
            | Ast::And { lhs, rhs, .. }
            | Ast::Or { lhs, rhs, .. }
            | Ast::Subexpr { lhs, rhs, .. }
            | Ast::Projection { lhs, rhs, .. } => {
                stack.push((lhs, inner));
                stack.push((rhs, inner));
            }
            Ast::Condition {
                predicate, then, ..
            } => {
                stack.push((predicate, inner));
                stack.push((then, inner));
            }
            Ast::Expref { ast, .. } => stack.push((ast, inner)),
            Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
                stack.push((node, inner))
            }
            Ast::MultiList { elements, .. } => stack.extend(elements.iter().map(|e| (e, inner))),
            Ast::MultiHash { elements, .. } => {
                stack.extend(elements.iter().map(|kv| (&kv.value, inner)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where a node is in the expression's text.
fn ast_offset(node: &jpx_core::ast::Ast) -> usize {
    use jpx_core::ast::Ast;
    match node {
        Ast::Comparison { offset, .. }
        | Ast::Condition { offset, .. }
        | Ast::Identity { offset }
        | Ast::Expref { offset, .. }
        | Ast::Flatten { offset, .. }
        | Ast::Function { offset, .. }
        | Ast::Field { offset, .. }
        | Ast::Index { offset, .. }
        | Ast::Literal { offset, .. }
        | Ast::MultiList { offset, .. }
        | Ast::MultiHash { offset, .. }
        | Ast::Not { offset, .. }
        | Ast::Projection { offset, .. }
        | Ast::ObjectValues { offset, .. }
        | Ast::And { offset, .. }
        | Ast::Or { offset, .. }
        | Ast::Slice { offset, .. }
        | Ast::Subexpr { offset, .. } => *offset,
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Rewrites the parser's wording ("unexpected nud token -- found Rbracket") into what an
/// analyst reads ("expected an expression, found `]`").
fn tidy_jmespath_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m).trim().trim_end_matches('.');
    let (head, found) = match first.split_once(" -- found ") {
        Some((h, f)) => (h, Some(f)),
        None => (first, None),
    };
    let head = match head {
        "unexpected nud token" => "expected an expression".to_string(),
        "did not parse the complete expression" => {
            "unexpected token after a complete expression".to_string()
        }
        h => h.replace('\'', "`"),
    };
    let message = match found {
        Some(tok) => format!("{head}, found {}", describe_token(tok)),
        None => head,
    };
    let mut chars = message.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "invalid JMESPath expression".to_string(),
    }
}

fn describe_token(tok: &str) -> String {
    let symbol = match tok {
        "Eof" => return "the end of the expression".to_string(),
        "Rbracket" => "]",
        "Lbracket" => "[",
        "Rbrace" => "}",
        "Lbrace" => "{",
        "Rparen" => ")",
        "Lparen" => "(",
        "Comma" => ",",
        "Dot" => ".",
        "Colon" => ":",
        "Pipe" => "|",
        "Or" => "||",
        "And" => "&&",
        "Not" => "!",
        "Star" => "*",
        "Filter" => "[?",
        "Flatten" => "[]",
        "Eq" => "==",
        "Ne" => "!=",
        "Gt" => ">",
        "Gte" => ">=",
        "Lt" => "<",
        "Lte" => "<=",
        "At" => "@",
        "Ampersand" => "&",
        other if other.starts_with("Number") => return "a number".to_string(),
        other if other.starts_with("Literal") => return "a literal".to_string(),
        other if other.contains("Identifier") => return "an identifier".to_string(),
        other => return other.to_string(),
    };
    format!("`{symbol}`")
}

/// Resource limits for every Rhai script and plugin. Scripts are data transformations: none of
/// them needs more than this, and a loop or a bomb must stop with an error, not hang the runtime.
pub mod rhai_limits {
    pub const MAX_OPERATIONS: u64 = 5_000_000;
    pub const MAX_CALL_LEVELS: usize = 64;
    pub const MAX_EXPR_DEPTH: usize = super::MAX_EXPR_NESTING;
    pub const MAX_FN_EXPR_DEPTH: usize = 32;
    pub const MAX_STRING_SIZE: usize = 4 << 20;
    pub const MAX_ARRAY_SIZE: usize = 100_000;
    pub const MAX_MAP_SIZE: usize = 10_000;
}

/// A sandboxed Rhai engine: bounded operations, sizes and depth; no `eval`; no module imports
/// (plugins are registered explicitly by the loader); `print`/`debug` go nowhere.
pub fn rhai_engine() -> rhai::Engine {
    use rhai_limits::*;
    let mut engine = rhai::Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
        .disable_symbol("eval")
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    // Rhai checks a container's size when a function returns it or changes it in place, but
    // not when `m[key] = value` or `a[i] = value` grows or fills it: a loop of those would be
    // bounded only by the operation limit, which is far past any memory. Every use of a
    // variable passes here first (the `on_var` hook), so the variable, and `this` inside a
    // method, is held to the limits at each use: a container that outgrew them stops the
    // script at its next use, at most one element past them. The check walks the value (as
    // Rhai's own check after `push` does): measured on the Square Rhai mapping, 10-20% more
    // time per message; JMESPath steps are untouched.
    #[allow(deprecated)] // `on_var` is marked volatile, not deprecated
    engine.on_var(|name, _index, context| {
        let engine = context.engine();
        if let Some(value) = context.scope().get(name) {
            check_container_size(engine, value)?;
        }
        if let Some(this) = context.this_ptr() {
            check_container_size(engine, this)?;
        }
        Ok(None)
    });
    crate::functions::register_rhai(&mut engine);
    // `sleep` blocks the worker outside the operation limit and holds up a graceful stop.
    // Registered functions shadow the built-in for every argument type.
    fn no_sleep() -> Result<(), Box<rhai::EvalAltResult>> {
        Err(
            "`sleep()` is not available in Railyard scripts: a script must not block its \
             worker (to wait between attempts, use the pipeline's `on_error.retry`)"
                .into(),
        )
    }
    engine
        .register_fn("sleep", |_: rhai::INT| no_sleep())
        .register_fn("sleep", |_: rhai::FLOAT| no_sleep())
        .register_fn("sleep", |_: rhai::Dynamic| no_sleep());
    engine
}

/// Holds an array or map (with everything inside it) to the engine's size limits. A captured
/// variable (shared) is read through its lock; one that is being written right now is left to
/// the write, whose result Rhai checks.
fn check_container_size(
    engine: &rhai::Engine,
    value: &rhai::Dynamic,
) -> Result<(), Box<rhai::EvalAltResult>> {
    if value.is_shared() {
        return match value.read_lock::<rhai::Dynamic>() {
            Some(inner) if !inner.is_shared() => check_container_size(engine, &inner),
            _ => Ok(()),
        };
    }
    if value.is_array() || value.is_map() {
        engine.ensure_data_size_within_limits(value)?;
    }
    Ok(())
}

/// A compiled Rhai script.
#[derive(Clone, Debug)]
pub struct RhaiScript {
    ast: Arc<rhai::AST>,
}

impl RhaiScript {
    pub fn compile(engine: &rhai::Engine, source: &str) -> Result<RhaiScript, ExprError> {
        match engine.compile(source) {
            Ok(ast) => Ok(RhaiScript { ast: Arc::new(ast) }),
            Err(rhai::ParseError(kind, pos)) => {
                let char_offset = match (pos.line(), pos.position()) {
                    (Some(line), col) => line_col_to_char_offset(source, line, col.unwrap_or(1)),
                    (None, _) => 0,
                };
                let message = match *kind {
                    rhai::ParseErrorType::ExprTooDeep => format!(
                        "script is nested more than {} levels deep (the limit is {0}, {} inside \
                         a function); split it into functions or steps",
                        rhai_limits::MAX_EXPR_DEPTH,
                        rhai_limits::MAX_FN_EXPR_DEPTH
                    ),
                    other => other.to_string(),
                };
                Err(ExprError {
                    message,
                    char_offset,
                })
            }
        }
    }

    pub fn ast(&self) -> &rhai::AST {
        &self.ast
    }

    /// Whether the script defines a function `name` taking `arity` parameters.
    pub fn has_fn(&self, name: &str, arity: usize) -> bool {
        self.ast
            .iter_functions()
            .any(|f| f.name == name && f.params.len() == arity)
    }

    /// Runs the script with `body` in scope; its value is the result.
    pub fn eval(&self, engine: &rhai::Engine, body: &Value) -> Result<Value, String> {
        let dynamic = rhai::serde::to_dynamic(body).map_err(|e| e.to_string())?;
        let mut scope = rhai::Scope::new();
        scope.push_dynamic("body", dynamic);
        let out: rhai::Dynamic = engine
            .eval_ast_with_scope(&mut scope, &self.ast)
            .map_err(|e| e.to_string())?;
        rhai::serde::from_dynamic::<Value>(&out).map_err(|e| e.to_string())
    }
}

/// Converts a 1-based line and column of `source` to a character offset.
pub fn line_col_to_char_offset(source: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1).min(l.chars().count());
        }
        offset += l.chars().count();
    }
    offset
}

/// Whether a URL's text so far (`before`) has reached its path, query or fragment: where a
/// templated value may stand. Scheme, host and port come from configuration only, so that
/// message content cannot send a request, with its credentials, to another host. Shared by
/// `validate` (a template before that point is an error) and the HTTP output.
///
/// Slashes (and backslashes) right after `://` do not end the authority: for `http` and
/// `https`, URL parsers skip them, so in `http:///{{ host }}/x` the value is the host.
pub fn past_url_authority(before: &str) -> bool {
    let Some(scheme_end) = before.find("://") else {
        return false;
    };
    before[scheme_end + 3..]
        .trim_start_matches(['/', '\\'])
        .contains(['/', '?', '#'])
}

/// Splits a template like `orders.{{ meta.source }}.{{ body.id }}` into its JMESPath parts,
/// returning each expression with its character offset in the template. An unclosed `{{` is
/// an error at its position.
pub fn template_parts(template: &str) -> Result<Vec<(String, usize)>, ExprError> {
    let mut parts = Vec::new();
    let mut search_from = 0;
    while let Some(rel) = template[search_from..].find("{{") {
        let open = search_from + rel;
        let inner_start = open + 2;
        let Some(close_rel) = template[inner_start..].find("}}") else {
            return Err(ExprError {
                message: "unclosed `{{` in template".to_string(),
                char_offset: template[..open].chars().count(),
            });
        };
        let inner = &template[inner_start..inner_start + close_rel];
        let lead = inner.len() - inner.trim_start().len();
        parts.push((
            inner.trim().to_string(),
            template[..inner_start + lead].chars().count(),
        ));
        search_from = inner_start + close_rel + 2;
    }
    Ok(parts)
}

/// The template with every `{{ expr }}` replaced by `stand_in`: its fixed shape, for checks
/// that hold whatever a value is (a path's directories, a URL's host). An unclosed `{{` is
/// kept as text ([`template_parts`] reports it).
pub fn template_skeleton(template: &str, stand_in: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(stand_in);
        rest = &rest[open + 2 + close + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders a template: each `{{ expr }}` is replaced by the value of its compiled expression
/// over `data` (strings as they are, other values as JSON). Templates are compiled at load
/// time (`OutputDef::templates`); a part missing from `compiled` is an error, not a guess.
pub fn render_template(
    template: &str,
    compiled: &std::collections::BTreeMap<String, JmesPath>,
    data: &Value,
) -> Result<String, String> {
    render_template_with(template, compiled, data, |_, value, _| Ok(value))
}

/// [`render_template`], passing each substituted value through `place` first (with its
/// expression and the text rendered before it): where a value lands in a path or URL,
/// `place` encodes it for its position or refuses it, so message content stays data and
/// never becomes syntax.
pub fn render_template_with(
    template: &str,
    compiled: &std::collections::BTreeMap<String, JmesPath>,
    data: &Value,
    mut place: impl FnMut(&str, String, &str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("unclosed `{{` in template".to_string());
        };
        let expr = after[..close].trim();
        let e = compiled
            .get(expr)
            .ok_or_else(|| format!("template part `{expr}` was not compiled"))?;
        let value = match e.search(data)? {
            Value::String(s) => s,
            Value::Null => return Err(format!("template part `{expr}` is null")),
            other => other.to_string(),
        };
        let placed = place(expr, value, &out)?;
        out.push_str(&placed);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jmespath_compiles_and_searches() {
        let e = JmesPath::compile("line_items[?quantity > `1`].sku").expect("valid");
        let out = e
            .search(
                &json!({"line_items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]}),
            )
            .expect("search");
        assert_eq!(out, json!(["A"]));
    }

    #[test]
    fn jmespath_error_offset_points_at_the_problem() {
        let err = JmesPath::compile("foo.bar[").expect_err("invalid");
        assert!(err.char_offset >= 7, "{err:?}");
        let err = JmesPath::compile("a == `1` && ]").expect_err("invalid");
        assert_eq!(err.char_offset, 12, "{err:?}");
    }

    #[test]
    fn rhai_error_is_located() {
        let engine = rhai_engine();
        let err = RhaiScript::compile(&engine, "let x = 1;\nlet y = ;").expect_err("invalid");
        assert_eq!(err.char_offset, 19, "{err:?}");
    }

    #[test]
    fn rhai_eval_is_disabled_and_loops_stop() {
        let engine = rhai_engine();
        assert!(RhaiScript::compile(&engine, "eval(\"1\")").is_err());
        let s = RhaiScript::compile(&engine, "loop { }").expect("compiles");
        let err = s.eval(&engine, &json!({})).expect_err("stopped");
        assert!(err.to_lowercase().contains("operations"), "{err}");
    }

    #[test]
    fn templates_render() {
        let mut compiled = std::collections::BTreeMap::new();
        compiled.insert(
            "meta.source".to_string(),
            JmesPath::compile("meta.source").expect("ok"),
        );
        compiled.insert(
            "body.n".to_string(),
            JmesPath::compile("body.n").expect("ok"),
        );
        let data = json!({"meta": {"source": "pos"}, "body": {"n": 7}});
        assert_eq!(
            render_template("orders.{{ meta.source }}.{{body.n}}", &compiled, &data),
            Ok("orders.pos.7".to_string())
        );
        assert!(render_template("x.{{ body.missing }}", &compiled, &data).is_err());
    }

    #[test]
    fn skeletons_keep_the_fixed_text() {
        assert_eq!(
            template_skeleton("out/{{ body.id }}-{{meta.x}}.json", "x"),
            "out/x-x.json"
        );
        assert_eq!(template_skeleton("no templates", "x"), "no templates");
        assert_eq!(template_skeleton("a/{{ open", "x"), "a/{{ open");
    }

    #[test]
    fn templates_split() {
        assert_eq!(
            template_parts("orders.{{ meta.source }}.x").expect("ok"),
            vec![("meta.source".to_string(), 10)]
        );
        assert!(template_parts("a {{ b").is_err());
    }
}
