//! The sequence on a recording file system, and [`write_atomic`] on disk.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;

/// An in-memory file system that logs every operation and fails the
/// `fail_at`-th one.
#[derive(Default)]
struct Recorder {
    log: RefCell<Vec<String>>,
    fail_at: Option<usize>,
    files: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl Recorder {
    fn with(path: &str, content: &[u8], fail_at: Option<usize>) -> Recorder {
        let recorder = Recorder {
            fail_at,
            ..Recorder::default()
        };
        recorder
            .files
            .borrow_mut()
            .insert(path.to_owned(), content.to_vec());
        recorder
    }

    fn step(&self, operation: String) -> io::Result<()> {
        let mut log = self.log.borrow_mut();
        if self.fail_at == Some(log.len()) {
            return Err(io::Error::other(format!("{operation} failed")));
        }
        log.push(operation);
        Ok(())
    }

    fn content(&self, path: &str) -> Option<Vec<u8>> {
        self.files.borrow().get(path).cloned()
    }
}

struct RecordedFile<'a> {
    fs: &'a Recorder,
    path: String,
}

impl Write for RecordedFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.step(format!("write {}", self.path))?;
        let mut files = self.fs.files.borrow_mut();
        files.entry(self.path.clone()).or_default().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AtomicReplace for Recorder {
    type Path = str;
    type File<'a> = RecordedFile<'a>;

    fn temporary(&self, path: &str) -> io::Result<String> {
        Ok(format!("{path}{TEMPORARY_SUFFIX}"))
    }

    fn create_file(&self, path: &str) -> io::Result<RecordedFile<'_>> {
        self.step(format!("create {path}"))?;
        self.files.borrow_mut().insert(path.to_owned(), Vec::new());
        Ok(RecordedFile {
            fs: self,
            path: path.to_owned(),
        })
    }

    fn sync_file(&self, file: &mut RecordedFile<'_>) -> io::Result<()> {
        self.step(format!("sync {}", file.path))
    }

    fn rename_file(&self, from: &str, to: &str) -> io::Result<()> {
        self.step(format!("rename {from} {to}"))?;
        let mut files = self.files.borrow_mut();
        let content = files.remove(from).ok_or_else(|| io::Error::other("gone"))?;
        files.insert(to.to_owned(), content);
        Ok(())
    }

    fn sync_parent(&self, path: &str) -> io::Result<()> {
        self.step(format!("sync the directory of {path}"))
    }
}

const SEQUENCE: [&str; 5] = [
    "create plan.tmp",
    "write plan.tmp",
    "sync plan.tmp",
    "rename plan.tmp plan",
    "sync the directory of plan",
];

#[test]
fn the_steps_run_in_order_and_stop_at_the_first_failure() {
    let fs = Recorder::with("plan", b"old", None);
    replace(&fs, "plan", b"new").unwrap();
    assert_eq!(*fs.log.borrow(), SEQUENCE);
    assert_eq!(fs.content("plan").as_deref(), Some(&b"new"[..]));
    assert_eq!(fs.content("plan.tmp"), None);
    for fail_at in 0..SEQUENCE.len() {
        let fs = Recorder::with("plan", b"old", Some(fail_at));
        let error = replace(&fs, "plan", b"new").unwrap_err();
        assert!(error.to_string().starts_with(SEQUENCE[fail_at]), "{error}");
        assert_eq!(
            *fs.log.borrow(),
            SEQUENCE[..fail_at],
            "failing step {fail_at}"
        );
        // Nothing replaces the old content before the new one is synced.
        let renamed = fail_at > 3;
        let expected: &[u8] = if renamed { b"new" } else { b"old" };
        assert_eq!(fs.content("plan").as_deref(), Some(expected));
    }
}

#[test]
fn the_temporary_file_never_survives_a_successful_write() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("target_1.0.0.json");
    write_atomic(&path, b"{}").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{}");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["target_1.0.0.json"]);
}

#[test]
fn an_existing_file_is_replaced_whole() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("PLAN.csv");
    write_atomic(&path, &[b'x'; 10_000]).unwrap();
    write_atomic(&path, b"short").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"short");
    assert!(!temporary_path(&path).exists());
}

#[test]
fn a_failed_write_leaves_the_old_content() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("PLAN.csv");
    write_atomic(&path, b"old").unwrap();
    // The temporary file cannot be created: a directory is in its place.
    let blocker = temporary_path(&path);
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("keep"), b"").unwrap();
    assert!(write_atomic(&path, b"new").is_err());
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert!(blocker.join("keep").exists(), "only a file is cleaned up");
    fs::remove_dir_all(&blocker).unwrap();
    // The rename fails (a directory cannot be replaced by a file): the
    // temporary file goes, the directory stays.
    let occupied = dir.path().join("occupied");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("inside"), b"").unwrap();
    assert!(write_atomic(&occupied, b"new").is_err());
    assert!(occupied.join("inside").exists());
    assert!(!temporary_path(&occupied).exists());
    // No directory to write into.
    let nowhere = dir.path().join("absent").join("PLAN.csv");
    assert!(write_atomic(&nowhere, b"new").is_err());
    assert!(!dir.path().join("absent").exists());
}

#[test]
fn a_relative_name_syncs_the_current_directory() {
    sync_parent(Path::new("Cargo.toml")).unwrap();
    assert!(sync_parent(Path::new("/nonexistent-otavan/x")).is_err());
}
