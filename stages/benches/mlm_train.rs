//! Training throughput of BERT-mini with the MLM objective on the CPU backend, for comparison
//! with `scripts/bench_torch_mlm.py` (PyTorch, same configuration and thread count).
//!
//! ```text
//! cargo bench -p flywheel-stages --bench mlm_train -- --threads 2 --warmup 3 --steps 10
//! ```
//!
//! Configuration: 4 layers, hidden 256, 4 heads, intermediate 1024, vocabulary 8000, batch 32
//! sequences of 128 tokens without padding, 20 masked positions per sequence (15 % of 128,
//! rounded up), hidden dropout 0.1, global-norm clipping at 1.0, then AdamW. Token ids are uniform
//! random. Each step runs `Bert::encode`, `mlm_forward`, `mlm_backward`, `encode_backward` and
//! `Trainer::apply`. The bench prints tokens/s over the timed steps and the mean time of each
//! phase per step.

use std::time::{Duration, Instant};

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
use flywheel_stages::model::init::init_weights;
use flywheel_stages::model::{Bert, BertConfig, Dropout, HostBatch, Trainer, TrainerConfig};

const VOCAB: usize = 8000;
const BATCH: usize = 32;
const SEQ: usize = 128;
const PREDICTIONS_PER_SEQUENCE: usize = 20;
/// Ids below this are left to special tokens, as in a WordPiece vocabulary.
const FIRST_WORD_ID: u32 = 5;

struct Options {
    threads: usize,
    warmup: usize,
    steps: usize,
}

/// Reads `--threads N`, `--warmup N` and `--steps N`, ignoring the `--bench` flag that cargo
/// passes.
fn parse_options() -> Options {
    let mut options = Options { threads: 2, warmup: 3, steps: 10 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < args.len() {
        let target = match args[index].as_str() {
            "--threads" => &mut options.threads,
            "--warmup" => &mut options.warmup,
            "--steps" => &mut options.steps,
            _ => {
                index += 1;
                continue;
            }
        };
        let value = args.get(index + 1).and_then(|v| v.parse().ok());
        *target = value.unwrap_or_else(|| panic!("{} needs a non-negative integer value", args[index]));
        index += 2;
    }
    assert!(options.steps > 0, "--steps must be at least 1");
    options
}

/// xorshift64: a fixed stream of pseudo-random numbers for token ids and masked positions.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Draws one MLM batch: inputs with the chosen positions replaced by `[MASK]`, their row
/// indices into the `B·T` rows, and the original ids as targets.
fn make_batch(rng: &mut XorShift) -> (HostBatch, Vec<u32>, Vec<u32>) {
    const MASK_ID: u32 = 4;
    let mut ids: Vec<u32> = (0..BATCH * SEQ).map(|_| FIRST_WORD_ID + rng.below(VOCAB - FIRST_WORD_ID as usize) as u32).collect();
    let mut positions = Vec::with_capacity(BATCH * PREDICTIONS_PER_SEQUENCE);
    let mut targets = Vec::with_capacity(BATCH * PREDICTIONS_PER_SEQUENCE);
    for sequence in 0..BATCH {
        let mut chosen: Vec<usize> = Vec::with_capacity(PREDICTIONS_PER_SEQUENCE);
        while chosen.len() < PREDICTIONS_PER_SEQUENCE {
            let position = 1 + rng.below(SEQ - 2);
            if !chosen.contains(&position) {
                chosen.push(position);
            }
        }
        for position in chosen {
            let row = sequence * SEQ + position;
            positions.push(row as u32);
            targets.push(ids[row]);
            ids[row] = MASK_ID;
        }
    }
    let batch = HostBatch { batch: BATCH, seq: SEQ, ids, type_ids: vec![0; BATCH * SEQ], mask: vec![1; BATCH * SEQ] };
    (batch, positions, targets)
}

/// Time spent in each phase of a step.
#[derive(Default)]
struct Phases {
    encode: Duration,
    mlm_forward: Duration,
    mlm_backward: Duration,
    encode_backward: Duration,
    optimizer: Duration,
}

fn timed<T>(total: &mut Duration, work: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = work();
    *total += start.elapsed();
    value
}

/// Runs one optimizer step and returns the MLM loss.
fn step(be: &dyn Backend, trainer: &mut Trainer, rng: &mut XorShift, number: u64, phases: &mut Phases) -> f32 {
    let (batch, positions, targets) = make_batch(rng);
    trainer.zero_grads(be).unwrap();
    let bert = &mut trainer.model;
    timed(&mut phases.encode, || bert.encode(be, &batch, Some(Dropout { p: 0.1, seed: number })).unwrap());
    let loss = timed(&mut phases.mlm_forward, || {
        let loss = bert.mlm_forward(be, &positions, &targets).unwrap();
        be.download(&loss).unwrap()[0]
    });
    timed(&mut phases.mlm_backward, || bert.mlm_backward(be).unwrap());
    timed(&mut phases.encode_backward, || bert.encode_backward(be).unwrap());
    timed(&mut phases.optimizer, || trainer.apply(be, 1e-4).unwrap());
    loss
}

fn main() {
    let options = parse_options();
    let be = CpuBackend::with_threads(options.threads).expect("the CPU thread pool starts");
    let config = BertConfig::new(VOCAB, 256, 4, 4, 1024);
    let weights = init_weights(&config, 0);
    let bert = Bert::new(&be, config, &weights).unwrap();
    let adamw = AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() };
    let mut trainer = Trainer::new(&be, bert, TrainerConfig { adamw, max_grad_norm: 1.0 }).unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);

    println!("flywheel CPU backend: {} threads, batch {BATCH} x {SEQ} tokens, {} warm-up + {} timed steps", options.threads, options.warmup, options.steps);
    let mut phases = Phases::default();
    for number in 0..options.warmup {
        step(&be, &mut trainer, &mut rng, number as u64, &mut phases);
    }

    let mut phases = Phases::default();
    let start = Instant::now();
    let mut loss = f32::NAN;
    for number in 0..options.steps {
        loss = step(&be, &mut trainer, &mut rng, (options.warmup + number) as u64, &mut phases);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let tokens = (options.steps * BATCH * SEQ) as f64;

    println!("last loss {loss:.4}, {:.3} s/step", elapsed / options.steps as f64);
    for (name, time) in [("encode", phases.encode), ("mlm_forward", phases.mlm_forward), ("mlm_backward", phases.mlm_backward), ("encode_backward", phases.encode_backward), ("optimizer (clip + AdamW)", phases.optimizer)] {
        println!("  {name:26} {:7.3} s/step  {:5.1} %", time.as_secs_f64() / options.steps as f64, 100.0 * time.as_secs_f64() / elapsed);
    }
    println!("flywheel tokens/s: {:.0}", tokens / elapsed);
}
