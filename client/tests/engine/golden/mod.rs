//! Golden files: every format a meter keeps on disk, as today's code
//! writes it, in `client/tests/golden/`. The next firmware must read what
//! this one wrote, so for each format:
//!
//! (a) every golden file loads into the value it was written from, and
//! (b) today's code, writing that value, produces exactly the golden
//!     bytes.
//!
//! The formats: the device state `.otavan/state.json` (version, signed
//! release counter, trusted-time floor and the update journal in each
//! phase), the firmware slots' `.otavan/slots/boot.json`, `a.bin` and
//! `b.bin`, the release key `.otavan/trust.pub` or the root key
//! `.otavan/root.pub` (each provisioned `.otavan/` is one golden tree),
//! the root certificate a meter follows `.otavan/root.json` and the
//! signed descriptors it keeps `.otavan/descriptors/VERSION.json`, the
//! LoRa trigger's `.otavan/lora.json`, and the firmware staging marker,
//! whose name and byte say which slot holds how much of which image. The rest of `.otavan/` holds no format of its own: staged
//! downloads and backups are the files' bytes (named as the journal and
//! the marker's scheme say), `lock` is empty, and the temporary files of
//! atomic writes are never read.
//!
//! A failure of (b) means a format changed. If that is deliberate: keep
//! the old golden file and its entry among the loads (old meters keep
//! that file until they update, so it must load forever), give the new
//! bytes a new golden file, list it in both, and create it with
//!
//! ```sh
//! OTAVAN_BLESS=1 cargo test -p otavan-client --test engine golden
//! ```
//!
//! Blessing only creates golden files that do not exist yet; it never
//! replaces one. Never "fix" this test by deleting or regenerating an old
//! golden file.

mod lora;
mod staging;
mod state;
mod trust;

use std::path::{Path, PathBuf};

use otavan_client::path::MeterPath;
use otavan_client::storage::DirStorage;
use otavan_protocol::Version;
use tempfile::TempDir;

/// The golden file `name`.
fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// The bytes of golden file `name`.
pub fn golden(name: &str) -> Vec<u8> {
    std::fs::read(golden_path(name)).unwrap_or_else(|e| {
        panic!("golden file {name}: {e} (a new one is created with OTAVAN_BLESS=1)")
    })
}

/// (b): `written`, what today's code wrote, is exactly golden file `name`.
/// With `OTAVAN_BLESS=1` a golden file that does not exist yet is created
/// from it; an existing one is never replaced.
pub fn assert_writes(name: &str, written: &[u8]) {
    let path = golden_path(name);
    let bless = std::env::var_os("OTAVAN_BLESS").is_some_and(|v| v == "1");
    if bless && !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, written).unwrap();
        return;
    }
    let golden = golden(name);
    assert!(
        golden == written,
        "today's code no longer writes {name} byte for byte; \
         read client/tests/engine/golden/mod.rs before changing anything\n\
         --- golden\n{}\n--- written\n{}",
        String::from_utf8_lossy(&golden),
        String::from_utf8_lossy(written),
    );
}

/// An empty meter root with its state directory.
pub fn empty_meter() -> (TempDir, DirStorage) {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir_all(dir.path().join(".otavan/slots")).unwrap();
    let storage = DirStorage::new(dir.path()).unwrap();
    (dir, storage)
}

/// A meter holding golden file `name` at `at` (a path under its root).
pub fn meter_with(name: &str, at: &str) -> (TempDir, DirStorage) {
    let (dir, storage) = empty_meter();
    std::fs::write(dir.path().join(at), golden(name)).unwrap();
    (dir, storage)
}

/// A meter path.
pub fn path(p: &str) -> MeterPath {
    MeterPath::parse(p).unwrap()
}

/// A version.
pub fn version(v: &str) -> Version {
    v.parse().unwrap()
}
