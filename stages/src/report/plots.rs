//! SVG charts of the report: [`bar_chart`] for one metric across models and [`line_chart`] for
//! one training curve across models. They are drawn with plotters' SVG backend, which needs no
//! font or C library because it writes text as SVG `<text>` for the viewer to lay out.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Chart size in pixels.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

/// Series colours, one per model in input order (repeating after eight).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// Draws one bar per model; a model whose value is `None` (undefined) gets no bar.
pub fn bar_chart(title: &str, labels: &[String], values: &[Option<f64>]) -> Result<String, String> {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    let high = defined.iter().copied().fold(0.0, f64::max);
    let low = defined.iter().copied().fold(0.0, f64::min);
    // Headroom above the tallest bar for its value label; a span of 1 when every value is 0.
    let span = if high > low { high - low } else { 1.0 };
    let (y_min, y_max) = (if low < 0.0 { low - 0.1 * span } else { 0.0 }, high + 0.15 * span);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            // plotters' integer ranges include their end, so 0..n-1 gives n segments.
            .build_cartesian_2d((0..labels.len().saturating_sub(1)).into_segmented(), y_min..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| e.to_string())?;

        for (i, value) in values.iter().enumerate() {
            let Some(value) = *value else { continue };
            let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), value)], color(i).filled());
            bar.set_margin(0, 0, 12, 12);
            chart.draw_series(std::iter::once(bar)).map_err(|e| e.to_string())?;
            let text = Text::new(format_value(value), (SegmentValue::CenterOf(i), value), ("sans-serif", 14).into_font().color(&BLACK).pos(label_anchor()));
            chart.draw_series(std::iter::once(text)).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws one line per (model label, points) series, with a legend.
pub fn line_chart(title: &str, series: &[super::render::Curve]) -> Result<String, String> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        (x_min, x_max, y_min, y_max) = (x_min.min(*x), x_max.max(*x), y_min.min(*y), y_max.max(*y));
    }
    if !x_min.is_finite() {
        return Err(format!("curve `{title}` has no point"));
    }
    let x_span = if x_max > x_min { x_max - x_min } else { 1.0 };
    let y_pad = if y_max > y_min { 0.05 * (y_max - y_min) } else { 0.5 };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min..x_min + x_span, y_min - y_pad..y_max + y_pad)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format_value(*x))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, points)) in series.iter().enumerate() {
            let style = color(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color(i).stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Places a value label centred just above its anchor point.
fn label_anchor() -> plotters::style::text_anchor::Pos {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    Pos::new(HPos::Center, VPos::Bottom)
}

/// Formats a metric value: integers as they are, other values to four decimals.
pub fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.4}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_is_svg_with_labels() {
        let labels = vec!["bm25".to_string(), "teacher <gbdt>".to_string()];
        let svg = bar_chart("auc", &labels, &[Some(0.71), None]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("0.7100"));
        assert!(svg.contains("teacher &lt;gbdt&gt;"), "labels are escaped");
    }

    #[test]
    fn line_chart_draws_each_series() {
        let series = vec![("a".to_string(), vec![(0.0, 1.0), (10.0, 0.5)]), ("b".to_string(), vec![(0.0, 0.9), (10.0, 0.4)])];
        let svg = line_chart("loss", &series).unwrap();
        // Each model's colour strokes its line and its legend mark.
        assert_eq!(svg.matches(r##"stroke="#1F77B4""##).count(), 2, "{svg}");
        assert_eq!(svg.matches(r##"stroke="#FF7F0E""##).count(), 2, "{svg}");
        assert!(svg.contains("\na\n</text>"), "legend names model a: {svg}");
        assert!(svg.contains("\nb\n</text>"), "legend names model b: {svg}");
    }

    #[test]
    fn bar_chart_of_one_model() {
        let svg = bar_chart("rmse", &["teacher".to_string()], &[Some(0.45)]).unwrap();
        assert!(svg.contains("0.4500"), "{svg}");
        assert!(svg.contains("teacher"), "{svg}");
    }

    #[test]
    fn charts_are_deterministic() {
        let labels = vec!["x".to_string()];
        assert_eq!(bar_chart("pnr", &labels, &[Some(2.0)]).unwrap(), bar_chart("pnr", &labels, &[Some(2.0)]).unwrap());
    }
}
