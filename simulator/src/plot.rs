//! Charts of a rehearsal (SVG and PNG).
//!
//! Two charts, each written as `<stem>.svg` and `<stem>.png` with
//! [`plotters`]:
//!
//! - [`write_progress`]: the fraction of meters updated over time, one line
//!   per delivery method, with guide lines at 50, 90 and 99 %;
//! - [`write_map`]: every meter as a dot coloured by its outcome, with the
//!   vans' routes on top, 1 m east drawn as long as 1 m north.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary
//! (`simulator/assets/DejaVuSans.ttf`, licence beside it): no system font is
//! looked up or needed. The PNG is rasterised here; the SVG carries the
//! font as an `@font-face` data URL (about 1 MB), so every viewer draws
//! the same glyphs.
//!
//! Output is deterministic: the same inputs give byte-identical files.
//!
//! The PNG of a map shows every meter, however many. The SVG stays small:
//! above [`SVG_POINT_CAP`] meters it draws every `k`-th meter of each outcome
//! class (in input order), `k` the smallest that keeps at most
//! [`SVG_POINT_CAP`] dots, so each class keeps its share and every class
//! with a meter shows at least one; its subtitle says so. Legend counts are
//! always of all meters.

use std::error::Error as StdError;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

/// Size in pixels (width, height) of the progress chart, in both formats.
pub const PROGRESS_SIZE: (u32, u32) = (1000, 600);

/// Size in pixels (width, height) of the map, in both formats.
pub const MAP_SIZE: (u32, u32) = (1200, 1000);

/// Most meter dots an SVG map draws; above it the SVG shows an aggregate.
pub const SVG_POINT_CAP: usize = 20_000;

/// Colours (red, green, blue) of series and outcome classes: series or class
/// `i` is drawn in `PALETTE[i % PALETTE.len()]` (Tableau 10).
pub const PALETTE: [(u8, u8, u8); 10] = [
    (0x4E, 0x79, 0xA7), // blue
    (0xF2, 0x8E, 0x2B), // orange
    (0xE1, 0x57, 0x59), // red
    (0x76, 0xB7, 0xB2), // teal
    (0x59, 0xA1, 0x4F), // green
    (0xED, 0xC9, 0x48), // yellow
    (0xB0, 0x7A, 0xA1), // purple
    (0xFF, 0x9D, 0xA7), // pink
    (0x9C, 0x75, 0x5F), // brown
    (0xBA, 0xB0, 0xAC), // grey
];

/// The embedded font (DejaVu Sans 2.37, Bitstream Vera / Arev licence).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name the embedded font is registered under; the SVG backend
/// writes it as the `font-family` of its text.
const FAMILY: &str = "DejaVu Sans, sans-serif";

/// Hours above which the progress chart's time axis is in days.
const DAYS_ABOVE_HOURS: f64 = 72.0;

/// Extents (in metres) above which the map's axes are in kilometres.
const KM_ABOVE_METRES: f64 = 5_000.0;

/// Height of the title band, in pixels.
const TITLE_H: u32 = 44;

/// Height of the subtitle band of the map, in pixels.
const SUBTITLE_H: u32 = 24;

/// Width of the legend panel on the right of the map, in pixels.
const LEGEND_W: u32 = 300;

const ROUTE_COLOR: RGBColor = RGBColor(0x1A, 0x1A, 0x1A);
const GUIDE_COLOR: RGBColor = RGBColor(0x80, 0x80, 0x80);
const SUBTLE_TEXT: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID_COLOR: RGBColor = RGBColor(0xEB, 0xEB, 0xEB);
const AXIS_COLOR: RGBColor = RGBColor(0x40, 0x40, 0x40);

/// One line on the progress chart: x in hours since the campaign start, y the
/// fraction updated (0..=1).
#[derive(Debug, Clone, Copy)]
pub struct ProgressSeries<'a> {
    /// Name in the legend, e.g. "otavan van" or "LoRaWAN FUOTA baseline".
    pub label: &'a str,
    /// (hours since the campaign start, fraction of meters updated), in
    /// drawing order (normally by time).
    pub points: &'a [(f64, f64)],
}

