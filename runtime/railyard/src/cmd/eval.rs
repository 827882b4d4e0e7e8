//! `railyard eval (--jmespath EXPR | --rhai SCRIPT) [FILE|-]`

use std::path::PathBuf;

use railyard_core::expr::{ExprError, JmesPath, RhaiScript, rhai_engine};

use crate::exit;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("engine").required(true).args(["jmespath", "rhai"])))]
pub struct Args {
    /// A JMESPath expression, e.g. `line_items[].{sku: sku, qty: quantity}`.
    #[arg(long)]
    pub jmespath: Option<String>,
    /// A Rhai script; the payload is in scope as `body`, the script's value is printed.
    #[arg(long)]
    pub rhai: Option<String>,
    /// The payload (JSON); `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Print the result on one line.
    #[arg(long)]
    pub compact: bool,
}

pub fn run(args: Args) -> u8 {
    let engine = rhai_engine();
    enum Compiled {
        J(JmesPath),
        R(RhaiScript),
    }
    let (source, compiled) = match (&args.jmespath, &args.rhai) {
        (Some(e), _) => (e.as_str(), JmesPath::compile(e).map(Compiled::J)),
        (None, Some(s)) => (s.as_str(), RhaiScript::compile(&engine, s).map(Compiled::R)),
        (None, None) => return exit::USAGE,
    };
    let compiled = match compiled {
        Ok(c) => c,
        Err(err) => {
            print_expr_error(source, &err, args.jmespath.is_some());
            return exit::INVALID;
        }
    };
    let (_, payload) = match crate::read_payload(args.file.as_ref()) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::USAGE;
        }
    };
    let result = match &compiled {
        Compiled::J(e) => e.search(&payload),
        Compiled::R(s) => s.eval(&engine, &payload),
    };
    match result {
        Ok(v) => {
            let text = if args.compact {
                serde_json::to_string(&v)
            } else {
                serde_json::to_string_pretty(&v)
            };
            println!("{}", text.unwrap_or_else(|e| format!("<unprintable: {e}>")));
            exit::OK
        }
        Err(msg) => {
            eprintln!("error: evaluation failed: {msg}");
            exit::INVALID
        }
    }
}

fn print_expr_error(source: &str, err: &ExprError, jmespath: bool) {
    let (kind, code) = if jmespath {
        ("JMESPath", "jmespath-syntax")
    } else {
        ("Rhai", "rhai-syntax")
    };
    eprintln!("error[{code}]: invalid {kind}: {}", err.message);
    // Show the line holding the problem with a caret under the character.
    let mut offset = err.char_offset;
    for line in source.split('\n') {
        let n = line.chars().count();
        if offset <= n {
            eprintln!("  {line}");
            eprintln!("  {}^", " ".repeat(offset));
            return;
        }
        offset -= n + 1;
    }
}
