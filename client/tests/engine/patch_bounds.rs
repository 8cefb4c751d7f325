//! Firmware patches are bounded (issue 13, part 4): a patch may not be
//! larger than the image it rebuilds, its download stops at its declared
//! size, it is applied as a stream that stops at the signed image size,
//! and the space check counts it. Every refused patch ends like a bad one
//! always did: the meter downloads the full image instead.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use otavan_client::fault::FaultStorage;
use otavan_client::slots::{BootState, FileSlots, FirmwareSlots, Slot};
use otavan_client::storage::WriteFile;
use otavan_client::transport::MemoryTransport;
use otavan_client::{EngineConfig, EngineError, Meter};
use otavan_protocol::descriptor::KeyPair;
use sha1::Digest;

use crate::deltas::{delta_release, delta_release_unpatched};
use crate::harness::{NEW, NOW, OLD, Release, TestMeter, new_engine};

/// Slots that remember the most bytes ever in the inactive slot since it
/// was last erased: what a patch made the meter write there.
struct PeakSlots<F> {
    inner: F,
    peak: Arc<AtomicU64>,
}

struct CountingWriter<'a> {
    inner: Box<dyn WriteFile + 'a>,
    at: u64,
    peak: Arc<AtomicU64>,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        self.peak.fetch_max(self.at, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl WriteFile for CountingWriter<'_> {
    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }
}

impl<F: FirmwareSlots> FirmwareSlots for PeakSlots<F> {
    fn state(&self) -> io::Result<BootState> {
        self.inner.state()
    }

    fn begin(&self) -> io::Result<Box<dyn WriteFile + '_>> {
        Ok(Box::new(CountingWriter {
            inner: self.inner.begin()?,
            at: 0,
            peak: Arc::clone(&self.peak),
        }))
    }

    fn written(&self) -> io::Result<u64> {
        self.inner.written()
    }

    fn resume(&self) -> io::Result<Box<dyn WriteFile + '_>> {
        Ok(Box::new(CountingWriter {
            at: self.inner.written()?,
            inner: self.inner.resume()?,
            peak: Arc::clone(&self.peak),
        }))
    }

    fn read(&self, slot: Slot) -> io::Result<Option<Box<dyn Read + '_>>> {
        self.inner.read(slot)
    }

    fn set_state(&self, state: BootState) -> io::Result<()> {
        self.inner.set_state(state)
    }
}

/// Runs one update of `meter` over slots that record their peak; returns
/// the result and the peak.
async fn update_watching_the_slot(
    meter: &TestMeter,
    transport: &MemoryTransport,
) -> (Result<otavan_client::Outcome, EngineError>, u64) {
    let peak = Arc::new(AtomicU64::new(0));
    let slots = PeakSlots {
        inner: FileSlots::new(meter.storage()),
        peak: Arc::clone(&peak),
    };
    let engine = new_engine(
        Meter::new(meter.storage(), slots),
        transport.clone(),
        EngineConfig::new("meter-1"),
    );
    let result = engine.update().await;
    (result, peak.load(Ordering::SeqCst))
}

