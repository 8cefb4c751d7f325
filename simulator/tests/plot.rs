//! Tests of the rehearsal charts: files, content, size, determinism, scale.

use std::path::{Path, PathBuf};

use otavan_sim::plot::{
    MAP_SIZE, MapPoint, PROGRESS_SIZE, PlotError, ProgressSeries, SVG_POINT_CAP, write_map,
    write_progress,
};

const CLASSES: [&str; 3] = ["updated", "failed", "not reached"];

fn file(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn read_pair(stem: &Path) -> (String, Vec<u8>) {
    let svg = std::fs::read_to_string(file(stem, "svg")).expect("svg written");
    let png = std::fs::read(file(stem, "png")).expect("png written");
    (svg, png)
}

/// Checks the SVG is a whole, well-nested document (tags balance).
fn assert_svg(svg: &str) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("tag closed") + start;
        let tag = &rest[start + 1..end];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap();
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            // Declaration or self-closing.
        } else if tag.starts_with('/') {
            assert_eq!(stack.pop(), Some(name), "unbalanced </{name}>");
        } else {
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

/// Checks the PNG signature and reads (width, height) from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 33, "PNG too short: {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// A deterministic pseudo-random city: meters spread over `side` metres,
/// mostly updated, some failed, a few not reached.
fn city(n: usize, side: f64) -> Vec<MapPoint> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (x, y) = (next() * side, next() * side * 0.7);
            let r = next();
            let class = if r < 0.9 {
                0
            } else if r < 0.97 {
                1
            } else {
                2
            };
            MapPoint { x, y, class }
        })
        .collect()
}

fn curve(rate_per_hour: f64, hours: f64) -> Vec<(f64, f64)> {
    (0..=200)
        .map(|i| {
            let t = hours * f64::from(i) / 200.0;
            (t, 1.0 - (-rate_per_hour * t).exp())
        })
        .collect()
}

#[test]
fn progress_chart_is_written_with_title_and_legend() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("progress");
    let van = curve(0.1, 48.0);
    let lora = curve(0.02, 48.0);
    let series = [
        ProgressSeries {
            label: "otavan van",
            points: &van,
        },
        ProgressSeries {
            label: "LoRaWAN FUOTA baseline",
            points: &lora,
        },
    ];
    write_progress(&stem, "Campaign progress", &series).unwrap();
    let (svg, png) = read_pair(&stem);
    assert_svg(&svg);
    for text in [
        "Campaign progress",
        "otavan van",
        "LoRaWAN FUOTA baseline",
        "50 %",
        "90 %",
        "99 %",
        "(hours)",
        "meters updated",
        "DejaVu Sans",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    assert_eq!(png_size(&png), PROGRESS_SIZE);
}

#[test]
fn long_campaigns_are_drawn_in_days() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("progress");
    let slow = curve(0.005, 24.0 * 30.0);
    let series = [ProgressSeries {
        label: "LoRaWAN FUOTA baseline",
        points: &slow,
    }];
    write_progress(&stem, "A month", &series).unwrap();
    let (svg, _) = read_pair(&stem);
    assert!(svg.contains("(days)"));
}

#[test]
fn map_is_written_with_title_legend_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("map");
    let points = city(5_000, 3_000.0);
    let route: Vec<(f64, f64)> = (0..=60)
        .map(|i| {
            (
                f64::from(i) * 50.0,
                1_000.0 + (f64::from(i) / 5.0).sin() * 300.0,
            )
        })
        .collect();
    write_map(&stem, "Where the van went", &CLASSES, &points, &[&route]).unwrap();
    let (svg, png) = read_pair(&stem);
    assert_svg(&svg);
    assert!(svg.contains("Where the van went"));
    for (class, name) in CLASSES.iter().enumerate() {
        let count = points
            .iter()
            .filter(|p| usize::from(p.class) == class)
            .count();
        let label = format!("{name}: {}", thousands(count));
        assert!(svg.contains(&label), "SVG lacks {label:?}");
    }
    assert!(svg.contains("van route (1)"));
    assert!(svg.contains("east (m)") && svg.contains("north (m)"));
    // Under the cap, every meter is a dot (plus one per legend row).
    assert_eq!(svg.matches("<circle").count(), points.len() + CLASSES.len());
    assert_eq!(png_size(&png), MAP_SIZE);
}

#[test]
fn text_is_escaped_in_svg() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("escaped");
    let points = city(10, 100.0);
    write_map(
        &stem,
        "otavan & <LoRaWAN>",
        &["ok & good", "\"bad\""],
        &points,
        &[],
    )
    .unwrap();
    let (svg, _) = read_pair(&stem);
    assert_svg(&svg);
    assert!(svg.contains("otavan &amp; &lt;LoRaWAN&gt;"));
    assert!(!svg.contains("<LoRaWAN>"));
}

