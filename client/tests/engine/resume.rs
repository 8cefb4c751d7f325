//! Cut connections: every pass keeps what arrived and the next resumes
//! with Range, so the bytes moved stay close to what the update needs.

use crate::harness::{NEW, OLD, Release, TestMeter, pass};

#[tokio::test]
async fn a_cut_at_any_offset_resumes_on_the_next_pass() {
    let release = Release::sample();
    let needed = release.update_bytes();
    let mut offset = 0;
    while offset < needed {
        let meter = TestMeter::provisioned(&release, OLD);
        let transport = release.transport();
        transport.cut_after(offset);
        let error = pass(&meter, &transport).await.unwrap_err();
        assert!(
            error.to_string().contains("connection"),
            "cut at {offset}: {error}"
        );
        meter.assert_at(&release, OLD);
        pass(&meter, &transport).await.unwrap();
        meter.assert_at(&release, NEW);
        let moved = transport.stats().bytes;
        assert_eq!(
            moved, needed,
            "cut at {offset}: resumed downloads move each byte once"
        );
        offset += 997;
    }
}

#[tokio::test]
async fn many_short_passes_finish_the_update() {
    let release = Release::sample();
    let needed = release.update_bytes();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 100, "no progress");
        // Each pass the van is in range for 4 KiB.
        transport.cut_after(4096);
        if pass(&meter, &transport).await.is_ok() {
            break;
        }
        meter.assert_at(&release, OLD);
    }
    meter.assert_at(&release, NEW);
    assert!(passes as u64 >= needed / 4096, "{passes} passes");
    assert_eq!(transport.stats().bytes, needed);
}

#[tokio::test]
async fn a_server_that_ignores_range_restarts_the_file() {
    let release = Release::sample();
    let needed = release.update_bytes();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.set_ignore_range(true);
    transport.cut_after(needed / 2);
    assert!(pass(&meter, &transport).await.is_err());
    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    let moved = transport.stats().bytes;
    assert!(moved <= 2 * needed, "moved {moved} for {needed}");
    assert!(moved > needed, "the cut file was sent again from its start");
}

#[tokio::test]
async fn a_wrong_content_range_restarts_the_file_within_the_pass() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.cut_after(release.update_bytes() / 3);
    assert!(pass(&meter, &transport).await.is_err());
    transport.set_wrong_range_start(true);
    // With retries the engine drops the partial file and fetches it whole.
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn retries_within_a_pass_ride_out_short_drops() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.set_cut_schedule([500, 1500]);
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(transport.stats().bytes, release.update_bytes());
}

#[tokio::test]
async fn a_corrupted_prefix_staged_in_an_earlier_pass_is_fetched_again() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.cut_after(100);
    assert!(pass(&meter, &transport).await.is_err());
    // The first file's 100 bytes are staged; one of them goes bad, as a
    // power cut before the staging sync can leave it.
    let staging = meter.root().join(".otavan/staging");
    let staged: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let mut bytes = std::fs::read(&staged[0]).unwrap();
    assert_eq!(bytes.len(), 100);
    bytes[10] ^= 0xFF;
    std::fs::write(&staged[0], bytes).unwrap();

    pass(&meter, &transport).await.unwrap();
    meter.assert_at(&release, NEW);
    // Resumed after the staged prefix, which was hashed again with the
    // new bytes: the mismatch sends the file again from its start.
    let log = transport.fetch_log();
    let first = &log[0].0;
    let offsets: Vec<u64> = log
        .iter()
        .filter(|(path, _)| path == first)
        .map(|&(_, from)| from)
        .collect();
    assert_eq!(offsets, [0, 100, 0], "{first}");
}
