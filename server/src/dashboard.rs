//! The van dashboard: `GET /` and `GET /devices/{id}`, server-rendered
//! HTML with inline CSS, no script and nothing fetched from elsewhere (it
//! works offline in the van), refreshing itself every few seconds.
//!
//! Everything that comes from meters (device ids, errors, versions as
//! stored) or from the operator (paths, van id) goes through [`escape`]
//! before it reaches the page. Elements that carry numbers have ids
//! (`count-UPDATED`, `session-meters`, ...) so tests and scripts can read
//! them.

use std::fmt::Write;
use std::time::Duration;

use otavan_protocol::UpdateState;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::metrics::ActiveDownload;
use otavan_store::{StoredReport, Summary, VanId};

/// Seconds between the page's reloads.
pub const REFRESH_SECONDS: u32 = 5;

/// Everything the main page shows.
#[derive(Debug)]
pub struct Overview<'a> {
    /// The van serving the page.
    pub van_id: &'a str,
    /// The release root.
    pub root: &'a str,
    /// The version meters are updated to.
    pub target: &'a str,
    /// Every version in the release.
    pub versions: Vec<String>,
    /// Files indexed.
    pub files: usize,
    /// Where reports go.
    pub store: &'a str,
    /// The store's counts.
    pub summary: &'a Summary,
    /// Whether the counts hold only authenticated reports
    /// (`--require-signed-reports`).
    pub require_signed: bool,
    /// Downloads in flight, with their URL paths.
    pub downloads: Vec<(String, ActiveDownload)>,
    /// Downloads in flight, listed or not.
    pub active_downloads: i64,
    /// Time since the server started.
    pub uptime: Duration,
    /// The crew map's section (`--plan`; see [`crate::crew_map`]).
    pub crew_map: Option<String>,
    /// Why the target is halted, when it is (no meter is offered it).
    pub halted: Option<&'a str>,
}

/// Characters kept as they are in a `/devices/{id}` link.
const ID_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `text` with HTML's special characters replaced by entities, safe in
/// element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The link to a meter's page (percent-encoded, then escaped).
pub fn device_link(device_id: &str) -> String {
    let href = format!("/devices/{}", utf8_percent_encode(device_id, ID_SAFE));
    format!("<a href=\"{}\">{}</a>", escape(&href), escape(device_id))
}

