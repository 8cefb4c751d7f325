//! The routes for people and monitoring: `GET /` (dashboard),
//! `GET /devices/{id}` (one meter's reports) and `GET /metrics`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use percent_encoding::percent_decode_str;
use tracing::error;

use crate::body::Body;
use crate::crew_map::{self, CrewPlan, CrewView};
use crate::dashboard::{self, Overview};
use crate::metrics::MetricsInfo;
use crate::respond;
use crate::state::Shared;
use otavan_store::{ReportTime, SummaryQuery};

/// The prefix of a meter's page.
pub const DEVICES: &str = "/devices/";
/// Failures listed on the dashboard.
const RECENT_FAILURES: u32 = 20;
/// Reports listed on a meter's page (its latest).
const DEVICE_HISTORY: u32 = 500;

const HTML: &str = "text/html; charset=utf-8";

/// `GET /`.
pub async fn overview(shared: &Arc<Shared>) -> Response<Body> {
    let release = shared.release.load_full();
    let index = &release.index;
    let query = SummaryQuery {
        target: index.target().clone(),
        van: shared.reports.van().clone(),
        since: ReportTime::from(shared.started),
        recent_failures: RECENT_FAILURES,
        authenticated_only: shared.report_auth.require_signed,
    };
    let summary = match shared.reports.summary(&query).await {
        Ok(summary) => summary,
        Err(e) => {
            error!(error = %e, "cannot read the report store for the dashboard");
            return respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "report store unavailable",
            );
        }
    };
    let downloads = shared
        .metrics
        .downloads
        .snapshot()
        .into_iter()
        .map(|d| {
            let path = d.file.disk_path.strip_prefix(index.root()).map_or_else(
                |_| d.file.disk_path.display().to_string(),
                |p| format!("/{}", p.display()),
            );
            (path, d)
        })
        .collect();
    let crew_map = match &shared.crew_plan {
        Some(plan) => match crew_map(shared, plan, index.target()).await {
            Ok(section) => Some(section),
            Err(e) => {
                error!(error = %e, "cannot read the report store for the crew map");
                return respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "report store unavailable",
                );
            }
        },
        None => None,
    };
    let van_id = shared.reports.van().to_string();
    let root = index.root().display().to_string();
    let target = index.target().to_string();
    let store = shared.reports.describe();
    let halt = shared.halt_of(index.target());
    let page = dashboard::render_overview(&Overview {
        van_id: &van_id,
        root: &root,
        target: &target,
        versions: index.versions().map(ToString::to_string).collect(),
        files: index.file_count(),
        store: &store,
        summary: &summary,
        require_signed: shared.report_auth.require_signed,
        downloads,
        active_downloads: shared.metrics.downloads.active(),
        uptime: shared.started_instant.elapsed(),
        crew_map,
        halted: halt.as_ref().map(|h| h.reason.as_str()),
    });
    respond::content(StatusCode::OK, HTML, Bytes::from(page))
}

/// The crew map's section: meters' latest states and this session's trace
/// (from its first fix on).
async fn crew_map(
    shared: &Shared,
    plan: &CrewPlan,
    target: &otavan_protocol::Version,
) -> Result<String, otavan_store::StoreError> {
    let latest = shared.reports.latest_states(target).await?;
    let trace = match shared.position.first_fix_time() {
        Some(first) => shared.reports.trace(ReportTime::from(first)).await?,
        None => Vec::new(),
    };
    let view = CrewView::new(plan, &latest, &trace, shared.position.current());
    Ok(crew_map::svg::section(&view))
}

/// `GET /devices/{id}`: `path` is the request path, percent-encoded.
pub async fn device(shared: &Shared, path: &str) -> Response<Body> {
    let encoded = &path[DEVICES.len()..];
    let Ok(device_id) = percent_decode_str(encoded).decode_utf8() else {
        return respond::error(StatusCode::BAD_REQUEST, "device id is not UTF-8");
    };
    if device_id.is_empty() || device_id.chars().any(char::is_control) {
        return respond::error(StatusCode::NOT_FOUND, "no such meter");
    }
    match shared
        .reports
        .device_history(&device_id, DEVICE_HISTORY)
        .await
    {
        Ok(reports) => {
            let page = dashboard::render_device(&device_id, &reports);
            let status = match reports.is_empty() {
                true => StatusCode::NOT_FOUND,
                false => StatusCode::OK,
            };
            respond::content(status, HTML, Bytes::from(page))
        }
        Err(e) => {
            error!(error = %e, "cannot read the report store for a meter's page");
            respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "report store unavailable",
            )
        }
    }
}

/// `GET /metrics`.
pub fn metrics(shared: &Shared) -> Response<Body> {
    let release = shared.release.load();
    let target = release.index.target().to_string();
    let text = shared.metrics.render(&MetricsInfo {
        manifest_cache_bytes: release.manifests.bytes(),
        target: &target,
        van_id: shared.reports.van().as_str(),
        uptime_seconds: shared.started_instant.elapsed().as_secs_f64(),
    });
    respond::content(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(text),
    )
}