/// One meter on the map: position in metres (x east, y north) and an outcome
/// class (index into the `classes` of [`write_map`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPoint {
    /// Metres east of any fixed origin.
    pub x: f64,
    /// Metres north of the same origin.
    pub y: f64,
    /// Outcome class: index into `classes`. An index past its end is drawn
    /// and counted as a class of its own, named `class <index>`.
    pub class: u8,
}

/// Why a chart could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Writing the file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Drawing (or, for a PNG, encoding and saving) the chart failed.
    #[error("cannot draw {}: {source}", path.display())]
    Draw {
        /// The file being drawn.
        path: PathBuf,
        /// What the drawing library said.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The embedded font could not be loaded (a build defect).
    #[error("the embedded chart font could not be loaded")]
    Font,
}

/// Writes `<stem>.svg` and `<stem>.png`: the fraction of meters updated over
/// time, one line per series (e.g. "otavan van" vs "LoRaWAN FUOTA baseline"),
/// with horizontal guide lines at 50/90/99 %, axis labels, a legend and a
/// title.
///
/// The time axis is in hours, or in days when the data spans more than 72
/// hours. `<stem>` gets the extensions appended (`out/run.1` gives
/// `out/run.1.svg`); its directory must exist. Both images are
/// [`PROGRESS_SIZE`] pixels.
pub fn write_progress(
    stem: &Path,
    title: &str,
    series: &[ProgressSeries<'_>],
) -> Result<(), PlotError> {
    let chart = ProgressChart { title, series };
    write_both(stem, PROGRESS_SIZE, &chart)
}

/// Writes `<stem>.svg` and `<stem>.png`: meters as dots coloured by outcome
/// class (legend with class names and counts), van routes (each a list of
/// (x, y) metres) as polylines on top, at equal scale east and north, with a
/// title.
///
/// Up to [`SVG_POINT_CAP`] meters, each is a dot in both files, drawn most
/// common class first so that rare outcomes (failures) stay visible on top.
/// Above it, the PNG draws every meter as a square of 2 or 3 pixels, a pixel
/// covered by several meters taking their mean colour, and the SVG draws a
/// sample (see the [module documentation](self)). Axes are in metres, or
/// kilometres for extents above 5 km. Both images are [`MAP_SIZE`] pixels.
pub fn write_map(
    stem: &Path,
    title: &str,
    classes: &[&str],
    points: &[MapPoint],
    routes: &[&[(f64, f64)]],
) -> Result<(), PlotError> {
    let chart = MapChart::new(title, classes, points, routes);
    write_both(stem, MAP_SIZE, &chart)
}

// ---------------------------------------------------------------------------
// Common machinery
// ---------------------------------------------------------------------------

/// Which file is being drawn: the charts differ slightly (SVG point cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

/// A chart that can draw itself on any plotters backend.
trait Chart {
    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Registers the embedded font with plotters, once per process.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // "sans-serif" too, for any text plotters styles by default.
        register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
            && register_font("sans-serif", FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// `stem` with `.ext` appended (not replacing an extension `stem` has).
fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn draw_error<E: StdError + Send + Sync + 'static>(path: &Path, e: E) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Draws `chart` twice: into `<stem>.svg`, then `<stem>.png`.
fn write_both(stem: &Path, size: (u32, u32), chart: &impl Chart) -> Result<(), PlotError> {
    ensure_font()?;

    let svg_path = with_extension(stem, "svg");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart
            .render(&root, Format::Svg)
            .and_then(|()| root.present())
            .map_err(|e| draw_error(&svg_path, e))?;
    }
    let svg = embed_font(&svg);
    std::fs::write(&svg_path, svg).map_err(|source| PlotError::Io {
        path: svg_path.clone(),
        source,
    })?;

    let png_path = with_extension(stem, "png");
    let root = BitMapBackend::new(&png_path, size).into_drawing_area();
    chart
        .render(&root, Format::Png)
        .and_then(|()| root.present())
        .map_err(|e| draw_error(&png_path, e))?;
    Ok(())
}

/// `svg` with the embedded font as an `@font-face` data URL right after
/// the opening `<svg>` tag, so viewers draw the text with the same font as
/// the PNG instead of whatever fonts their system has.
fn embed_font(svg: &str) -> String {
    use base64::Engine as _;
    let Some(open_end) = svg
        .find("<svg")
        .and_then(|at| svg[at..].find('>').map(|e| at + e + 1))
    else {
        return svg.to_string();
    };
    let data = base64::engine::general_purpose::STANDARD.encode(FONT_BYTES);
    format!(
        "{}\n<defs><style>@font-face {{ font-family: \"{FAMILY}\"; src: url(data:font/ttf;base64,{data}) format(\"truetype\"); }}</style></defs>{}",
        &svg[..open_end],
        &svg[open_end..]
    )
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

fn palette(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `n` with thousands separated by commas: 1234567 → "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 21st, …
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A tick label formatter for an axis over `range` with at most 10 ticks:
/// as many decimals as the tick step needs, the same for every tick.
fn tick_formatter(range: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
    let step = (range.end - range.start).abs() / 10.0;
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    } else {
        0
    };
    move |v: &f64| {
        let text = format!("{v:.decimals$}");
        // No "-0" for a tick at zero less a rounding error.
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_owned()
        } else {
            text
        }
    }
}

/// Draws `text` centred in `band`.
fn centred_text<DB: DrawingBackend>(
    band: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle<'_>,
) -> DrawResult<DB> {
    let (w, h) = band.dim_in_pixel();
    let style = style.pos(Pos::new(HPos::Center, VPos::Center));
    band.draw_text(text, &style, (w as i32 / 2, h as i32 / 2))
}

/// The points of a line, less each point that falls on the same pixel as the
/// point kept before it: the drawing is the same, the SVG smaller.
fn dedup_pixels(
    points: impl IntoIterator<Item = (f64, f64)>,
    to_pixel: impl Fn(&(f64, f64)) -> (i32, i32),
) -> Vec<(f64, f64)> {
    let mut kept = Vec::new();
    let mut last = None;
    for p in points {
        if !(p.0.is_finite() && p.1.is_finite()) {
            continue;
        }
        let px = to_pixel(&p);
        if last != Some(px) {
            kept.push(p);
            last = Some(px);
        }
    }
    kept
}

/// Smallest and largest of `values` (finite ones only), if any.
fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

// ---------------------------------------------------------------------------
// Progress chart
// ---------------------------------------------------------------------------

struct ProgressChart<'a, 'b> {
    title: &'a str,
    series: &'a [ProgressSeries<'b>],
}

impl ProgressChart<'_, '_> {
    /// The x range (in the axis unit), the axis unit's name and hours per unit.
    fn time_axis(&self) -> (Range<f64>, &'static str, f64) {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let (lo, hi) = extent(xs).unwrap_or((0.0, 1.0));
        let lo = lo.min(0.0);
        let hi = if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
            hi
        } else {
            lo + 1.0
        };
        if hi - lo > DAYS_ABOVE_HOURS {
            (lo / 24.0..hi / 24.0, "days", 24.0)
        } else {
            (lo..hi, "hours", 1.0)
        }
    }

    /// Where the legend covers the fewest data points: upper left or lower
    /// right (the corners that progress curves normally leave empty).
    fn legend_position(&self, xr: &Range<f64>, yr: &Range<f64>, per: f64) -> SeriesLabelPosition {
        let (w, h) = (xr.end - xr.start, yr.end - yr.start);
        let count = |left: bool, top: bool| {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|(x, y)| {
                    let fx = (x / per - xr.start) / w;
                    let fy = (y - yr.start) / h;
                    let in_x = if left { fx <= 0.4 } else { fx >= 0.6 };
                    let in_y = if top { fy >= 0.7 } else { fy <= 0.3 };
                    in_x && in_y
                })
                .count()
        };
        if count(false, false) < count(true, true) {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperLeft
        }
    }
}

