//! One SVG chart per claim (plotters' SVG backend: no system libraries,
//! and the same rows always give the same bytes).

use std::path::Path;

use plotters::prelude::*;

use super::Row;
use super::claims::Claim;

const COLORS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// Writes `DIR/claimN-WORKLOAD.svg` for `claim` from its `rows`; returns
/// the path.
pub fn chart(claim: &Claim, rows: &[Row], dir: &Path) -> Result<std::path::PathBuf, String> {
    let path = dir.join(format!("claim{}-{}.svg", claim.id, claim.workload));
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let key = claim.sweep.0;
    let xs = claim.sweep.1;
    let (x_lo, x_hi) = (xs[0].max(1) as f64, *xs.last().expect("points") as f64);
    let y_hi = rows
        .iter()
        .map(|r| (claim.y.0)(r))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let root = SVGBackend::new(&path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let caption = format!("claim {}: {} ({})", claim.id, claim.who, claim.workload);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (0.5_f64..y_hi * 1.5).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(key)
        .y_desc(claim.y.1)
        .draw()
        .map_err(|e| err(&e))?;
    for (i, spec) in claim.specs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.design == *spec)
            .map(|r| ((r.params[key] as f64).max(1.0), (claim.y.0)(r).max(0.5)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*spec)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(chart);
    drop(root);
    Ok(path)
}
