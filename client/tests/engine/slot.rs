//! The firmware image goes straight into the inactive slot: written once,
//! resumed there after a cut, and verified by reading the slot back.

use otavan_client::fault::FaultStorage;
use otavan_client::slots::FileSlots;
use otavan_client::{EngineConfig, Meter};

use crate::harness::{NEW, OLD, Release, TestMeter, new_engine, pass};

const IMAGE_URL: &str = "/firmware_1.1.0.bin";

/// The `from` offsets the image was fetched at, in order.
fn image_fetches(transport: &otavan_client::transport::MemoryTransport) -> Vec<u64> {
    transport
        .fetch_log()
        .into_iter()
        .filter(|(path, _)| path == IMAGE_URL)
        .map(|(_, from)| from)
        .collect()
}

/// A meter whose first pass was cut `into` bytes into the image.
async fn cut_into_the_image(
    release: &Release,
    into: u64,
) -> (TestMeter, otavan_client::transport::MemoryTransport) {
    let meter = TestMeter::provisioned(release, OLD);
    let transport = release.transport();
    transport.cut_after(release.file_bytes() + into);
    assert!(pass(&meter, &transport).await.is_err());
    meter.assert_at(release, OLD);
    let slot = std::fs::read(meter.inactive_slot()).unwrap();
    assert_eq!(slot, release.image(NEW)[..into as usize]);
    (meter, transport)
}

#[tokio::test]
async fn the_image_is_written_once() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    // Room for the update's bytes and a little state, not for a second copy
    // of the image (staged first, then copied into the slot).
    let image = release.image(NEW).len() as u64;
    let storage = FaultStorage::with_capacity(meter.storage(), release.update_bytes() + image / 2);
    let mut config = EngineConfig::new("meter-1");
    config.limits.reserve = 0;
    let engine = new_engine(
        Meter::new(storage.clone(), FileSlots::new(storage)),
        release.transport(),
        config,
    );
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_cut_image_download_resumes_in_the_slot() {
    let release = Release::sample();
    let (meter, transport) = cut_into_the_image(&release, 5000).await;
    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(image_fetches(&transport), [0, 5000]);
    assert_eq!(transport.stats().bytes, release.update_bytes());
}

#[tokio::test]
async fn a_bad_prefix_in_the_slot_is_caught_by_the_read_back() {
    let release = Release::sample();
    let (meter, transport) = cut_into_the_image(&release, 5000).await;
    let mut slot = std::fs::read(meter.inactive_slot()).unwrap();
    slot[100] ^= 0xFF;
    std::fs::write(meter.inactive_slot(), slot).unwrap();

    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    // Resumed, read back, refused, erased and fetched whole.
    assert_eq!(image_fetches(&transport), [0, 5000, 0]);
    let image = release.image(NEW).len() as u64;
    assert_eq!(transport.stats().bytes, release.update_bytes() + image);
}

#[tokio::test]
async fn a_slot_not_marked_for_this_image_is_erased_not_resumed() {
    let release = Release::sample();
    // An image from an earlier update is still in the inactive slot.
    let meter = TestMeter::provisioned(&release, OLD);
    std::fs::write(meter.inactive_slot(), &release.image(NEW)[..5000]).unwrap();
    let transport = release.transport();
    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(image_fetches(&transport), [0]);

    // A marker naming the booted slot does not vouch for the other one.
    let (meter, transport) = cut_into_the_image(&release, 5000).await;
    let staging = meter.root().join(".otavan/staging");
    let marker = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap() == b"b")
        .expect("a marker names slot b");
    std::fs::write(&marker, b"a").unwrap();
    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(image_fetches(&transport), [0, 0]);
}

#[tokio::test]
async fn a_verified_image_left_by_an_interrupted_apply_is_not_fetched_again() {
    let release = Release::sample();
    let probe = TestMeter::provisioned(&release, OLD);
    let (engine, storage) = probe.faulty_engine(release.transport(), None);
    engine.update().await.unwrap();
    let total = storage.ops();
    // The latest power cut that still leaves the old version falls in the
    // apply, after everything was staged and the image verified.
    for cut in (0..total).rev() {
        let meter = TestMeter::provisioned(&release, OLD);
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.update().await.is_err());
        meter.meter().recover().unwrap();
        if meter.version() == NEW {
            continue;
        }
        meter.assert_at(&release, OLD);
        let transport = release.transport();
        pass(&meter, &transport).await.unwrap();
        meter.assert_at(&release, NEW);
        assert_eq!(transport.stats().bytes, 0, "cut {cut}: nothing to fetch");
        return;
    }
    panic!("no power cut left the old version");
}
