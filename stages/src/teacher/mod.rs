//! The GBDT teacher of behaviour post-training: [`TeacherGbdt`] (`teacher-gbdt`) learns
//! behaviour features -> grade on the human-labelled pairs, and [`PseudoLabel`]
//! (`pseudo-label`) applies it to every mined pair.
//!
//! A `gbdt` artifact contains two files. `model.json` is the booster in perpetual's own JSON
//! serialization (`BoosterIO::json_dump`, perpetual 3.0.0-rc.2), with object keys sorted so the
//! same model always has the same bytes. `meta.json` ([`Meta`]) names the features in the
//! column order the model expects.

mod pseudo_label;
mod train;

use std::fs;
use std::path::Path;

use flywheel_stage_api::StageError;
use perpetual::PerpetualBooster;
use perpetual::booster::config::BoosterIO;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use pseudo_label::PseudoLabel;
pub use train::TeacherGbdt;

use crate::artifact::{Pair, write_json};

/// The perpetual version whose serialization `model.json` uses.
pub const PERPETUAL_VERSION: &str = "3.0.0-rc.2";

/// `meta.json` of a `gbdt` artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `perpetual-json`: `model.json` is perpetual's serialization.
    pub format: String,
    pub perpetual_version: String,
    pub objective: String,
    /// The predicted field: `grade`.
    pub target: String,
    /// Feature names in the model's column order.
    pub features: Vec<String>,
    /// The lowest and highest grade seen in training, the range `pseudo-label` clips to.
    pub grade_min: f64,
    pub grade_max: f64,
    pub budget: f64,
    pub training_pairs: usize,
}

/// Writes `model.json` and `meta.json` into the output directory `dir`.
pub fn save(dir: &Path, booster: &PerpetualBooster, meta: &Meta) -> Result<(), StageError> {
    let dump = booster.json_dump().map_err(|e| StageError::failed(format!("cannot serialize the GBDT: {e}")))?;
    let value: Value = serde_json::from_str(&dump).map_err(|e| StageError::failed(format!("perpetual wrote invalid JSON: {e}")))?;
    // perpetual keeps tree nodes in a HashMap, whose order changes from run to run.
    let text = serde_json::to_string(&sorted_keys(value)).map_err(|e| StageError::failed(e.to_string()))?;
    let path = dir.join("model.json");
    fs::write(&path, text).map_err(|e| StageError::file(&path, e))?;
    write_json(dir, "meta.json", &serde_json::to_value(meta).expect("meta serializes"))
}

/// Reads a `gbdt` artifact written by [`save`].
pub fn load(dir: &Path) -> Result<(PerpetualBooster, Meta), StageError> {
    let meta_path = dir.join("meta.json");
    let meta_text = fs::read_to_string(&meta_path).map_err(|e| StageError::file(&meta_path, e))?;
    let meta: Meta = serde_json::from_str(&meta_text)
        .map_err(|e| StageError::failed(format!("meta.json: {e}; the gbdt artifact must come from `teacher-gbdt`")))?;
    if meta.format != "perpetual-json" {
        return Err(StageError::failed(format!("meta.json: format `{}` is unknown; expected `perpetual-json`", meta.format)));
    }
    let model_path = dir.join("model.json");
    let text = fs::read_to_string(&model_path).map_err(|e| StageError::file(&model_path, e))?;
    let booster = PerpetualBooster::from_json(&text).map_err(|e| {
        StageError::failed(format!(
            "model.json: {e}; it was written by perpetual {}, this build reads {PERPETUAL_VERSION}; retrain the teacher",
            meta.perpetual_version
        ))
    })?;
    Ok((booster, meta))
}

/// Returns `value` with the keys of every object sorted.
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> = object.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