impl Chart for ProgressChart<'_, '_> {
    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _: Format,
    ) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (title_band, body) = root.split_vertically(TITLE_H);
        centred_text(&title_band, self.title, &font(24.0))?;

        let (xr, unit, per) = self.time_axis();
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        let (ylo, yhi) = extent(ys).unwrap_or((0.0, 1.0));
        let yr = ylo.min(0.0)..yhi.max(1.0);

        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(xr.clone(), yr.clone())?;
        let x_labels = tick_formatter(&xr);
        chart
            .configure_mesh()
            .x_desc(format!("time since campaign start ({unit})"))
            .x_label_formatter(&x_labels)
            .y_desc("meters updated")
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .label_style(font(14.0))
            .axis_desc_style(font(15.0))
            .axis_style(AXIS_COLOR)
            .bold_line_style(GRID_COLOR)
            .light_line_style(TRANSPARENT)
            .draw()?;

        // Guide lines, labelled at their right end.
        let plot = chart.plotting_area().clone();
        let guide_label = font(12.0)
            .color(&GUIDE_COLOR)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        for (level, label) in [(0.5, "50 %"), (0.9, "90 %"), (0.99, "99 %")] {
            chart.draw_series(DashedLineSeries::new(
                [(xr.start, level), (xr.end, level)],
                6,
                4,
                GUIDE_COLOR.stroke_width(1),
            ))?;
            let (px, py) = plot.map_coordinate(&(xr.end, level));
            root.draw_text(label, &guide_label, (px - 4, py - 2))?;
        }

        let mut any_point = false;
        for (i, s) in self.series.iter().enumerate() {
            let color = palette(i);
            let line = dedup_pixels(s.points.iter().map(|&(x, y)| (x / per, y)), |p| {
                plot.map_coordinate(p)
            });
            any_point |= !line.is_empty();
            let anno = if line.len() == 1 {
                chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))?
            } else {
                chart.draw_series(LineSeries::new(line, color.stroke_width(2)))?
            };
            anno.label(s.label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }

        if !any_point {
            centred_text(
                &plot.strip_coord_spec(),
                "no data",
                &font(18.0).color(&SUBTLE_TEXT),
            )?;
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .position(self.legend_position(&xr, &yr, per))
                .margin(12)
                .legend_area_size(28)
                .label_font(font(14.0))
                .background_style(WHITE.mix(0.9))
                .border_style(AXIS_COLOR)
                .draw()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Map
// ---------------------------------------------------------------------------

struct MapChart<'a, 'b> {
    title: &'a str,
    classes: &'a [&'a str],
    points: &'a [MapPoint],
    routes: &'a [&'b [(f64, f64)]],
    /// Meters per class; as long as the largest of `classes.len()` and the
    /// largest class index used plus one.
    counts: Vec<usize>,
    /// Indices into `points`, most common class first (ties: lower class
    /// first), input order within a class.
    order: Vec<u32>,
}

