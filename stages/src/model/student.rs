//! A smaller student model from a teacher: the teacher's configuration with fewer layers,
//! initialised either from a subset of the teacher's layers or at random.

use flywheel_stage_api::StageError;

use super::checkpoint::Weights;
use super::config::BertConfig;
use super::init::init_weights;

/// Returns the teacher's configuration with `layers` encoder layers.
pub fn student_config(teacher: &BertConfig, layers: usize) -> Result<BertConfig, StageError> {
    if layers == 0 {
        return Err(StageError::InvalidParam { name: "layers".into(), message: "must be at least 1".into() });
    }
    Ok(BertConfig { num_hidden_layers: layers, ..teacher.clone() })
}

/// Picks `count` of `total` teacher layers spread evenly, always including the last one: 6 -> 2
/// gives [2, 5], 12 -> 4 gives [2, 5, 8, 11].
pub fn spread_layers(total: usize, count: usize) -> Vec<usize> {
    (1..=count).map(|i| (i * total).div_ceil(count) - 1).collect()
}

/// Builds student weights: the teacher's embeddings and heads, and student layer `i` copied
/// from teacher layer `layer_map[i]`.
pub fn student_from_teacher(teacher_config: &BertConfig, teacher: &Weights, layer_map: &[usize]) -> Result<Weights, StageError> {
    if let Some(&bad) = layer_map.iter().find(|&&l| l >= teacher_config.num_hidden_layers) {
        return Err(StageError::InvalidParam { name: "layer_map".into(), message: format!("teacher layer {bad} does not exist; the teacher has {} layers (0-based)", teacher_config.num_hidden_layers) });
    }
    let mut student = Weights::default();
    for (name, tensor) in &teacher.0 {
        let Some(rest) = name.strip_prefix("encoder.layer.") else {
            student.insert(name.clone(), tensor.clone());
            continue;
        };
        let (index, suffix) = rest.split_once('.').ok_or_else(|| StageError::failed(format!("unexpected parameter name `{name}`")))?;
        let index: usize = index.parse().map_err(|_| StageError::failed(format!("unexpected parameter name `{name}`")))?;
        for (student_index, _) in layer_map.iter().enumerate().filter(|(_, teacher_index)| **teacher_index == index) {
            student.insert(format!("encoder.layer.{student_index}.{suffix}"), tensor.clone());
        }
    }
    Ok(student)
}

/// Builds random student weights of the student configuration.
pub fn student_random(config: &BertConfig, seed: u64) -> Weights {
    init_weights(config, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_layers_keeps_last() {
        assert_eq!(spread_layers(6, 2), [2, 5]);
        assert_eq!(spread_layers(12, 4), [2, 5, 8, 11]);
        assert_eq!(spread_layers(6, 6), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn student_copies_mapped_layers() {
        let teacher_config = BertConfig::new(20, 8, 4, 2, 16);
        let teacher = init_weights(&teacher_config, 1);
        let student = student_from_teacher(&teacher_config, &teacher, &[1, 3]).unwrap();
        let name = |l: usize| format!("encoder.layer.{l}.output.dense.weight");
        assert_eq!(student.get(&name(0)), teacher.get(&name(1)));
        assert_eq!(student.get(&name(1)), teacher.get(&name(3)));
        assert!(student.get(&name(2)).is_none());
        assert_eq!(student.get("embeddings.word_embeddings.weight"), teacher.get("embeddings.word_embeddings.weight"));
        assert!(student_from_teacher(&teacher_config, &teacher, &[4]).is_err());
    }
}

/// The `make-student` stage: a smaller model from a teacher `model` artifact.
pub struct MakeStudent;

impl flywheel_stage_api::Stage for MakeStudent {
    fn descriptor(&self) -> flywheel_stage_api::StageDescriptor {
        use flywheel_stage_api::{ParamSpec, ParamType, PortSpec, StageDescriptor};
        StageDescriptor::new("make-student", "1")
            .summary("make a smaller BERT from a teacher: fewer layers, copied from the teacher or random")
            .input(PortSpec::new("teacher", "model"))
            .output(PortSpec::new("model", "model"))
            .param(ParamSpec::new("layers", ParamType::Int).default(2).doc("encoder layers of the student"))
            .param(ParamSpec::new("init", ParamType::String).default("teacher").choices(&["teacher", "random"]).doc("copy teacher layers, or start from random weights"))
            .param(ParamSpec::new("layer_map", ParamType::String).default("").doc("comma-separated teacher layers (0-based) to copy, one per student layer; empty spreads them evenly"))
            .param(ParamSpec::new("seed", ParamType::Int).default(0).doc("seed of random initialisation"))
    }

    fn run(&self, ctx: &flywheel_stage_api::StageContext<'_>) -> Result<flywheel_stage_api::StageOutcome, StageError> {
        let teacher_dir = ctx.input("teacher")?;
        let (teacher_config, teacher) = super::ModelDir::load(teacher_dir)?;
        let layers = ctx.param_usize("layers")?;
        let config = student_config(&teacher_config, layers)?;
        let weights = if ctx.param_str("init")? == "random" {
            student_random(&config, crate::random::seed_param(ctx)?)
        } else {
            let map = parse_layer_map(ctx.param_str("layer_map")?, teacher_config.num_hidden_layers, layers)?;
            ctx.info(&format!("student layers copied from teacher layers {map:?}"));
            student_from_teacher(&teacher_config, &teacher, &map)?
        };
        super::ModelDir::save(ctx.output("model")?, &config, &weights, Some(teacher_dir))?;
        Ok(flywheel_stage_api::StageOutcome::default().metric("layers", layers))
    }
}

fn parse_layer_map(text: &str, teacher_layers: usize, layers: usize) -> Result<Vec<usize>, StageError> {
    if text.trim().is_empty() {
        return Ok(spread_layers(teacher_layers, layers));
    }
    let invalid = |message: String| StageError::InvalidParam { name: "layer_map".into(), message };
    let map: Vec<usize> = text.split(',').map(|part| part.trim().parse::<usize>().map_err(|_| invalid(format!("`{part}` is not a layer number")))).collect::<Result<_, _>>()?;
    if map.len() != layers {
        return Err(invalid(format!("lists {} layers but the student has {layers}", map.len())));
    }
    Ok(map)
}
