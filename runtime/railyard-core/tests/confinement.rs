#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Project confinement in the loader: a path written in the project that leaves it (absolute,
//! `..` above the root) or a file the [`ProjectFiles`] implementation reports as outside (a
//! symlink out of the project) is an `outside-project` error at the reference, and nothing of
//! the file is read or kept. The real symlink cases run against the binary in
//! `runtime/railyard/tests/confinement.rs`.

use std::collections::BTreeSet;

use railyard_core::Code;
use railyard_core::project::{
    self, Listing, LoadOptions, Loaded, MemFiles, ProjectFiles, Purpose, ReadError,
};

/// A project whose `links` are symlinks out of it, as `DirFiles` reports them.
struct WithLinks {
    files: MemFiles,
    links: BTreeSet<&'static str>,
}

impl ProjectFiles for WithLinks {
    fn list(&self, dir: &str) -> Listing {
        let mut listing = self.files.list(dir);
        listing.files.retain(|f| !self.links.contains(f.as_str()));
        let prefix = format!("{dir}/");
        listing.errors.extend(
            self.links
                .iter()
                .filter(|l| l.starts_with(&prefix))
                .map(|l| (l.to_string(), ReadError::OutsideProject)),
        );
        listing
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        if self.links.contains(path) {
            return Err(ReadError::OutsideProject);
        }
        self.files.read(path, limit)
    }
}

const PIPELINE: &str = r#"pipeline: audit
input: { stdin: {} }
steps:
  - script: { file: ../outside.rhai }
  - script: { file: /etc/passwd }
  - script: { file: plugins/linked.rhai }
output: { topic: audited }
tests:
  - name: an order is passed on
    input: tests/fixtures/linked.json
    expect:
      output: { file: tests/../../etc/shadow }
"#;

fn load(purpose: Purpose) -> Loaded {
    let files = MemFiles::new()
        .with("pipelines/audit.yaml", PIPELINE)
        .with("outside.rhai", "secret-content-outside")
        .with("tests/fixtures/linked.json", "{\"secret\": 1}")
        .with("plugins/linked.rhai", "secret-content-linked");
    let with_links = WithLinks {
        files,
        links: [
            "tests/fixtures/linked.json",
            "plugins/linked.rhai",
            "schemas/leak.json",
        ]
        .into_iter()
        .collect(),
    };
    project::load(
        &with_links,
        &LoadOptions {
            purpose,
            ..LoadOptions::default()
        },
    )
}

fn at(loaded: &Loaded, d: &railyard_core::Diagnostic) -> String {
    let file = d.file.as_deref().unwrap_or("-");
    match loaded.project.sources.get(file) {
        Some(src) => {
            let lc = src.line_col(d.span.start);
            format!("{file}:{}:{}", lc.line, lc.column)
        }
        None => file.to_string(),
    }
}

#[test]
fn every_reference_out_of_the_project_is_an_error_at_the_reference() {
    let loaded = load(Purpose::Check);
    let outside: Vec<(String, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::OutsideProject)
        .map(|d| {
            assert!(d.is_error(), "{d:?}");
            (at(&loaded, d), d.message.clone())
        })
        .collect();
    assert_eq!(
        outside,
        [
            (
                "pipelines/audit.yaml:4:21".to_string(),
                "script file `../outside.rhai` is outside the project directory; it is not read"
                    .to_string()
            ),
            (
                "pipelines/audit.yaml:5:21".to_string(),
                "script file `/etc/passwd` is outside the project directory; it is not read"
                    .to_string()
            ),
            (
                "pipelines/audit.yaml:6:21".to_string(),
                "script file `plugins/linked.rhai` leads outside the project directory through a \
                 symlink; it is not read"
                    .to_string()
            ),
            (
                "pipelines/audit.yaml:10:12".to_string(),
                "fixture `tests/fixtures/linked.json` leads outside the project directory through \
                 a symlink; it is not read"
                    .to_string()
            ),
            (
                "pipelines/audit.yaml:12:23".to_string(),
                "fixture `tests/../../etc/shadow` is outside the project directory; it is not \
                 read"
                    .to_string()
            ),
            (
                "plugins/linked.rhai".to_string(),
                "`plugins/linked.rhai` is a symlink that leads outside the project directory; \
                 it is not read"
                    .to_string()
            ),
            (
                "schemas/leak.json".to_string(),
                "`schemas/leak.json` is a symlink that leads outside the project directory; it \
                 is not read"
                    .to_string()
            ),
        ]
    );
    // Nothing of those files was kept for rendering, and the pipeline did not compile.
    let kept: Vec<&String> = loaded.project.sources.keys().collect();
    assert_eq!(kept, ["pipelines/audit.yaml"]);
    assert!(loaded.project.pipelines.is_empty());
    let all = format!("{:?}", loaded.diagnostics);
    assert!(!all.contains("secret"), "{all}");
}

/// Fixtures stay a warning for `run` (it never reads them), but a script out of the project
/// still stops it.
#[test]
fn run_refuses_scripts_out_of_the_project_and_warns_about_fixtures() {
    let loaded = load(Purpose::Run);
    let errors: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::OutsideProject && d.is_error())
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(
        errors.iter().all(|m| !m.starts_with("fixture")),
        "{errors:#?}"
    );
    assert!(loaded.project.pipelines.is_empty());
}
