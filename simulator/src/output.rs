//! Writing a rehearsal's results: `report.json`, `meters.csv`, the
//! effective `scenario.toml`, and the plots `progress.{svg,png}` and
//! `map.{svg,png}`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::Rehearsal;
use crate::plot::{self, MapPoint, PlotError, ProgressSeries};
use crate::report::{outcome_name, progress_curve, write_meters_csv};
use crate::scenario::Scenario;

/// Why the results could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Most points a progress line keeps (evenly spaced, always the last).
const CURVE_POINTS: usize = 2000;

/// Writes every output file into `dir` (created if needed) and returns
/// their paths.
///
/// # Errors
///
/// [`OutputError`] naming the file.
pub fn write(
    dir: &Path,
    scenario: &Scenario,
    run: &Rehearsal,
) -> Result<Vec<PathBuf>, OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();

    let path = dir.join("report.json");
    let mut json = serde_json::to_vec_pretty(&run.report).expect("the report serialises");
    json.push(b'\n');
    std::fs::write(&path, json).map_err(io(&path))?;
    written.push(path);

    let path = dir.join("meters.csv");
    let file = File::create(&path).map_err(io(&path))?;
    let mut out = BufWriter::new(file);
    write_meters_csv(&mut out, &run.fleet, &run.radio, &run.run, &run.losses).map_err(io(&path))?;
    out.flush().map_err(io(&path))?;
    written.push(path);

    let path = dir.join("scenario.toml");
    let text = toml::to_string(scenario).expect("the scenario serialises");
    std::fs::write(&path, text).map_err(io(&path))?;
    written.push(path);

    let hours = |curve: &[(f64, f64)]| -> Vec<(f64, f64)> {
        thin(curve).iter().map(|(t, f)| (t / 3600.0, *f)).collect()
    };
    let horizon = scenario.campaign.duration_days * 86_400.0;
    let van = hours(&until(progress_curve(&run.run.meters), horizon));
    let fuota = hours(&until(steps(&run.fuota.curve), horizon));
    let fuota_label = format!("LoRaWAN FUOTA (SF{}, multicast)", run.fuota.sf);
    let stem = dir.join("progress");
    plot::write_progress(
        &stem,
        &format!(
            "{}: meters at {}",
            run.report.scenario, run.report.release.target
        ),
        &[
            ProgressSeries {
                label: "otavan van",
                points: &van,
            },
            ProgressSeries {
                label: &fuota_label,
                points: &fuota,
            },
        ],
    )?;
    written.push(stem.with_extension("svg"));
    written.push(stem.with_extension("png"));

    let mut classes: Vec<&str> = run
        .run
        .meters
        .iter()
        .map(|r| outcome_name(&r.outcome))
        .collect();
    classes.sort_unstable_by_key(|name| (class_rank(name), *name));
    classes.dedup();
    let points: Vec<MapPoint> = run
        .fleet
        .meters
        .iter()
        .zip(&run.run.meters)
        .map(|(spec, r)| MapPoint {
            x: spec.pos.x,
            y: spec.pos.y,
            class: classes
                .iter()
                .position(|c| *c == outcome_name(&r.outcome))
                .unwrap_or(0) as u8,
        })
        .collect();
    let routes: Vec<Vec<(f64, f64)>> = run
        .drives
        .routes
        .iter()
        .map(|r| r.iter().map(|p| (p.x, p.y)).collect())
        .collect();
    let route_refs: Vec<&[(f64, f64)]> = routes.iter().map(Vec::as_slice).collect();
    let stem = dir.join("map");
    plot::write_map(
        &stem,
        &format!("{}: outcome per meter, van routes", run.report.scenario),
        &classes,
        &points,
        &route_refs,
    )?;
    written.push(stem.with_extension("svg"));
    written.push(stem.with_extension("png"));
    Ok(written)
}

/// Updated first, already current second, failures after.
fn class_rank(name: &str) -> u8 {
    match name {
        "updated" => 0,
        "already_current" => 1,
        _ => 2,
    }
}

/// At most [`CURVE_POINTS`] points of `curve`, evenly spaced, the last
/// always kept.
fn thin(curve: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if curve.len() <= CURVE_POINTS {
        return curve.to_vec();
    }
    let step = curve.len().div_ceil(CURVE_POINTS);
    let mut out: Vec<(f64, f64)> = curve.iter().step_by(step).copied().collect();
    if let Some(last) = curve.last()
        && out.last() != Some(last)
    {
        out.push(*last);
    }
    out
}

/// `curve` held at its last value until `horizon` (if it ends before).
fn until(mut curve: Vec<(f64, f64)>, horizon: f64) -> Vec<(f64, f64)> {
    if let Some(&(t, f)) = curve.last()
        && t < horizon
    {
        curve.push((horizon, f));
    }
    curve
}

/// A step function from its jump points: hold each value until the next.
fn steps(curve: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(curve.len() * 2);
    for (i, &(t, f)) in curve.iter().enumerate() {
        if i > 0 {
            out.push((t, curve[i - 1].1));
        }
        out.push((t, f));
    }
    out
}
