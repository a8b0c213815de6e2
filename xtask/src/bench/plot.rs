//! latency.svg: one box plot of start latency per runtime, on a log axis in milliseconds.

use std::path::Path;

use plotters::prelude::*;

/// Draws `rows` (runtime, latencies in ms) to an SVG file at `path`.
pub fn draw(path: &Path, rows: &[(&'static str, Vec<f64>)]) -> Result<(), String> {
    draw_boxes(path, rows).map_err(|e| format!("draw {}: {e}", path.display()))
}

fn draw_boxes(
    path: &Path,
    rows: &[(&'static str, Vec<f64>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let all = rows.iter().flat_map(|(_, ms)| ms.iter().copied());
    let (low, high) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Round the axis out to whole powers of ten, so the log ticks read well.
    let (low, high) = (
        10f64.powf(low.log10().floor()),
        10f64.powf(high.log10().ceil()),
    );
    // The segmented axis counts upwards: reversed, the first row is on top.
    let names: Vec<&str> = rows.iter().rev().map(|(name, _)| *name).collect();
    let height = 100 + 50 * rows.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Container start latency of /bin/true", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(
            (low as f32..high as f32).log_scale(),
            names[..].into_segmented(),
        )?;
    chart
        .configure_mesh()
        .x_desc("ms from spawn until reaped (log scale; box: quartiles, whiskers: 1.5 IQR)")
        .y_labels(names.len())
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(name) | SegmentValue::Exact(name) => name.to_string(),
            SegmentValue::Last => String::new(),
        })
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(names.iter().zip(rows.iter().rev()).map(|(name, (_, ms))| {
        Boxplot::new_horizontal(SegmentValue::CenterOf(name), &Quartiles::new(ms))
            .width(20)
            .style(BLUE)
    }))?;
    root.present()?;
    Ok(())
}