impl<'a, 'b> MapChart<'a, 'b> {
    fn new(
        title: &'a str,
        classes: &'a [&'a str],
        points: &'a [MapPoint],
        routes: &'a [&'b [(f64, f64)]],
    ) -> Self {
        let mut counts = vec![0usize; classes.len()];
        for p in points {
            let c = usize::from(p.class);
            if c >= counts.len() {
                counts.resize(c + 1, 0);
            }
            counts[c] += 1;
        }
        // Counting sort of the points by the rank of their class.
        let mut by_rank: Vec<usize> = (0..counts.len()).collect();
        by_rank.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let mut start = vec![0usize; counts.len()];
        let mut next = 0;
        for &c in &by_rank {
            start[c] = next;
            next += counts[c];
        }
        let mut order = vec![0u32; points.len()];
        for (i, p) in points.iter().enumerate() {
            let slot = &mut start[usize::from(p.class)];
            // Indices fit: a u32 holds 4 billion meters.
            order[*slot] = i as u32;
            *slot += 1;
        }
        Self {
            title,
            classes,
            points,
            routes,
            counts,
            order,
        }
    }

    fn class_name(&self, class: usize) -> String {
        match self.classes.get(class) {
            Some(name) => (*name).to_owned(),
            None => format!("class {class}"),
        }
    }

    /// Extent in metres of the meters and routes: (x range, y range).
    fn extent_m(&self) -> Option<((f64, f64), (f64, f64))> {
        let route_points = || self.routes.iter().flat_map(|r| r.iter());
        let xs = self
            .points
            .iter()
            .map(|p| p.x)
            .chain(route_points().map(|p| p.0));
        let ys = self
            .points
            .iter()
            .map(|p| p.y)
            .chain(route_points().map(|p| p.1));
        Some((extent(xs)?, extent(ys)?))
    }

    /// The axis unit's name, metres per unit and the (x, y) ranges in that
    /// unit, padded, for a plotting area of `plot_px` pixels at equal scale.
    fn axes(&self, plot_px: (u32, u32)) -> (&'static str, f64, Range<f64>, Range<f64>) {
        let ((x0, x1), (y0, y1)) = self.extent_m().unwrap_or(((0.0, 0.0), (0.0, 0.0)));
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let (mut dx, mut dy) = (x1 - x0, y1 - y0);
        if dx.max(dy) <= 1e-9 * cx.abs().max(cy.abs()).max(1.0) {
            // One place only: show 100 m around it.
            dx = 100.0;
            dy = 100.0;
        }
        let (unit, per) = if dx.max(dy) > KM_ABOVE_METRES {
            ("km", 1000.0)
        } else {
            ("m", 1.0)
        };
        let pw = f64::from(plot_px.0.max(1));
        let ph = f64::from(plot_px.1.max(1));
        // Units per pixel, with a 4 % margin on each side.
        let scale = (dx / pw).max(dy / ph) * 1.08 / per;
        let (cx, cy) = (cx / per, cy / per);
        let (hw, hh) = (scale * pw / 2.0, scale * ph / 2.0);
        (unit, per, cx - hw..cx + hw, cy - hh..cy + hh)
    }
}

