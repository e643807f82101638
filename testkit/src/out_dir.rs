//! A fresh report directory under the temporary directory, removed when the test ends.

use std::path::{Path, PathBuf};

/// A temporary directory, emptied when created and removed when dropped.
#[derive(Debug)]
pub struct OutDir(PathBuf);

/// A fresh directory path named after the test (not created: the code under test
/// creates its report directory itself).
pub fn out_dir(name: &str) -> OutDir {
    let d = std::env::temp_dir().join(format!("wsload-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    OutDir(d)
}

impl std::ops::Deref for OutDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for OutDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
