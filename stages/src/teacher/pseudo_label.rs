//! `pseudo-label`: applies a `teacher-gbdt` model to every mined pair, writing each pair with a
//! `pseudo_label` (the predicted grade) and the same predictions as `scores`.

use flywheel_stage_api::*;

use super::{feature_matrix, load};
use crate::artifact::{self, Pair, Score};
use perpetual::Matrix;

pub struct PseudoLabel;

impl Stage for PseudoLabel {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("pseudo-label", "1")
            .summary("label every mined pair with the GBDT teacher's predicted grade")
            .input(PortSpec::new("model", "gbdt"))
            .input(PortSpec::new("pairs", "pairs").doc("mined pairs with `features`; pairs without features are left out"))
            .output(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: the input pairs that have features, each with `pseudo_label`"))
            .output(PortSpec::new("scores", "scores").doc("scores.jsonl: the pseudo-labels as scores, for `evaluate`"))
            .param(ParamSpec::new("clip", ParamType::Bool).default(true).doc("clip pseudo-labels to the grade range seen in training"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let (booster, meta) = load(ctx.input("model")?)?;
        let clip = ctx.param_bool("clip")?;
        let pairs = artifact::read_records::<Pair>(ctx.input("pairs")?)?;
        let (mut labelled, unfeatured): (Vec<Pair>, Vec<Pair>) = pairs.into_iter().partition(|p| p.features.is_some());
        if labelled.is_empty() {
            return Err(StageError::failed("pairs.jsonl: no pair has `features`; connect the output of `behaviour-features`"));
        }
        if !unfeatured.is_empty() {
            ctx.log(LogLevel::Warn, &format!("left out {} pairs without `features`", unfeatured.len()));
        }
        let missing = count_missing_features(&labelled, &meta.features);
        if missing > 0 {
            ctx.log(LogLevel::Warn, &format!("{missing} feature values are missing; the model treats them as missing values"));
        }

        let rows: Vec<&Pair> = labelled.iter().collect();
        let data = feature_matrix(&rows, &meta.features)?;
        let predictions = booster.predict(&Matrix::new(&data, rows.len(), meta.features.len()), false);
        let mut scores = Vec::with_capacity(labelled.len());
        for (pair, prediction) in labelled.iter_mut().zip(predictions) {
            let label = if clip { prediction.clamp(meta.grade_min, meta.grade_max) } else { prediction };
            pair.pseudo_label = Some(label);
            scores.push(Score { qid: pair.qid.clone(), docid: pair.docid.clone(), score: label });
        }
        artifact::write(ctx.output("pairs")?, &labelled)?;
        artifact::write(ctx.output("scores")?, &scores)?;

        let mean = scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64;
        ctx.info(&format!("pseudo-labelled {} pairs (mean label {mean:.4})", labelled.len()));
        Ok(StageOutcome::default()
            .metric("pairs", labelled.len())
            .metric("left_out_pairs", unfeatured.len())
            .metric("missing_feature_values", missing)
            .metric("mean_pseudo_label", mean))
    }
}

fn count_missing_features(pairs: &[Pair], names: &[String]) -> usize {
    pairs.iter().map(|p| names.iter().filter(|n| p.features.as_ref().is_some_and(|f| !f.contains_key(*n))).count()).sum()
}