type MapCoord = Cartesian2d<RangedCoordf64, RangedCoordf64>;

impl Chart for MapChart<'_, '_> {
    fn render<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (title_band, rest) = root.split_vertically(TITLE_H);
        let (subtitle_band, rest) = rest.split_vertically(SUBTITLE_H);
        let (width, _) = rest.dim_in_pixel();
        let (map_area, legend_area) = rest.split_horizontally(width.saturating_sub(LEGEND_W));
        centred_text(&title_band, self.title, &font(24.0))?;

        let build = |xr: Range<f64>, yr: Range<f64>| {
            ChartBuilder::on(&map_area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(72)
                .build_cartesian_2d(xr, yr)
        };
        // Build once to learn the plotting area's size (nothing is drawn),
        // then for real with ranges at equal scale for that size.
        let plot_px = build(0.0..1.0, 0.0..1.0)?.plotting_area().dim_in_pixel();
        let (unit, per, xr, yr) = self.axes(plot_px);
        let (x_labels, y_labels) = (tick_formatter(&xr), tick_formatter(&yr));
        let mut chart = build(xr, yr)?;
        debug_assert_eq!(chart.plotting_area().dim_in_pixel(), plot_px);
        chart
            .configure_mesh()
            .x_label_formatter(&x_labels)
            .y_label_formatter(&y_labels)
            .x_desc(format!("east ({unit})"))
            .y_desc(format!("north ({unit})"))
            .label_style(font(14.0))
            .axis_desc_style(font(15.0))
            .axis_style(AXIS_COLOR)
            .bold_line_style(GRID_COLOR)
            .light_line_style(TRANSPARENT)
            .draw()?;
        let plot = chart.plotting_area().clone();

        let n = self.points.len();
        let mut note = format!(
            "{} meter{}, {} van route{}",
            thousands(n),
            if n == 1 { "" } else { "s" },
            thousands(self.routes.len()),
            if self.routes.len() == 1 { "" } else { "s" },
        );
        if n <= SVG_POINT_CAP {
            let radius = if n <= 2_000 { 4 } else { 2 };
            self.draw_dots(&plot, per, radius, self.order.iter().copied())?;
        } else if format == Format::Png {
            note.push_str("; where meters overlap, a pixel shows their mean colour");
            self.draw_pixels(root, &plot, per)?;
        } else {
            let (k, shown) = self.svg_sample();
            note.push_str(&format!(
                "; the SVG shows every {} meter of each outcome \
                 ({} dots; the PNG shows all)",
                ordinal(k),
                thousands(shown.len())
            ));
            self.draw_dots(&plot, per, 2, shown.into_iter())?;
        }
        centred_text(&subtitle_band, &note, &font(15.0).color(&SUBTLE_TEXT))?;

        self.draw_routes(&plot, per)?;
        self.draw_legend(&legend_area)
    }
}

impl MapChart<'_, '_> {
    fn coord(&self, i: u32, per: f64) -> (f64, f64) {
        let p = &self.points[i as usize];
        (p.x / per, p.y / per)
    }

    /// Filled circles for the meters `indices`.
    fn draw_dots<DB: DrawingBackend>(
        &self,
        plot: &DrawingArea<DB, MapCoord>,
        per: f64,
        radius: i32,
        indices: impl Iterator<Item = u32>,
    ) -> DrawResult<DB> {
        for i in indices {
            let color = palette(usize::from(self.points[i as usize].class));
            plot.draw(&Circle::new(self.coord(i, per), radius, color.filled()))?;
        }
        Ok(())
    }

