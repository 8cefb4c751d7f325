//! `otavan serve --plan PLAN.csv --meters METERS.csv --route ROUTE.csv`:
//! the campaign the dashboard's crew map draws, read with the campaign
//! tool's own readers (every bad row named by file and line).

use std::collections::HashMap;
use std::path::Path;

use anyhow::bail;
use otavan_campaign::plan::WifiRanges;
use otavan_campaign::{inventory, plan_csv, route};
use otavan_server::crew_map::{CrewPlan, PlannedMeter};

/// The planned meters placed from the inventory, and the route.
pub fn read(plan: &Path, meters: &Path, route_csv: &Path) -> anyhow::Result<CrewPlan> {
    let rows = plan_csv::read(plan)?;
    // Install kinds are checked against the default WiFi ranges: the map
    // needs only positions.
    let inventory = inventory::read(meters, &WifiRanges::default())?;
    let waypoints = route::read(route_csv)?;
    let by_eui: HashMap<_, _> = inventory.iter().map(|m| (m.dev_eui, m)).collect();
    let mut planned = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(meter) = by_eui.get(&row.dev_eui) else {
            bail!(
                "{}: meter {} is planned but not in {}",
                plan.display(),
                row.dev_eui,
                meters.display()
            );
        };
        planned.push(PlannedMeter {
            device_id: row.dev_eui.to_string(),
            lat: meter.lat,
            lon: meter.lon,
        });
    }
    Ok(CrewPlan {
        meters: planned,
        route: waypoints.iter().map(|w| (w.lat, w.lon)).collect(),
    })
}
