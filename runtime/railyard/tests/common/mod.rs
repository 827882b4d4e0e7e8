//! Helpers shared by the binary's integration tests.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The repository root, which is the reference project.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the reference project's content (no data/, no code) in a temp dir.
pub fn reference_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for d in [
        "schemas",
        "mappings",
        "pipelines",
        "plugins",
        "tests/fixtures",
    ] {
        if root().join(d).is_dir() {
            copy_dir(&root().join(d), &tmp.path().join(d));
        }
    }
    tmp
}