    /// Every meter as a small square of pixels, straight into the bitmap.
    /// Where squares overlap, the pixel takes the mean colour of the meters
    /// covering it: a dense district shows its mix of outcomes in proportion
    /// (whatever order the meters come in), a cluster of failures stands out.
    fn draw_pixels<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        plot: &DrawingArea<DB, MapCoord>,
        per: f64,
    ) -> DrawResult<DB> {
        let side = if self.points.len() <= 200_000 { 3 } else { 2 };
        let lo = -(side - 1) / 2;
        let (xs, ys) = plot.get_pixel_range();
        let width = xs.len();
        // Per pixel of the plotting area: sums of red, green, blue, count.
        let mut sums = vec![[0u32; 4]; width * ys.len()];
        for p in self.points {
            let (cx, cy) = plot.map_coordinate(&(p.x / per, p.y / per));
            let (r, g, b) = PALETTE[usize::from(p.class) % PALETTE.len()];
            for y in (cy + lo..cy + lo + side).filter(|y| ys.contains(y)) {
                let row = (y - ys.start) as usize * width;
                for x in (cx + lo..cx + lo + side).filter(|x| xs.contains(x)) {
                    let sum = &mut sums[row + (x - xs.start) as usize];
                    sum[0] += u32::from(r);
                    sum[1] += u32::from(g);
                    sum[2] += u32::from(b);
                    sum[3] += 1;
                }
            }
        }
        let mean = |total: u32, n: u32| ((total + n / 2) / n) as u8;
        for (i, sum) in sums.iter().enumerate().filter(|(_, s)| s[3] > 0) {
            let n = sum[3];
            let color = RGBColor(mean(sum[0], n), mean(sum[1], n), mean(sum[2], n));
            let (x, y) = ((i % width) as i32, (i / width) as i32);
            root.draw_pixel((xs.start + x, ys.start + y), &color)?;
        }
        Ok(())
    }

    /// The meters the SVG shows when there are more than [`SVG_POINT_CAP`]:
    /// every `k`-th meter of each class (in input order, starting with the
    /// first), with `k` the smallest that keeps at most the cap. Each class
    /// keeps its share of the dots, and a class with any meter at least one.
    fn svg_sample(&self) -> (usize, Vec<u32>) {
        let classes_used = self.counts.iter().filter(|&&c| c > 0).count();
        let budget = SVG_POINT_CAP.saturating_sub(classes_used).max(1);
        let mut k = self.points.len().div_ceil(budget).max(1);
        loop {
            let shown: usize = self.counts.iter().map(|c| c.div_ceil(k)).sum();
            if shown <= SVG_POINT_CAP || shown <= classes_used {
                break;
            }
            k += 1;
        }
        let mut sample = Vec::with_capacity(SVG_POINT_CAP);
        let mut start = 0;
        for &count in self.counts_by_rank().iter() {
            sample.extend(self.order[start..start + count].iter().step_by(k));
            start += count;
        }
        (k, sample)
    }

    /// The class counts in drawing order (the order `order` groups them in).
    fn counts_by_rank(&self) -> Vec<usize> {
        let mut counts = self.counts.clone();
        counts.sort_by(|a, b| b.cmp(a));
        counts
    }

    /// The routes, dark on a white halo, over the meters.
    fn draw_routes<DB: DrawingBackend>(
        &self,
        plot: &DrawingArea<DB, MapCoord>,
        per: f64,
    ) -> DrawResult<DB> {
        for route in self.routes {
            let line = dedup_pixels(route.iter().map(|&(x, y)| (x / per, y / per)), |p| {
                plot.map_coordinate(p)
            });
            match line.len() {
                0 => {}
                1 => {
                    plot.draw(&Circle::new(line[0], 5, WHITE.filled()))?;
                    plot.draw(&Circle::new(line[0], 3, ROUTE_COLOR.filled()))?;
                }
                _ => {
                    plot.draw(&PathElement::new(line.clone(), WHITE.stroke_width(5)))?;
                    plot.draw(&PathElement::new(line, ROUTE_COLOR.stroke_width(2)))?;
                }
            }
        }
        Ok(())
    }

    /// The legend panel: one row per class (name, count, share), then routes.
    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        const ROW: i32 = 26;
        let left = 8;
        let mut y = 24;
        let text = font(14.0).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(
            "outcome",
            &font(16.0).pos(Pos::new(HPos::Left, VPos::Center)),
            (left, y),
        )?;
        y += ROW + 4;
        let total = self.points.len();
        for (class, &count) in self.counts.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 * 100.0 / total as f64
            };
            area.draw(&Circle::new((left + 7, y), 6, palette(class).filled()))?;
            let label = format!(
                "{}: {} ({share:.1} %)",
                self.class_name(class),
                thousands(count)
            );
            area.draw_text(&label, &text, (left + 22, y))?;
            y += ROW;
        }
        y += 8;
        area.draw(&PathElement::new(
            [(left, y), (left + 16, y)],
            ROUTE_COLOR.stroke_width(2),
        ))?;
        let routes = self.routes.len();
        let label = format!(
            "van route{} ({})",
            if routes == 1 { "" } else { "s" },
            thousands(routes)
        );
        area.draw_text(&label, &text, (left + 22, y))?;
        y += ROW;
        area.draw_text(
            &format!(
                "total: {} meter{}",
                thousands(total),
                if total == 1 { "" } else { "s" }
            ),
            &text.color(&SUBTLE_TEXT),
            (left, y),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separates_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 50, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "50th",
                "101st", "111th"
            ]
        );
    }

    #[test]
    fn the_svg_sample_keeps_every_class_and_the_cap() {
        let mut points = vec![
            MapPoint {
                x: 0.0,
                y: 0.0,
                class: 0,
            };
            95_000
        ];
        points.extend((0..4_999).map(|_| MapPoint {
            x: 1.0,
            y: 1.0,
            class: 1,
        }));
        points.push(MapPoint {
            x: 2.0,
            y: 2.0,
            class: 2,
        });
        let chart = MapChart::new("t", &["a", "b", "c"], &points, &[]);
        let (k, sample) = chart.svg_sample();
        assert!(sample.len() <= SVG_POINT_CAP, "{}", sample.len());
        assert_eq!(k, 6);
        let of = |class| {
            sample
                .iter()
                .filter(|&&i| points[i as usize].class == class)
                .count()
        };
        assert_eq!(
            (of(0), of(1), of(2)),
            (95_000usize.div_ceil(6), 4_999usize.div_ceil(6), 1)
        );
        // Rare classes last, so drawn on top.
        assert_eq!(points[*sample.last().unwrap() as usize].class, 2);
    }

    #[test]
    fn extension_is_appended() {
        assert_eq!(
            with_extension(Path::new("out/run.1"), "svg"),
            PathBuf::from("out/run.1.svg")
        );
    }

    #[test]
    fn embedded_font_loads() {
        ensure_font().unwrap();
        let svg = embed_font("<?xml version=\"1.0\"?>\n<svg width=\"1\"><text/></svg>");
        assert!(
            svg.contains("<svg width=\"1\">\n<defs><style>@font-face"),
            "{}",
            &svg[..80]
        );
        assert!(svg.ends_with("</style></defs><text/></svg>"));
    }

    #[test]
    fn rare_classes_are_drawn_last() {
        let points: Vec<MapPoint> = [0u8, 1, 0, 2, 0, 1]
            .iter()
            .map(|&class| MapPoint {
                x: 0.0,
                y: 0.0,
                class,
            })
            .collect();
        let chart = MapChart::new("t", &["a", "b"], &points, &[]);
        assert_eq!(chart.counts, vec![3, 2, 1]);
        assert_eq!(chart.order, vec![0, 2, 4, 1, 5, 3]);
        assert_eq!(chart.class_name(2), "class 2");
    }

    #[test]
    fn ticks_have_the_decimals_their_step_needs() {
        let f = tick_formatter(&(0.0..3000.0));
        assert_eq!(f(&2500.0), "2500");
        assert_eq!(f(&-1e-12), "0");
        let f = tick_formatter(&(0.0..0.5));
        assert_eq!(f(&0.05), "0.05");
        assert_eq!(f(&0.1), "0.10");
        let f = tick_formatter(&(-4.0..6.0));
        assert_eq!(f(&-2.0), "-2");
        let f = tick_formatter(&(1.0..1.0));
        assert_eq!(f(&1.0), "1");
    }
}