#[test]
fn output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let points = city(30_000, 8_000.0);
    let route = [(0.0, 0.0), (4_000.0, 2_000.0), (8_000.0, 500.0)];
    let van = curve(0.1, 100.0);
    let series = [ProgressSeries {
        label: "otavan van",
        points: &van,
    }];
    let mut outputs = Vec::new();
    for name in ["a", "b"] {
        let map = dir.path().join(format!("map-{name}"));
        let progress = dir.path().join(format!("progress-{name}"));
        write_map(&map, "City", &CLASSES, &points, &[&route]).unwrap();
        write_progress(&progress, "Progress", &series).unwrap();
        outputs.push((read_pair(&map), read_pair(&progress)));
    }
    assert!(outputs[0] == outputs[1], "two runs gave different files");
    // And the same stem written again is identical too.
    let stem = dir.path().join("map-a");
    write_map(&stem, "City", &CLASSES, &points, &[&route]).unwrap();
    assert!(read_pair(&stem) == outputs[0].0);
}

#[test]
fn large_maps_cap_the_svg_but_count_every_meter() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("big");
    let points = city(100_000, 12_000.0);
    write_map(&stem, "Big city", &CLASSES, &points, &[]).unwrap();
    let (svg, png) = read_pair(&stem);
    assert_svg(&svg);
    let dots = svg.matches("<circle").count() - CLASSES.len();
    assert!(dots <= SVG_POINT_CAP, "{dots} dots");
    assert!(dots > SVG_POINT_CAP * 3 / 4, "only {dots} dots");
    assert!(
        svg.contains("the SVG shows every 6th meter of each outcome"),
        "no sampling note"
    );
    assert!(svg.contains(&format!("{} dots", thousands(dots))));
    assert!(svg.contains("100,000 meters"));
    assert!(svg.contains("east (km)"));
    for (class, name) in CLASSES.iter().enumerate() {
        let count = points
            .iter()
            .filter(|p| usize::from(p.class) == class)
            .count();
        assert!(svg.contains(&format!("{name}: {}", thousands(count))));
    }
    assert!(svg.len() < 4 << 20, "SVG is {} bytes", svg.len());
    assert_eq!(png_size(&png), MAP_SIZE);
}

#[test]
fn a_dense_png_does_not_depend_on_the_order_of_the_meters() {
    let dir = tempfile::tempdir().unwrap();
    let mut points = city(SVG_POINT_CAP + 5_000, 2_000.0);
    let forward = dir.path().join("forward");
    write_map(&forward, "City", &CLASSES, &points, &[]).unwrap();
    points.reverse();
    let backward = dir.path().join("backward");
    write_map(&backward, "City", &CLASSES, &points, &[]).unwrap();
    assert!(read_pair(&forward).1 == read_pair(&backward).1);
}

#[test]
fn empty_and_degenerate_inputs_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);

    write_progress(&at("p-none"), "No series", &[]).unwrap();
    write_progress(
        &at("p-empty"),
        "Empty series",
        &[ProgressSeries {
            label: "otavan van",
            points: &[],
        }],
    )
    .unwrap();
    write_progress(
        &at("p-one"),
        "One point",
        &[ProgressSeries {
            label: "otavan van",
            points: &[(5.0, 0.5)],
        }],
    )
    .unwrap();
    write_progress(
        &at("p-flat"),
        "Same time",
        &[ProgressSeries {
            label: "otavan van",
            points: &[(2.0, 0.0), (2.0, 1.0)],
        }],
    )
    .unwrap();

    write_map(&at("m-none"), "Nothing", &[], &[], &[]).unwrap();
    write_map(&at("m-classes"), "No meters", &CLASSES, &[], &[&[]]).unwrap();
    let one = [MapPoint {
        x: 10.0,
        y: 20.0,
        class: 1,
    }];
    write_map(
        &at("m-one"),
        "One meter",
        &CLASSES,
        &one,
        &[&[(10.0, 20.0)]],
    )
    .unwrap();
    let same = vec![
        MapPoint {
            x: 1e6,
            y: -3e5,
            class: 0,
        };
        50_000
    ];
    write_map(&at("m-same"), "All in one place", &CLASSES, &same, &[]).unwrap();
    let line = [(0.0, 5.0), (100.0, 5.0)];
    write_map(&at("m-line"), "A route only", &CLASSES, &[], &[&line]).unwrap();
    // A class index past the names is drawn and counted under its index.
    let stray = [MapPoint {
        x: 0.0,
        y: 0.0,
        class: 7,
    }];
    write_map(&at("m-stray"), "Stray class", &CLASSES, &stray, &[]).unwrap();

    for name in [
        "p-none",
        "p-empty",
        "p-one",
        "p-flat",
        "m-none",
        "m-classes",
        "m-one",
        "m-same",
        "m-line",
        "m-stray",
    ] {
        let (svg, png) = read_pair(&at(name));
        assert_svg(&svg);
        let size = if name.starts_with('p') {
            PROGRESS_SIZE
        } else {
            MAP_SIZE
        };
        assert_eq!(png_size(&png), size, "{name}");
    }
    let (svg, _) = read_pair(&at("p-none"));
    assert!(svg.contains("no data"));
    let (svg, _) = read_pair(&at("m-stray"));
    assert!(svg.contains("class 7: 1 (100.0 %)"));
}

#[test]
fn a_missing_directory_is_an_io_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("no-such-dir").join("map");
    let err = write_map(&stem, "x", &CLASSES, &[], &[]).unwrap_err();
    match &err {
        PlotError::Io { path, .. } => assert_eq!(path, &file(&stem, "svg")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(err.to_string().contains("map.svg"), "{err}");
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
