//! The plot: cumulative spend of the first budget's scope per strategy against the
//! budget, as an SVG drawn with plotters. Floats appear here only, to place pixels.

use std::path::Path;

use plotters::prelude::*;

use crate::SimError;
use crate::report::Report;

const COLOURS: [RGBColor; 5] = [
    RGBColor(200, 30, 30),
    RGBColor(230, 140, 0),
    RGBColor(150, 100, 200),
    RGBColor(40, 120, 200),
    RGBColor(20, 150, 60),
];

/// Writes the cumulative spend of every strategy against the budget to `path`.
#[allow(
    clippy::float_arithmetic,
    reason = "pixel placement only: the plotted dollars are lossy copies of exact totals"
)]
pub fn write_svg(report: &Report, path: &Path) -> Result<(), SimError> {
    let hours = |minute: u32| f64::from(minute) / 60.0;
    let budget = report.budget_amount.to_f64_lossy();
    // The budget line: the amount of every period begun so far, added up.
    let mut budget_line: Vec<(f64, f64)> = Vec::new();
    let mut total = 0.0;
    for &step in &report.budget_steps {
        budget_line.push((hours(step), total));
        total += budget;
        budget_line.push((hours(step), total));
    }
    budget_line.push((hours(report.minutes), total));
    let top = report
        .strategies
        .iter()
        .flat_map(|s| s.series.iter().map(|(_, m)| m.to_f64_lossy()))
        .fold(total, f64::max)
        * 1.05;
    let top = if top > 0.0 { top } else { 1.0 };
    // A log scale, so that a guarded line and the budget stay readable next to an
    // unguarded bill a hundred times larger; zero is drawn at the bottom edge.
    let bottom = (top / 1e5).max(0.001);
    let lift = |v: f64| v.max(bottom);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| SimError::Plot(e.to_string());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: cumulative spend vs budget", report.scenario),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            0.0..hours(report.minutes).max(1.0 / 60.0),
            (bottom..top).log_scale(),
        )
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("USD (log scale)")
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("${v:.0}")
            } else {
                format!("${v:.2}")
            }
        })
        .draw()
        .map_err(|e| draw(&e))?;
    chart
        .draw_series(LineSeries::new(
            budget_line.into_iter().map(|(x, y)| (x, lift(y))),
            BLACK.stroke_width(2),
        ))
        .map_err(|e| draw(&e))?
        .label("budget")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (s, colour) in report.strategies.iter().zip(COLOURS) {
        let points: Vec<(f64, f64)> = s
            .series
            .iter()
            .map(|(m, v)| (hours(*m), lift(v.to_f64_lossy())))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| draw(&e))?
            .label(s.strategy.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}
