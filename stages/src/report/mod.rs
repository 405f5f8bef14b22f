//! `report`: gathers `metrics` artifacts of several nodes into `report.md` and a self-contained
//! `report.html`, with SVG charts under `plots/`.
//!
//! The runner connects one artifact per input port, so the stage has [`SLOTS`] optional
//! `metrics` inputs `m1`..`m16` and a `labels` param whose i-th entry names input `m{i}`. What
//! it reads from each `metrics.json` (see `docs/artifacts.md`): top-level numbers and `null`s
//! are metrics, `pairs_per_second` goes to the speed table, and `curves` (`{"loss": [[step,
//! value], …]}`) are training curves. Other fields, such as `per_query`, are left out.

mod plots;
mod render;

use std::fs;

use flywheel_stage_api::*;
use serde_json::{Value, json};

use render::{Chart, Curve, Entry, Report};

/// Number of `metrics` inputs.
pub const SLOTS: usize = 16;

/// Metrics charted when the `plot` param is left at its default and the inputs report them.
const DEFAULT_PLOT: [&str; 5] = ["auc", "pnr", "ndcg_exp@10", "ndcg_linear@10", "rmse"];

pub struct ReportStage;

impl Stage for ReportStage {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("report", "2")
            .summary("gather metrics of several nodes into a Markdown and a self-contained HTML report with SVG charts")
            .output(PortSpec::new("report", "report").doc("report.md, report.html (charts inlined) and plots/*.svg"));
        for slot in 1..=SLOTS {
            descriptor = descriptor.input(PortSpec::new(format!("m{slot}"), "metrics").optional().doc(format!("metrics of the model labelled by labels[{}]", slot - 1)));
        }
        descriptor
            .param(ParamSpec::new("title", ParamType::String).default("flywheel report").doc("heading of the report"))
            .param(ParamSpec::new("labels", ParamType::StringList).default(json!([])).doc("label of each input, in port order m1, m2, …; an unlabelled input is shown by its port name"))
            .param(ParamSpec::new("plot", ParamType::StringList).default(json!(DEFAULT_PLOT)).doc("metrics to chart; an empty list charts every metric"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let labels = string_list(ctx, "labels")?;
        if labels.len() > SLOTS {
            return Err(StageError::InvalidParam { name: "labels".into(), message: format!("has {} labels for {SLOTS} inputs; give one per connected input", labels.len()) });
        }
        let mut entries = Vec::new();
        for slot in 1..=SLOTS {
            let port = format!("m{slot}");
            let label = labels.get(slot - 1).cloned().unwrap_or_else(|| port.clone());
            match ctx.optional_input(&port) {
                Some(dir) => entries.push(read_entry(&dir.join("metrics.json"), &port, label)?),
                None if slot <= labels.len() => ctx.log(LogLevel::Warn, &format!("label `{label}` names input `{port}`, which is not connected")),
                None => {}
            }
        }
        if entries.is_empty() {
            return Err(StageError::failed("no metrics input is connected; connect `m1: NODE.metrics` and more"));
        }

        let metric_names = metric_names(&entries);
        let requested = string_list(ctx, "plot")?;
        let to_plot: Vec<&String> = if requested.is_empty() { metric_names.iter().collect() } else { metric_names.iter().filter(|n| requested.contains(n)).collect() };
        let model_labels: Vec<String> = entries.iter().map(|e| e.label.clone()).collect();
        let mut metric_charts = Vec::new();
        for name in to_plot {
            let values: Vec<Option<f64>> = entries.iter().map(|e| e.metric(name).flatten()).collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let svg = plots::bar_chart(name, &model_labels, &values).map_err(|e| chart_error(name, e))?;
            metric_charts.push(Chart { title: name.clone(), file: format!("{:02}-{}.svg", metric_charts.len() + 1, file_stem(name)), svg });
        }
        let curve_charts = curve_charts(&entries)?;

        let report = Report { title: ctx.param_str("title")?.to_string(), entries, metric_names, metric_charts, curve_charts };
        let out = ctx.output("report")?;
        write(&out.join("report.md"), &render::markdown(&report))?;
        write(&out.join("report.html"), &render::html(&report))?;
        let plots_dir = out.join("plots");
        fs::create_dir_all(&plots_dir).map_err(|e| StageError::file(&plots_dir, e))?;
        for chart in report.metric_charts.iter().chain(&report.curve_charts) {
            write(&plots_dir.join(&chart.file), &chart.svg)?;
        }
        ctx.info(&format!("reported {} inputs, {} metrics, {} charts", report.entries.len(), report.metric_names.len(), report.metric_charts.len() + report.curve_charts.len()));
        Ok(StageOutcome::default()
            .metric("inputs", report.entries.len())
            .metric("metrics", report.metric_names.len())
            .metric("charts", report.metric_charts.len() + report.curve_charts.len()))
    }
}

/// Reads one `metrics.json` into an [`Entry`].
fn read_entry(path: &std::path::Path, port: &str, label: String) -> Result<Entry, StageError> {
    let text = fs::read_to_string(path).map_err(|e| StageError::file(path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| StageError::failed(format!("input `{port}`: metrics.json: {e}")))?;
    let Value::Object(object) = value else {
        return Err(StageError::failed(format!("input `{port}`: metrics.json must hold a JSON object of named metrics")));
    };
    let mut entry = Entry { label, metrics: Vec::new(), curves: Vec::new(), pairs_per_second: None };
    for (name, value) in object {
        match (name.as_str(), value) {
            ("pairs_per_second", Value::Number(n)) => entry.pairs_per_second = n.as_f64(),
            ("curves", curves) => entry.curves = parse_curves(&curves).map_err(|e| StageError::failed(format!("input `{port}`: metrics.json: `curves`: {e}")))?,
            (_, Value::Number(n)) => entry.metrics.push((name, n.as_f64())),
            (_, Value::Null) => entry.metrics.push((name, None)),
            _ => {}
        }
    }
    Ok(entry)
}

/// Parses `{"name": [[step, value], …], …}`.
fn parse_curves(value: &Value) -> Result<Vec<Curve>, String> {
    let Value::Object(curves) = value else {
        return Err(format!("expected an object of curves such as {{\"loss\": [[0, 2.3], [100, 1.7]]}}, found {value}"));
    };
    let mut parsed = Vec::new();
    for (name, points) in curves {
        let points: Vec<[f64; 2]> = serde_json::from_value(points.clone()).map_err(|e| format!("curve `{name}`: {e}; each point is [step, value]"))?;
        parsed.push((name.clone(), points.into_iter().map(|[step, value]| (step, value)).collect()));
    }
    Ok(parsed)
}

fn metric_names(entries: &[Entry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in entries.iter().flat_map(|e| &e.metrics) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Draws one chart per curve name, with a line for each input that has that curve.
fn curve_charts(entries: &[Entry]) -> Result<Vec<Chart>, StageError> {
    let mut names: Vec<&String> = Vec::new();
    for (name, _) in entries.iter().flat_map(|e| &e.curves) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut charts = Vec::new();
    for name in names {
        let series: Vec<Curve> = entries
            .iter()
            .filter_map(|e| e.curves.iter().find(|(n, _)| n == name).map(|(_, points)| (e.label.clone(), points.clone())))
            .filter(|(_, points)| !points.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let svg = plots::line_chart(name, &series).map_err(|e| chart_error(name, e))?;
        charts.push(Chart { title: name.clone(), file: format!("curve-{:02}-{}.svg", charts.len() + 1, file_stem(name)), svg });
    }
    Ok(charts)
}

/// Returns a file-name-safe form of a metric name: `ndcg_exp@10` -> `ndcg_exp_10`.
fn file_stem(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn chart_error(name: &str, message: String) -> StageError {
    StageError::failed(format!("cannot draw the chart of `{name}`: {message}"))
}

fn string_list(ctx: &StageContext<'_>, name: &str) -> Result<Vec<String>, StageError> {
    serde_json::from_value(ctx.param(name)?.clone()).map_err(|e| StageError::InvalidParam { name: name.into(), message: e.to_string() })
}

fn write(path: &std::path::Path, text: &str) -> Result<(), StageError> {
    fs::write(path, text).map_err(|e| StageError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_reads_numbers_nulls_speed_and_curves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        fs::write(&path, r#"{"auc": 0.7, "pnr": null, "per_query": [], "pairs_per_second": 900, "curves": {"loss": [[0, 2.0], [10, 1.5]]}}"#).unwrap();
        let entry = read_entry(&path, "m1", "bm25".into()).unwrap();
        assert_eq!(entry.metrics, [("auc".to_string(), Some(0.7)), ("pnr".to_string(), None)]);
        assert_eq!(entry.pairs_per_second, Some(900.0));
        assert_eq!(entry.curves, [("loss".to_string(), vec![(0.0, 2.0), (10.0, 1.5)])]);
    }

    #[test]
    fn malformed_curve_names_the_curve() {
        let error = parse_curves(&json!({"loss": [[0, 1], [5]]})).unwrap_err();
        assert!(error.starts_with("curve `loss`:"), "{error}");
    }

    #[test]
    fn file_stem_replaces_symbols() {
        assert_eq!(file_stem("ndcg_exp@10"), "ndcg_exp_10");
    }
}
