//! The crew map's HTML section: an inline SVG (route, trace, meters, van)
//! with a legend, and the table of missed meters near the van.
//!
//! Every meter is one `<circle id="m{device id}" class="{state}">` (see
//! [`MeterState::class`]), so tests and the crew's tablet read states from
//! the DOM; coordinates are whole units to keep the page light (about
//! 60 bytes a meter: docs/benchmarks.md).

use std::fmt::Write;

use super::nearby::{RADIUS_M, missed_near};
use super::projection::{Projection, WIDTH};
use super::{CrewView, MeterState};
use crate::dashboard::{device_link, escape};
use otavan_store::VanFix;

/// The map's styles (in the section, so the dashboard's own stay as they are).
pub const STYLE: &str = "
#crew-map svg{width:100%;height:auto;background:#eef1f4;border-radius:6px}
#crew-map circle{r:5px;stroke:#fff;stroke-width:1}
#route{fill:none;stroke:#94a3b8;stroke-width:8;stroke-linejoin:round;opacity:.6}
#trace{fill:none;stroke:#1d4ed8;stroke-width:3;stroke-linejoin:round}
circle.done{fill:#16a34a}circle.in-progress{fill:#f59e0b}circle.failed{fill:#dc2626}
circle.not-reached{fill:#fff;stroke:#6b7280!important;stroke-width:2!important}
#crew-map circle#van{r:10px;fill:#1d4ed8;stroke:#fff;stroke-width:3}
.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
";

/// Most trace points drawn: a long shift's trace is drawn every n-th
/// point (and its last), so the page stays light.
pub const MAX_TRACE_POINTS: usize = 2000;

/// `points` as an SVG `points` attribute, a point landing on the one
/// before it left out.
fn points(projection: &Projection, points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut out = String::new();
    let mut last = None;
    for (lat, lon) in points {
        let xy = projection.xy(lat, lon);
        if last != Some(xy) {
            let _ = write!(out, "{},{} ", xy.0, xy.1);
            last = Some(xy);
        }
    }
    out.pop();
    out
}

/// At most [`MAX_TRACE_POINTS`] of `trace` (lat, lon), evenly spaced, the
/// first and the last included.
fn drawn_trace(trace: &[VanFix]) -> impl Iterator<Item = (f64, f64)> + '_ {
    let stride = trace.len().div_ceil(MAX_TRACE_POINTS).max(1);
    let last = trace.len().saturating_sub(1);
    trace
        .iter()
        .enumerate()
        .filter(move |(i, _)| i % stride == 0 || *i == last)
        .map(|(_, f)| (f.lat, f.lon))
}

/// The dashboard section for `view`.
pub fn section(view: &CrewView<'_>) -> String {
    let plan = view.plan;
    let mut out =
        format!("<section class=\"wide\" id=\"crew-map\"><style>{STYLE}</style><h2>Crew map</h2>");
    let extent = plan
        .meters
        .iter()
        .map(|m| (m.lat, m.lon))
        .chain(plan.route.iter().copied());
    let Some(projection) = Projection::fitting(extent) else {
        out.push_str("<p class=\"muted\">the plan has no meters</p></section>");
        return out;
    };
    out.push_str("<p class=\"legend\">");
    let swatch = |state: MeterState| match state {
        MeterState::Done => "#16a34a",
        MeterState::InProgress => "#f59e0b",
        MeterState::Failed => "#dc2626",
        MeterState::NotReached => "#9ca3af",
    };
    for state in MeterState::ALL {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{} <b id=\"map-{}\">{}</b></span>",
            swatch(state),
            state.class().replace('-', " "),
            state.class(),
            view.count(state)
        );
    }
    match &view.van {
        Some(fix) => {
            let _ = write!(
                out,
                "<span>van at <b id=\"van-position\">{:.5}, {:.5}</b> ({})</span>",
                fix.lat,
                fix.lon,
                humantime::format_rfc3339_seconds(fix.time)
            );
        }
        None => out.push_str("<span id=\"van-position\" class=\"muted\">no GPS fix</span>"),
    }
    let _ = write!(
        out,
        "</p><svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"crew map\">\
         <polyline id=\"route\" points=\"{}\"/><polyline id=\"trace\" points=\"{}\"/>",
        WIDTH,
        projection.height().round(),
        points(&projection, plan.route.iter().copied()),
        points(&projection, drawn_trace(view.trace)),
    );
    for (meter, state) in plan.meters.iter().zip(&view.states) {
        let (x, y) = projection.xy(meter.lat, meter.lon);
        let _ = write!(
            out,
            "<circle id=\"m{}\" class=\"{}\" cx=\"{x}\" cy=\"{y}\"/>",
            escape(&meter.device_id),
            state.class()
        );
    }
    if let Some(fix) = &view.van {
        let (x, y) = projection.xy(fix.lat, fix.lon);
        let _ = write!(out, "<circle id=\"van\" cx=\"{x}\" cy=\"{y}\"/>");
    }
    out.push_str("</svg>");
    missed_table(view, &mut out);
    out.push_str("</section>");
    out
}

