//! The firmware staging marker: a one-byte file at the image's staging
//! path (named from the SHA-1 of the path `firmware` and of the image)
//! holding the name of the slot being filled with that image. With it, a
//! pass after a cut resumes the image at the slot's length.

use crate::harness::{NEW, OLD, Release, TestMeter, pass};

use super::assert_writes;

/// The image's staging name, and so the golden file's.
const MARKER: &str = "9bcf18e4b22c0710-5088e1f31b47dfafa599881edeb91fc1e0fe1c67";

/// Bytes of the image in its slot when the van leaves.
const RECEIVED: usize = 1_000;

fn new_image() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// A release of its own, so the marker's name is fixed here.
fn release() -> Release {
    Release::from_trees(
        &[("flash/main.py", b"print('1.0.0')\n".to_vec())],
        &[("flash/main.py", b"print('1.1.0')\n".to_vec())],
        b"golden image 1.0.0",
        &new_image(),
    )
}

#[tokio::test]
async fn a_golden_staging_marker_resumes_the_image_and_a_cut_pass_writes_it() {
    let release = release();
    let golden_file = format!("staging/{MARKER}");

    // (b) A pass cut inside the image leaves exactly the golden marker.
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.cut_after(release.file_bytes() + RECEIVED as u64);
    assert!(pass(&meter, &transport).await.is_err());
    let staging = meter.root().join(".otavan/staging");
    assert_writes(&golden_file, &std::fs::read(staging.join(MARKER)).unwrap());
    let slot = std::fs::read(meter.root().join(".otavan/slots/b.bin")).unwrap();
    assert_eq!(slot, new_image()[..RECEIVED]);

    // (a) A meter holding the golden marker and that much of the image in
    // slot b fetches only the rest.
    let meter = TestMeter::provisioned(&release, OLD);
    let staging = meter.root().join(".otavan/staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join(MARKER), super::golden(&golden_file)).unwrap();
    std::fs::write(meter.root().join(".otavan/slots/b.bin"), &slot).unwrap();
    let transport = release.transport();
    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    let image = format!("/firmware_{NEW}.bin");
    let fetches: Vec<u64> = transport
        .fetch_log()
        .into_iter()
        .filter(|(target, _)| *target == image)
        .map(|(_, from)| from)
        .collect();
    assert_eq!(fetches, [RECEIVED as u64]);
}
