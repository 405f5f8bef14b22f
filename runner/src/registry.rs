//! [`Registry`]: the stages a workflow can name, each with its descriptor and fingerprint.

use std::collections::BTreeMap;
use std::sync::Arc;

use flywheel_stage_api::{Stage, StageDescriptor};

/// A stage ready to run, with the parts of its identity that go into node keys.
#[derive(Clone)]
pub struct RegisteredStage {
    pub stage: Arc<dyn Stage>,
    pub descriptor: StageDescriptor,
    /// Implementation fingerprint, part of every node key: `builtin:<version>` for stages
    /// compiled into flywheel, `dylib:b3:<hex>` (the library file's blake3) for plugin
    /// libraries, `subprocess:b3:<hex>` (command, declared files and version) for commands.
    pub fingerprint: String,
}

#[derive(Clone, Default)]
pub struct Registry {
    stages: BTreeMap<String, RegisteredStage>,
}

impl Registry {
    /// Returns the built-in stages, plus the runner's test fixtures when the environment
    /// variable `FLYWHEEL_TEST_STAGES=1` is set.
    pub fn builtin() -> Registry {
        let mut registry = Registry::default();
        for stage in flywheel_stages::builtin() {
            registry.add_builtin(stage);
        }
        if std::env::var("FLYWHEEL_TEST_STAGES").as_deref() == Ok("1") {
            for stage in crate::fixtures::stages() {
                registry.add_builtin(stage);
            }
        }
        registry
    }

    pub fn add_builtin(&mut self, stage: Arc<dyn Stage>) {
        let descriptor = stage.descriptor();
        let fingerprint = format!("builtin:{}", descriptor.version);
        self.add(stage, descriptor, fingerprint);
    }

    /// Registers a stage, replacing any stage of the same name (how a workflow's plugin
    /// stage replaces a built-in).
    pub fn add(&mut self, stage: Arc<dyn Stage>, descriptor: StageDescriptor, fingerprint: String) {
        self.stages.insert(descriptor.name.clone(), RegisteredStage { stage, descriptor, fingerprint });
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredStage> {
        self.stages.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stages.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RegisteredStage> {
        self.stages.values()
    }
}
