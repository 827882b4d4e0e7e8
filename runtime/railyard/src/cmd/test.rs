//! `railyard test [DIR] [--filter NAME] [--format human|junit]`

use std::path::PathBuf;

use railyard_core::testing::{TestResult, run_tests};

use crate::exit;
use railyard_core::project::Purpose;

use crate::fs::open_project;
use crate::render::{Paths, Renderer, summary};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// One line per test, failures explained with a JSON diff.
    Human,
    /// JUnit XML on stdout (for CI test reports).
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// Project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Run only tests whose `suite › name` contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
}

pub fn run(args: Args) -> u8 {
    let (files, loaded) = match open_project(&args.dir, Purpose::Check) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if loaded.has_errors() {
        let renderer = Renderer::new(&loaded, &args.dir, crate::use_color());
        eprint!("{}", renderer.human(&loaded.diagnostics));
        eprintln!(
            "error: the project does not validate ({}); no tests ran",
            summary(&loaded.diagnostics)
        );
        return exit::INVALID;
    }
    let results = run_tests(&loaded.project, &files, args.filter.as_deref());
    let failed = results.iter().filter(|r| !r.passed()).count();
    match args.format {
        TestFormat::Junit => print!("{}", junit(&results)),
        TestFormat::Human => {
            let paths = Paths::new(&args.dir);
            for r in &results {
                match &r.failure {
                    None => println!("ok    {} {}", r.kind.as_str(), r.full_name()),
                    Some(why) => {
                        println!(
                            "FAIL  {} {}  ({})",
                            r.kind.as_str(),
                            r.full_name(),
                            paths.show(&r.file)
                        );
                        for line in why.lines() {
                            println!("      {line}");
                        }
                    }
                }
            }
            let verdict = if failed == 0 { "ok" } else { "FAILED" };
            println!(
                "\n{verdict}: {} passed, {failed} failed",
                results.len() - failed
            );
        }
    }
    if results.is_empty() && args.filter.is_some() {
        eprintln!("warning: no test matches the filter");
    }
    if failed > 0 { exit::INVALID } else { exit::OK }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// JUnit XML: one `<testsuite>` per pipeline or mapping.
fn junit(results: &[TestResult]) -> String {
    use std::collections::BTreeMap;
    let mut suites: BTreeMap<(String, String), Vec<&TestResult>> = BTreeMap::new();
    for r in results {
        suites
            .entry((r.kind.as_str().to_string(), r.suite.clone()))
            .or_default()
            .push(r);
    }
    let failures = results.iter().filter(|r| !r.passed()).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites name=\"railyard\" tests=\"{}\" failures=\"{failures}\">\n",
        results.len()
    ));
    for ((kind, suite), tests) in &suites {
        let f = tests.iter().filter(|r| !r.passed()).count();
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">\n",
            xml_escape(&format!("{kind} {suite}")),
            tests.len()
        ));
        for t in tests {
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
                xml_escape(&format!("{kind}.{suite}")),
                xml_escape(&t.name),
                xml_escape(&t.file)
            ));
            match &t.failure {
                None => s.push_str("/>\n"),
                Some(why) => {
                    let first = why.lines().next().unwrap_or_default();
                    s.push_str(&format!(
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(first),
                        xml_escape(why)
                    ));
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