/// The missed meters near the van, or why there are none.
fn missed_table(view: &CrewView<'_>, out: &mut String) {
    let _ = write!(out, "<h2>Missed within {RADIUS_M:.0} m of the van</h2>");
    let Some(van) = &view.van else {
        out.push_str("<p class=\"muted\">no GPS fix</p>");
        return;
    };
    let near = missed_near(view, van);
    if near.is_empty() {
        out.push_str("<p class=\"muted\" id=\"missed-near-none\">none</p>");
        return;
    }
    out.push_str(
        "<table id=\"missed-near\"><tr><th>meter</th><th>state</th><th>distance</th></tr>",
    );
    for n in near {
        let _ = write!(
            out,
            "<tr class=\"{0}\"><td>{1}</td><td>{2}</td><td class=\"num\">{3:.0} m</td></tr>",
            n.state.class(),
            device_link(&n.meter.device_id),
            n.state.class().replace('-', " "),
            n.metres
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crew_map::{CrewPlan, PlannedMeter};
    use std::time::SystemTime;

    #[test]
    fn a_long_trace_is_drawn_with_at_most_the_cap_its_ends_kept() {
        let fix = |i: usize| VanFix {
            lat: 52.37 + i as f64 * 1e-5,
            lon: 9.73,
            time: SystemTime::UNIX_EPOCH,
        };
        let trace: Vec<VanFix> = (0..5001).map(fix).collect();
        let drawn: Vec<(f64, f64)> = drawn_trace(&trace).collect();
        assert!(drawn.len() <= MAX_TRACE_POINTS + 1, "{}", drawn.len());
        assert!(drawn.len() > MAX_TRACE_POINTS / 2, "{}", drawn.len());
        assert_eq!(drawn[0], (fix(0).lat, fix(0).lon));
        assert_eq!(*drawn.last().unwrap(), (fix(5000).lat, fix(5000).lon));
        let short: Vec<(f64, f64)> = drawn_trace(&trace[..10]).collect();
        assert_eq!(short.len(), 10);
        // Points on the same map unit are drawn once.
        let p = Projection::fitting([(52.37, 9.73), (52.38, 9.74)].into_iter()).unwrap();
        let same = points(
            &p,
            [(52.37512, 9.73512), (52.375121, 9.735121), (52.38, 9.74)].into_iter(),
        );
        assert_eq!(same.split(' ').count(), 2, "{same}");
    }

    #[test]
    fn meters_route_trace_and_van_are_drawn_with_their_states() {
        let plan = CrewPlan {
            meters: vec![
                PlannedMeter {
                    device_id: "A1".into(),
                    lat: 52.3701,
                    lon: 9.7301,
                },
                PlannedMeter {
                    device_id: "<B2>".into(),
                    lat: 52.3719,
                    lon: 9.7399,
                },
            ],
            route: vec![(52.370, 9.730), (52.372, 9.740)],
        };
        let fix = VanFix {
            lat: 52.3702,
            lon: 9.7302,
            time: SystemTime::UNIX_EPOCH,
        };
        let latest = [("A1".to_owned(), "UPDATED".to_owned())];
        let trace = [fix];
        let html = section(&CrewView::new(&plan, &latest, &trace, Some(fix)));
        assert!(html.contains("<circle id=\"mA1\" class=\"done\""), "{html}");
        assert!(
            html.contains("<circle id=\"m&lt;B2&gt;\" class=\"not-reached\""),
            "{html}"
        );
        assert!(
            html.contains("<polyline id=\"route\" points=\"20,"),
            "{html}"
        );
        assert!(html.contains("<circle id=\"van\""), "{html}");
        assert!(html.contains("<b id=\"map-done\">1</b>"), "{html}");
        // A1 is done and B2 is 1 km away: nothing missed nearby.
        assert!(html.contains("missed-near-none"), "{html}");
        let without_fix = section(&CrewView::new(&plan, &latest, &[], None));
        assert!(without_fix.contains("no GPS fix") && !without_fix.contains("id=\"van\""));
    }
}