/// Builds the features of `pairs` as a column-major matrix (perpetual's `Matrix` layout), where
/// column `j` contains feature `names[j]` of every pair. A missing feature is NaN, which perpetual treats as
/// missing. Fails on a feature value that is not a number.
pub fn feature_matrix(pairs: &[&Pair], names: &[String]) -> Result<Vec<f64>, StageError> {
    let mut columns = vec![f64::NAN; pairs.len() * names.len()];
    for (j, name) in names.iter().enumerate() {
        for (i, pair) in pairs.iter().enumerate() {
            let value = pair.feature(name).map_err(|message| {
                StageError::failed(format!("pairs.jsonl: query `{}` and document `{}`: {message}", pair.qid, pair.docid))
            })?;
            if let Some(value) = value {
                columns[j * pairs.len() + i] = value;
            }
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fitted(budget: f32) -> PerpetualBooster {
        // Grade = 3 * ctr rounded, with a second, noisy feature; the second column has gaps.
        let rows = 200;
        let ctr: Vec<f64> = (0..rows).map(|i| (i % 10) as f64 / 10.0).collect();
        let noise: Vec<f64> = (0..rows).map(|i| if i % 7 == 0 { f64::NAN } else { ((i * 37) % 11) as f64 }).collect();
        let grades: Vec<f64> = ctr.iter().map(|c| (3.0 * c).round()).collect();
        let data: Vec<f64> = ctr.into_iter().chain(noise).collect();
        let mut booster = PerpetualBooster::default()
            .set_objective(perpetual::objective::Objective::SquaredLoss)
            .set_budget(budget)
            .set_num_threads(Some(1));
        booster.fit(&perpetual::Matrix::new(&data, rows, 2), &grades, None, None).unwrap();
        booster
    }

    fn meta() -> Meta {
        Meta {
            format: "perpetual-json".into(),
            perpetual_version: PERPETUAL_VERSION.into(),
            objective: "SquaredLoss".into(),
            target: "grade".into(),
            features: vec!["ctr".into(), "noise".into()],
            grade_min: 0.0,
            grade_max: 3.0,
            budget: 0.5,
            training_pairs: 200,
        }
    }

    #[test]
    fn saved_model_bytes_are_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        save(a.path(), &fitted(0.5), &meta()).unwrap();
        save(b.path(), &fitted(0.5), &meta()).unwrap();
        let model_a = fs::read(a.path().join("model.json")).unwrap();
        assert_eq!(model_a, fs::read(b.path().join("model.json")).unwrap());
        assert_eq!(fs::read(a.path().join("meta.json")).unwrap(), fs::read(b.path().join("meta.json")).unwrap());
    }

    #[test]
    fn loaded_model_predicts_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let booster = fitted(0.5);
        save(dir.path(), &booster, &meta()).unwrap();
        let (loaded, loaded_meta) = load(dir.path()).unwrap();
        assert_eq!(loaded_meta, meta());
        let data = [0.1, 0.9, 0.5, 3.0, f64::NAN, 1.0];
        let matrix = perpetual::Matrix::new(&data, 3, 2);
        assert_eq!(booster.predict(&matrix, false), loaded.predict(&matrix, false));
        let predictions = loaded.predict(&matrix, false);
        assert!(predictions[0] < predictions[1], "higher ctr, higher grade: {predictions:?}");
    }

    #[test]
    fn sorted_keys_sorts_nested_objects() {
        let value = json!({"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": 0});
        assert_eq!(serde_json::to_string(&sorted_keys(value)).unwrap(), r#"{"a":0,"b":{"a":[{"x":3,"y":2}],"z":1}}"#);
    }

    #[test]
    fn feature_matrix_column_major() {
        let mut a = Pair::new("q", "t", "a");
        a.features = Some(json!({"ctr": 0.5, "clicks": 2}).as_object().unwrap().clone());
        let mut b = Pair::new("q", "t", "b");
        b.features = Some(json!({"ctr": 0.25}).as_object().unwrap().clone());
        let names = vec!["clicks".to_string(), "ctr".to_string()];
        let matrix = feature_matrix(&[&a, &b], &names).unwrap();
        assert_eq!(matrix[0], 2.0);
        assert!(matrix[1].is_nan());
        assert_eq!(&matrix[2..], [0.5, 0.25]);
    }
}
