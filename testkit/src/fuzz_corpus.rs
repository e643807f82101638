//! The committed fuzz seed corpora (`fuzz/corpus/<target>/`), replayed by each
//! crate's unit tests through the same entry point its fuzz target calls, so a
//! regression input fails `cargo test` without cargo-fuzz.

use std::path::Path;

/// Runs every file of `fuzz/corpus/<target>/` through `entry`; returns how many.
pub fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.unwrap().path();
        entry(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        n += 1;
    }
    n
}
