//! The run store of `ws-coordinator serve`: one file per run under the state
//! directory, holding the run's [`Summary`] (protobuf), so the runs a coordinator ran
//! are still listed after it restarts.
//!
//! A run's record is written when the run is accepted (in progress) and again when
//! its report has been written (final). Each write goes to a temporary file that is
//! synced and then renamed over the record, so a record is either the old or the new
//! one, never a torn mix. On start, a record still in progress belongs to a run the
//! previous coordinator never finished: it is rewritten as INTERRUPTED. A record that
//! does not decode (or names another run) is skipped with a warning, not fatal.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use wsload_proto::pb::{RunState, Summary};

/// File name suffix of a record.
const EXT: &str = "run.pb";
/// Why an in-progress record is interrupted.
pub const INTERRUPTED_REASON: &str = "the coordinator stopped while the run was in progress";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory cannot be created or read, or a record cannot be written.
    #[error("run state {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The persisted runs.
#[derive(Debug, Clone)]
pub struct RunStore {
    /// The state directory.
    dir: PathBuf,
    /// Run id -> its newest record.
    runs: BTreeMap<String, Summary>,
}

/// What opening the store found besides the runs, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// Runs found in progress and marked interrupted.
    pub interrupted: Vec<String>,
    /// Records skipped, each with why.
    pub skipped: Vec<String>,
}

impl RunStore {
    /// Opens (creating) `dir` and loads its records; in-progress ones become
    /// interrupted (and are rewritten so), unreadable ones are skipped with a warning.
    pub fn open(dir: &Path) -> Result<(RunStore, Opened), StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut store = RunStore {
            dir: dir.to_path_buf(),
            runs: BTreeMap::new(),
        };
        let mut opened = Opened::default();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.ends_with(".tmp") {
                // A write the previous coordinator did not finish: the record is intact.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(id) = name.strip_suffix(&format!(".{EXT}")) else {
                continue;
            };
            match read_record(&path, id) {
                Ok(s) => {
                    store.runs.insert(id.to_string(), s);
                }
                Err(why) => {
                    tracing::warn!(file = %path.display(), "skipping an unreadable run record: {why}");
                    opened.skipped.push(format!("{}: {why}", path.display()));
                }
            }
        }
        let unfinished: Vec<Summary> = store.runs.values().filter(|s| !s.finished).cloned().collect();
        for s in unfinished {
            tracing::warn!(run = %s.run_id, "run was in progress when the coordinator stopped: marked interrupted");
            opened.interrupted.push(s.run_id.clone());
            store.put(&interrupted(s))?;
        }
        Ok((store, opened))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `s` as its run's record (atomically) and remembers it.
    pub fn put(&mut self, s: &Summary) -> Result<(), StoreError> {
        write_record(&self.dir, s)?;
        self.remember(s.clone());
        Ok(())
    }

    /// Remembers a record already written by [`write_record`].
    pub fn remember(&mut self, s: Summary) {
        self.runs.insert(s.run_id.clone(), s);
    }

    /// The record of `run_id`.
    pub fn get(&self, run_id: &str) -> Option<&Summary> {
        self.runs.get(run_id)
    }

    /// Every record, newest first (by start time, then id).
    pub fn list(&self) -> Vec<&Summary> {
        let mut v: Vec<&Summary> = self.runs.values().collect();
        v.sort_by(|a, b| (b.started_unix_micros, &b.run_id).cmp(&(a.started_unix_micros, &a.run_id)));
        v
    }
}

/// `s` as a run the coordinator died in: INTERRUPTED, finished, no report.
fn interrupted(s: Summary) -> Summary {
    Summary {
        state: format!("interrupted: {INTERRUPTED_REASON}"),
        run_state: RunState::Interrupted as i32,
        state_reason: INTERRUPTED_REASON.to_string(),
        finished: true,
        report_dir: format!("(not written: {INTERRUPTED_REASON})"),
        ..s
    }
}