const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:20px;margin:0}header span{opacity:.8}
main{padding:16px 24px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
section.wide{grid-column:1/-1}h2{font-size:15px;margin:0 0 8px;text-transform:uppercase;letter-spacing:.04em;color:#556}
.cards{display:flex;gap:8px;flex-wrap:wrap}.card{flex:1;min-width:110px;border-radius:6px;padding:8px 10px;color:#fff}
.card b{display:block;font-size:26px}.card small{opacity:.9}
.DOWNLOADING{background:#3b82f6}.DOWNLOADED{background:#6366f1}.VERIFIED{background:#8b5cf6}
.UPDATING{background:#f59e0b}.UPDATED{background:#16a34a}.FAILED{background:#dc2626}.OTHER{background:#6b7280}
.bar{display:flex;height:22px;border-radius:11px;overflow:hidden;background:#e5e7eb;margin:10px 0 4px}
.bar div{height:100%}table{border-collapse:collapse;width:100%;font-size:14px}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{color:#556;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.err{color:#b91c1c;word-break:break-word}.muted{color:#889}a{color:#2563eb}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0}dt{color:#556}dd{margin:0}
";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// Bytes as B, KiB, MiB or GiB with one decimal.
pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The main page.
pub fn render_overview(view: &Overview<'_>) -> String {
    let summary = view.summary;
    let meters = summary.meters();
    let updated = summary.count(UpdateState::Updated);
    let percent = |n: u64| {
        if meters == 0 {
            0.0
        } else {
            n as f64 * 100.0 / meters as f64
        }
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>otavan van <span id=\"van-id\">{}</span></h1>\
         <span>target <b id=\"target\">{}</b></span><span>up {}</span>\
         <span><a style=\"color:#9cf\" href=\"/metrics\">metrics</a> · \
         <a style=\"color:#9cf\" href=\"/reports.csv\">reports.csv</a></span></header><main>",
        escape(view.van_id),
        escape(view.target),
        humantime::format_duration(Duration::from_secs(view.uptime.as_secs())),
    );
    if let Some(reason) = view.halted {
        let _ = write!(
            body,
            "<section class=\"wide\" id=\"halted\" style=\"background:#a00;color:#fff\">\
             <h2>halted</h2><div>{} is not offered: {}</div></section>",
            escape(view.target),
            escape(reason)
        );
    }
    // Progress toward the target.
    let _ = write!(
        body,
        "<section class=\"wide\"><h2>Progress to {}</h2>\
         <div><b id=\"updated\">{updated}</b> of <b id=\"meters\">{meters}</b> meters updated \
         (<span id=\"percent\">{:.1}</span>%)</div><div class=\"bar\" id=\"progress\">",
        escape(view.target),
        percent(updated)
    );
    for state in UpdateState::ALL {
        let n = summary.count(state);
        if n > 0 {
            let _ = write!(
                body,
                "<div class=\"{0}\" style=\"width:{1:.3}%\" title=\"{0}: {n}\"></div>",
                state.as_str(),
                percent(n)
            );
        }
    }
    body.push_str("</div><div class=\"cards\">");
    for state in UpdateState::ALL {
        let _ = write!(
            body,
            "<div class=\"card {0}\"><b id=\"count-{0}\">{1}</b><small>{0}</small></div>",
            state.as_str(),
            summary.count(state)
        );
    }
    if summary.other_state > 0 {
        let _ = write!(
            body,
            "<div class=\"card OTHER\"><b id=\"count-OTHER\">{}</b><small>other</small></div>",
            summary.other_state
        );
    }
    body.push_str(
        "</div><p class=\"muted\">Each meter counts once, in the state of its latest report \
         toward the target, whichever van heard it.",
    );
    if view.require_signed {
        let _ = write!(
            body,
            " Only reports signed by their meter (<i>verified</i>) and LoRa status uplinks \
             count; <b id=\"unverified-reports\">{}</b> unverified reports toward the target \
             are not counted.",
            summary.unverified_reports
        );
    } else {
        let _ = write!(
            body,
            " Unsigned reports count too (<b id=\"unverified-reports\">{}</b> toward the \
             target are not verified); <code>--require-signed-reports</code> counts only \
             verified ones.",
            summary.unverified_reports
        );
    }
    body.push_str("</p></section>");
    if let Some(map) = &view.crew_map {
        body.push_str(map);
    }
    // This session and the release.
    let _ = write!(
        body,
        "<section><h2>This session</h2><dl>\
         <dt>meters seen</dt><dd id=\"session-meters\">{}</dd>\
         <dt>reports received</dt><dd id=\"session-reports\">{}</dd>\
         <dt>active downloads</dt><dd id=\"active-downloads\">{}</dd>\
         <dt>reports in store</dt><dd id=\"total-reports\">{}</dd>\
         <dt>store</dt><dd>{}</dd></dl></section>",
        summary.session_meters,
        summary.session_reports,
        view.active_downloads,
        summary.total_reports,
        escape(view.store),
    );
    let versions: Vec<String> = view.versions.iter().map(|v| escape(v)).collect();
    let _ = write!(
        body,
        "<section><h2>Release</h2><dl><dt>target</dt><dd>{}</dd>\
         <dt>versions</dt><dd>{}</dd><dt>files</dt><dd>{}</dd><dt>folder</dt><dd>{}</dd></dl></section>",
        escape(view.target),
        versions.join(", "),
        view.files,
        escape(view.root),
    );
    // Downloads in flight.
    let _ = write!(
        body,
        "<section class=\"wide\"><h2>Active downloads ({})</h2>",
        view.active_downloads
    );
    if view.downloads.is_empty() {
        body.push_str("<p class=\"muted\">none</p>");
    } else {
        body.push_str(
            "<table id=\"downloads\"><tr><th>meter address</th><th>file</th>\
             <th>sent</th><th>of</th><th>rate</th></tr>",
        );
        for (path, download) in &view.downloads {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}/s</td></tr>",
                escape(&download.peer.to_string()),
                escape(path),
                human_bytes(download.sent as f64),
                human_bytes(download.total as f64),
                human_bytes(download.bytes_per_second()),
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section>");
    // Failures.
    body.push_str("<section class=\"wide\"><h2>Recent failures</h2>");
    if summary.recent_failures.is_empty() {
        body.push_str("<p class=\"muted\">none</p>");
    } else {
        body.push_str(
            "<table id=\"failures\"><tr><th>time</th><th>meter</th><th>van</th>\
             <th>update</th><th>verified</th><th>error</th></tr>",
        );
        for report in &summary.recent_failures {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td>\
                 <td class=\"err\">{}</td></tr>",
                escape(&report.time.to_string()),
                device_link(&report.device_id),
                escape(report.van_id.as_ref().map_or("", VanId::as_str)),
                escape(&report.from_version),
                escape(&report.to_version),
                report.verification,
                escape(report.error.as_deref().unwrap_or("")),
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section></main>");
    page(&format!("otavan {} → {}", view.van_id, view.target), &body)
}

/// A meter's page: its reports, oldest first.
pub fn render_device(device_id: &str, reports: &[StoredReport]) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>meter <span id=\"device-id\">{}</span></h1>\
         <span><a style=\"color:#9cf\" href=\"/\">dashboard</a></span></header>\
         <main><section class=\"wide\"><h2>Reports (<span id=\"report-count\">{}</span>)</h2>",
        escape(device_id),
        reports.len()
    );
    if reports.is_empty() {
        body.push_str("<p class=\"muted\">no reports from this meter</p>");
    } else {
        body.push_str(
            "<table id=\"history\"><tr><th>time</th><th>van</th><th>update</th><th>state</th>\
             <th>verified</th><th>bytes</th><th>error</th></tr>",
        );
        for report in reports {
            let bytes = report
                .bytes
                .map_or(String::new(), |b| human_bytes(b as f64));
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td class=\"state\">{}</td>\
                 <td class=\"verified\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"err\">{}</td></tr>",
                escape(&report.time.to_string()),
                escape(report.van_id.as_ref().map_or("", VanId::as_str)),
                escape(&report.from_version),
                escape(&report.to_version),
                escape(&report.state.to_string()),
                report.verification,
                bytes,
                escape(report.error.as_deref().unwrap_or("")),
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section></main>");
    page(&format!("otavan meter {device_id}"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_open_tags_or_leave_attributes() {
        let evil = r#"<script>alert("x")</script>' onmouseover='x"&"#;
        let escaped = escape(evil);
        assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped}");
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
        let link = device_link("m/1?x=<b>\"");
        assert_eq!(
            link,
            "<a href=\"/devices/m%2F1%3Fx%3D%3Cb%3E%22\">m/1?x=&lt;b&gt;&quot;</a>"
        );
    }

    #[test]
    fn an_empty_store_renders() {
        let summary = Summary::default();
        let page = render_overview(&Overview {
            van_id: "van-1",
            root: "/srv/release",
            target: "1.1.0",
            versions: vec!["1.0.0".into(), "1.1.0".into()],
            files: 3,
            store: "SQLite otavan.db",
            summary: &summary,
            require_signed: false,
            downloads: Vec::new(),
            active_downloads: 0,
            uptime: Duration::from_secs(61),
            crew_map: None,
            halted: None,
        });
        assert!(page.contains("<b id=\"count-UPDATED\">0</b>"), "{page}");
        assert!(page.contains("http-equiv=\"refresh\""));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