fn bz(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// bsdiff's sign-magnitude little-endian integer.
fn int(x: i64) -> [u8; 8] {
    let magnitude = x.unsigned_abs();
    let bits = if x < 0 {
        magnitude | 1 << 63
    } else {
        magnitude
    };
    bits.to_le_bytes()
}

/// A BSDIFF40 patch built by hand: header, then the three bzip2 blocks.
fn craft(new_size: i64, controls: &[(i64, i64, i64)], diff: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut ctrl = Vec::new();
    for &(add, copy, seek) in controls {
        ctrl.extend(int(add));
        ctrl.extend(int(copy));
        ctrl.extend(int(seek));
    }
    let (ctrl, diff, extra) = (bz(&ctrl), bz(diff), bz(extra));
    let mut patch = b"BSDIFF40".to_vec();
    patch.extend(int(ctrl.len() as i64));
    patch.extend(int(diff.len() as i64));
    patch.extend(int(new_size));
    patch.extend(ctrl);
    patch.extend(diff);
    patch.extend(extra);
    patch
}

/// Serves `patch` in place of the release's and names it in the
/// manifest with its true hashes and `declared` size (its own length by
/// default).
fn serve_patch(
    release: &Release,
    transport: &MemoryTransport,
    patch: &[u8],
    declared: Option<u64>,
) {
    transport.set_file(&release.patch_path(), patch.to_vec());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    let entry = &mut manifest["firmware"]["patch"];
    entry["hash"] = serde_json::json!(hex::encode(sha1::Sha1::digest(patch)));
    entry["sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(patch)));
    entry["size"] = serde_json::json!(declared.unwrap_or(patch.len() as u64));
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
}

fn fetched(transport: &MemoryTransport) -> Vec<String> {
    transport
        .fetch_log()
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

fn image_url() -> String {
    format!("/firmware_{NEW}.bin")
}

fn keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

#[tokio::test]
async fn a_crafted_patch_never_makes_a_signed_meter_write_past_the_signed_image_size() {
    // The attack: a patch of a few hundred bytes whose one control
    // asks for 2 GiB of "extra" bytes. Its extra block holds only 8 times
    // the image in zeros (the damage this test lets it do); the control
    // would go on for 2 GiB if the block had them.
    let mut release = delta_release_unpatched();
    release.sign(&keys(), NOW + 86_400);
    let release = release.with_patches();
    let image = release.image(NEW).len() as u64;
    let patch = craft(
        image as i64,
        &[(0, 1 << 31, 0)],
        &[],
        &vec![0; 8 * image as usize],
    );
    assert!(patch.len() < 2048, "a small patch: {} bytes", patch.len());
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    let transport = release.transport();
    serve_patch(&release, &transport, &patch, None);

    let (result, peak) = update_watching_the_slot(&meter, &transport).await;
    result.unwrap();
    assert!(
        peak <= image,
        "the patch made the meter write {peak} bytes into the slot for a {image}-byte image"
    );
    // The patch was tried, refused, and the full image installed.
    assert!(fetched(&transport).contains(&release.patch_path()));
    assert!(fetched(&transport).contains(&image_url()));
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_patch_whose_header_names_another_size_writes_nothing() {
    let release = delta_release();
    let image = release.image(NEW);
    // A well-formed patch that rebuilds the image exactly, except that its
    // header promises one byte more than the image has.
    let patch = craft(
        image.len() as i64 + 1,
        &[(0, image.len() as i64, 0)],
        &[],
        &image,
    );
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    serve_patch(&release, &transport, &patch, None);
    let (result, peak) = update_watching_the_slot(&meter, &transport).await;
    result.unwrap();
    // Only the full image was ever written, never a byte of the patch's.
    assert_eq!(peak, image.len() as u64);
    assert!(fetched(&transport).contains(&image_url()));
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_patch_that_builds_more_or_fewer_bytes_than_the_image_falls_back() {
    let release = delta_release();
    let image = release.image(NEW);
    let size = image.len() as i64;
    let source = release.image(OLD).len() as i64;
    let longer: Vec<u8> = image.iter().copied().chain([1, 2, 3]).collect();
    for (what, patch) in [
        ("more", craft(size, &[(0, size + 3, 0)], &[], &longer)),
        ("fewer", craft(size, &[(0, size - 1, 0)], &[], &image)),
        // An add that reads past the end of the booted image.
        (
            "outside the source",
            craft(
                size,
                &[(0, 0, source), (size, 0, 0)],
                &vec![0; image.len()],
                &[],
            ),
        ),
        (
            "garbage",
            b"BSDIFF40 but nothing that follows is a patch".to_vec(),
        ),
    ] {
        let meter = TestMeter::provisioned(&release, OLD);
        let transport = release.transport();
        serve_patch(&release, &transport, &patch, None);
        let (result, peak) = update_watching_the_slot(&meter, &transport).await;
        result.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(peak <= size as u64, "{what}: wrote {peak} bytes");
        assert!(fetched(&transport).contains(&image_url()), "{what}");
        meter.assert_at(&release, NEW);
    }
}

#[tokio::test]
async fn a_patch_larger_than_its_image_is_never_downloaded() {
    let release = delta_release();
    let image = release.image(NEW).len() as u64;
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    // The real patch, declared one byte larger than the image it rebuilds.
    let patch = transport_file(&release);
    serve_patch(&release, &transport, &patch, Some(image + 1));
    meter.engine(transport.clone()).update().await.unwrap();
    assert!(
        !fetched(&transport).contains(&release.patch_path()),
        "{:?}",
        fetched(&transport)
    );
    assert!(fetched(&transport).contains(&image_url()));
    meter.assert_at(&release, NEW);
}

/// The release's own patch bytes.
fn transport_file(release: &Release) -> Vec<u8> {
    let source = release.index.patches().keys().next().unwrap().clone();
    std::fs::read(&release.index.patches()[&source].disk_path).unwrap()
}

#[tokio::test]
async fn a_patch_download_stops_at_its_declared_size() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    // The server sends the real patch, then a mebibyte more than the
    // manifest declares.
    let real = transport_file(&release);
    let mut endless = real.clone();
    endless.extend(vec![0x55; 1 << 20]);
    serve_patch(&release, &transport, &real, None);
    transport.set_file(&release.patch_path(), endless);
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    // What a patch refused at its declared size costs: the files, the
    // patch's declared bytes, and the full image after all.
    let budget = release.file_bytes() + real.len() as u64 + release.image(NEW).len() as u64;
    let moved = transport.stats().bytes;
    assert!(
        moved <= budget,
        "moved {moved} bytes, at most {budget} expected"
    );
}

#[tokio::test]
async fn a_file_download_stops_at_its_declared_size() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let path = format!("/{NEW}/flash/main.py");
    let declared = release.tree(NEW)["flash/main.py"].len() as u64;
    let mut endless = release.tree(NEW)["flash/main.py"].clone();
    endless.extend(vec![0x55; 1 << 20]);
    transport.set_file(&path, endless);
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(error.to_string().contains("size mismatch"), "{error}");
    meter.assert_at(&release, OLD);
    // Fetched twice (a mismatch is fetched once more from byte 0), never
    // past the declared size.
    let moved = transport.stats().bytes;
    let budget = release.file_bytes() + declared;
    assert!(
        moved <= budget,
        "moved {moved} bytes, at most {budget} expected"
    );
}

#[tokio::test]
async fn the_space_check_counts_the_patch() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let patch = transport_file(&release).len() as u64;
    let mut config = EngineConfig::new("meter-1");
    config.limits.reserve = 0;
    // Room for the files and the image, not for the patch beside them.
    let room = release.update_bytes() + patch - 1;
    let storage = FaultStorage::with_capacity(meter.storage(), room);
    let transport = release.transport();
    let engine = new_engine(
        Meter::new(storage.clone(), FileSlots::new(storage)),
        transport.clone(),
        config,
    );
    let error = engine.update().await.unwrap_err();
    assert!(
        matches!(error, EngineError::NoSpace { needed, .. } if needed == room + 1),
        "{error}"
    );
    assert_eq!(transport.stats().bytes, 0, "nothing downloaded");
    meter.assert_at(&release, OLD);
}