fn read_record(path: &Path, id: &str) -> Result<Summary, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let s = Summary::decode(bytes.as_slice()).map_err(|e| format!("not a run record ({e})"))?;
    if s.run_id != id {
        return Err(format!("holds run `{}`, not `{id}`", s.run_id));
    }
    Ok(s)
}

/// Writes `s` to `dir/<run id>.run.pb` through a synced temporary file and a rename,
/// so a crash at any point leaves the old record or the new one. Blocking.
pub fn write_record(dir: &Path, s: &Summary) -> Result<(), StoreError> {
    // Run ids are ours (`run-<hex>`); anything else must not escape the directory.
    let safe = !s.run_id.is_empty() && s.run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !safe {
        return Err(StoreError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad run id"),
        });
    }
    let path = dir.join(format!("{}.{EXT}", s.run_id));
    let tmp = dir.join(format!("{}.{EXT}.tmp", s.run_id));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&s.encode_to_vec()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wsload-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn run(id: &str, started: i64, finished: bool) -> Summary {
        Summary {
            run_id: id.into(),
            started_unix_micros: started,
            finished,
            run_state: if finished {
                RunState::Completed
            } else {
                RunState::Running
            } as i32,
            sessions: 7,
            report_dir: format!("/r/{id}"),
            ..Default::default()
        }
    }

    #[test]
    fn records_survive_a_reopen_and_unfinished_ones_are_interrupted() {
        let d = dir("reopen");
        let (mut s, opened) = RunStore::open(&d).unwrap();
        assert_eq!(opened, Opened::default());
        s.put(&run("run-a", 1, true)).unwrap();
        s.put(&run("run-b", 2, false)).unwrap();
        let (s, opened) = RunStore::open(&d).unwrap();
        assert_eq!(opened.interrupted, vec!["run-b".to_string()]);
        let ids: Vec<_> = s.list().iter().map(|r| r.run_id.clone()).collect();
        assert_eq!(ids, ["run-b", "run-a"]);
        let a = s.get("run-a").unwrap();
        assert_eq!(
            (a.run_state(), a.report_dir.as_str(), a.sessions),
            (RunState::Completed, "/r/run-a", 7)
        );
        let b = s.get("run-b").unwrap();
        assert_eq!(b.run_state(), RunState::Interrupted);
        assert!(b.finished);
        assert_eq!(b.state_reason, INTERRUPTED_REASON);
        // Rewritten: a third open finds nothing left to interrupt.
        let (_, opened) = RunStore::open(&d).unwrap();
        assert!(opened.interrupted.is_empty());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_corrupt_or_misnamed_record_is_skipped_with_a_reason() {
        let d = dir("corrupt");
        let (mut s, _) = RunStore::open(&d).unwrap();
        s.put(&run("run-good", 1, true)).unwrap();
        std::fs::write(d.join("run-bad.run.pb"), b"\xff\xff\xff\xff garbage").unwrap();
        std::fs::copy(d.join("run-good.run.pb"), d.join("run-other.run.pb")).unwrap();
        std::fs::write(d.join("run-half.run.pb.tmp"), b"torn").unwrap();
        let (s, opened) = RunStore::open(&d).unwrap();
        assert_eq!(s.list().len(), 1);
        assert_eq!(opened.skipped.len(), 2, "{:?}", opened.skipped);
        assert!(
            opened.skipped[0].contains("run-bad.run.pb: not a run record"),
            "{:?}",
            opened.skipped
        );
        assert!(
            opened.skipped[1].contains("holds run `run-good`, not `run-other`"),
            "{:?}",
            opened.skipped
        );
        assert!(!d.join("run-half.run.pb.tmp").exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_run_id_cannot_escape_the_directory() {
        let d = dir("escape");
        let (mut s, _) = RunStore::open(&d).unwrap();
        assert!(s.put(&run("../x", 1, true)).is_err());
        let _ = std::fs::remove_dir_all(d);
    }
}
