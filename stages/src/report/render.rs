//! Renders a [`Report`] as Markdown (charts linked as SVG files) and as a self-contained HTML
//! page (the same charts inlined).

use super::plots::format_value;

/// A named training curve: (step, value) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// One connected `metrics` input.
pub struct Entry {
    pub label: String,
    /// Top-level numeric metrics in file order; `None` for a `null` (undefined) value.
    pub metrics: Vec<(String, Option<f64>)>,
    pub curves: Vec<Curve>,
    pub pairs_per_second: Option<f64>,
}

impl Entry {
    /// Returns the value of `name`: `None` when not reported, `Some(None)` when undefined.
    pub fn metric(&self, name: &str) -> Option<Option<f64>> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// A drawn chart: its title, its file name under `plots/`, and its SVG.
pub struct Chart {
    pub title: String,
    pub file: String,
    pub svg: String,
}

pub struct Report {
    pub title: String,
    pub entries: Vec<Entry>,
    /// Every metric name, in order of first appearance.
    pub metric_names: Vec<String>,
    pub metric_charts: Vec<Chart>,
    pub curve_charts: Vec<Chart>,
}

/// Table cell texts for a metric that one input does not report, and for one that is `null`.
const NOT_REPORTED: &str = "–";
const UNDEFINED: &str = "undefined";

fn cell(value: Option<Option<f64>>) -> String {
    match value {
        None => NOT_REPORTED.to_string(),
        Some(None) => UNDEFINED.to_string(),
        Some(Some(v)) => format_value(v),
    }
}

fn speeds(report: &Report) -> Vec<(&str, f64)> {
    report.entries.iter().filter_map(|e| e.pairs_per_second.map(|s| (e.label.as_str(), s))).collect()
}

pub fn markdown(report: &Report) -> String {
    let escape = |text: &str| text.replace('|', "\\|");
    let mut out = format!("# {}\n\n## Metrics\n\n", report.title);
    out.push_str(&format!("| metric | {} |\n", report.entries.iter().map(|e| escape(&e.label)).collect::<Vec<_>>().join(" | ")));
    out.push_str(&format!("|---|{}\n", "---:|".repeat(report.entries.len())));
    for name in &report.metric_names {
        let cells: Vec<String> = report.entries.iter().map(|e| cell(e.metric(name))).collect();
        out.push_str(&format!("| {} | {} |\n", escape(name), cells.join(" | ")));
    }
    out.push_str(&format!("\n`{UNDEFINED}`: the metric has no value for that input (for example AUC of a single-class query set); `{NOT_REPORTED}`: the input does not report it.\n"));

    let speeds = speeds(report);
    if !speeds.is_empty() {
        out.push_str("\n## Speed\n\nPairs per second: scoring for `score` inputs, training for training inputs.\n\n| input | pairs/s |\n|---|---:|\n");
        for (label, speed) in speeds {
            out.push_str(&format!("| {} | {} |\n", escape(label), format_value(speed.round())));
        }
    }
    for (heading, charts) in [("Charts", &report.metric_charts), ("Training curves", &report.curve_charts)] {
        if charts.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {heading}\n\n"));
        for chart in charts {
            out.push_str(&format!("![{}](plots/{})\n\n", chart.title, chart.file));
        }
    }
    out
}

pub fn html(report: &Report) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape_html(&report.title)));
    out.push_str("<style>\nbody { font-family: sans-serif; margin: 2em; color: #222; }\ntable { border-collapse: collapse; margin-bottom: 1em; }\nth, td { border: 1px solid #ccc; padding: 4px 10px; }\ntd.number { text-align: right; font-variant-numeric: tabular-nums; }\nfigure { display: inline-block; margin: 0 1em 1em 0; }\n</style>\n</head>\n<body>\n");
    out.push_str(&format!("<h1>{}</h1>\n<h2>Metrics</h2>\n<table>\n<tr><th>metric</th>", escape_html(&report.title)));
    for entry in &report.entries {
        out.push_str(&format!("<th>{}</th>", escape_html(&entry.label)));
    }
    out.push_str("</tr>\n");
    for name in &report.metric_names {
        out.push_str(&format!("<tr><td>{}</td>", escape_html(name)));
        for entry in &report.entries {
            out.push_str(&format!("<td class=\"number\">{}</td>", cell(entry.metric(name))));
        }
        out.push_str("</tr>\n");
    }
    out.push_str(&format!(
        "</table>\n<p><code>{UNDEFINED}</code>: the metric has no value for that input; <code>{NOT_REPORTED}</code>: the input does not report it.</p>\n"
    ));

    let speeds = speeds(report);
    if !speeds.is_empty() {
        out.push_str("<h2>Speed</h2>\n<p>Pairs per second: scoring for <code>score</code> inputs, training for training inputs.</p>\n<table>\n<tr><th>input</th><th>pairs/s</th></tr>\n");
        for (label, speed) in speeds {
            out.push_str(&format!("<tr><td>{}</td><td class=\"number\">{}</td></tr>\n", escape_html(label), format_value(speed.round())));
        }
        out.push_str("</table>\n");
    }
    for (heading, charts) in [("Charts", &report.metric_charts), ("Training curves", &report.curve_charts)] {
        if charts.is_empty() {
            continue;
        }
        out.push_str(&format!("<h2>{heading}</h2>\n"));
        for chart in charts {
            out.push_str(&format!("<figure>\n{}\n</figure>\n", chart.svg.trim_end()));
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            title: "runs".into(),
            entries: vec![
                Entry { label: "bm25".into(), metrics: vec![("auc".into(), Some(0.7)), ("pnr".into(), None)], curves: vec![], pairs_per_second: Some(1234.4) },
                Entry { label: "a|b".into(), metrics: vec![("auc".into(), Some(0.75))], curves: vec![], pairs_per_second: None },
            ],
            metric_names: vec!["auc".into(), "pnr".into()],
            metric_charts: vec![Chart { title: "auc".into(), file: "01-auc.svg".into(), svg: "<svg></svg>".into() }],
            curve_charts: vec![],
        }
    }

    #[test]
    fn markdown_tables() {
        let text = markdown(&report());
        assert!(text.contains("| metric | bm25 | a\\|b |\n|---|---:|---:|\n| auc | 0.7000 | 0.7500 |\n| pnr | undefined | – |\n"), "{text}");
        assert!(text.contains("| bm25 | 1234 |"), "{text}");
        assert!(text.contains("![auc](plots/01-auc.svg)"), "{text}");
        assert!(!text.contains("Training curves"));
    }

    #[test]
    fn html_inlines_charts_and_escapes() {
        let page = html(&report());
        assert!(page.contains("<figure>\n<svg></svg>\n</figure>"));
        assert!(page.contains("<th>a|b</th>"));
        assert!(!page.contains("src="), "nothing is loaded from outside the page");
    }
}
