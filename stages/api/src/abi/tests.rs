//! Round trips through the plugin side of the ABI, with a host table built in the test.

use std::sync::Mutex;

use super::*;
use crate::{PortSpec, StageDescriptor, StageOutcome};

struct Greeter;

impl Stage for Greeter {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("greet", "1").output(PortSpec::new("out", "text"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        match ctx.request.params.get("mode").and_then(|m| m.as_str()) {
            Some("panic") => panic!("greeter panicked on request"),
            Some("fail") => Err(StageError::failed("greeter failed on request")),
            Some("cancel") => ctx.check_cancelled().map(|()| StageOutcome::default()),
            _ => {
                ctx.info("hello from the plugin side");
                ctx.progress(1, 2, "half");
                Ok(StageOutcome::default().metric("greetings", 1))
            }
        }
    }
}

export_stages!(Greeter);

/// Record of the test host's callbacks.
#[derive(Default)]
struct Received {
    lines: Mutex<Vec<String>>,
    cancelled: bool,
}

unsafe extern "C" fn record_log(ctx: *const c_void, level: u32, message: AbiStr) {
    // SAFETY: ctx is the `Received` of the running test; message is valid for this call.
    let (received, message) = unsafe { (&*(ctx as *const Received), message.to_string_lossy()) };
    received.lines.lock().unwrap().push(format!("log {level} {message}"));
}

unsafe extern "C" fn record_progress(ctx: *const c_void, done: u64, total: u64, message: AbiStr) {
    // SAFETY: as in `record_log`.
    let (received, message) = unsafe { (&*(ctx as *const Received), message.to_string_lossy()) };
    received.lines.lock().unwrap().push(format!("progress {done}/{total} {message}"));
}

unsafe extern "C" fn record_metric(_ctx: *const c_void, _name: AbiStr, _step: u64, _value: f64) {}

unsafe extern "C" fn report_cancelled(ctx: *const c_void) -> bool {
    // SAFETY: as in `record_log`.
    unsafe { (*(ctx as *const Received)).cancelled }
}

unsafe extern "C" fn append(ctx: *mut c_void, bytes: AbiStr) {
    // SAFETY: ctx is the `Vec<u8>` of the running call; bytes are valid for this call.
    unsafe { (*(ctx as *mut Vec<u8>)).extend_from_slice(bytes.as_bytes()) }
}

fn host_table(received: &Received) -> HostTable {
    HostTable {
        abi_version: ABI_VERSION,
        struct_size: size_of::<HostTable>() as u32,
        ctx: received as *const Received as *const c_void,
        log: record_log,
        progress: record_progress,
        metric: record_metric,
        is_cancelled: report_cancelled,
    }
}

fn request(mode: &str) -> String {
    let mut params = serde_json::Map::new();
    params.insert("mode".into(), mode.into());
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        node: "n".into(),
        stage: "greet".into(),
        params,
        inputs: Default::default(),
        outputs: Default::default(),
        checkpoint_dir: "/nonexistent".into(),
        device: "cpu".into(),
        seed: 0,
        threads: 1,
    };
    serde_json::to_string(&request).unwrap()
}

/// Calls the exported table's `run` the way the runner does; returns status and output.
fn call_run(request: &str, host: &HostTable) -> (u32, String) {
    // SAFETY: the entry point returns a pointer to a static table.
    let table = unsafe { &*flywheel_stage_plugin() };
    let mut out = Vec::new();
    let sink = AbiSink { ctx: &mut out as *mut Vec<u8> as *mut c_void, write: append };
    // SAFETY: request, host and sink outlive the call.
    let status = unsafe { (table.run)(AbiStr::new(request), host, &sink) };
    (status, String::from_utf8(out).unwrap())
}

#[test]
fn table_carries_versions() {
    // SAFETY: the entry point returns a pointer to a static table.
    let table = unsafe { &*flywheel_stage_plugin() };
    assert_eq!(table.abi_version, ABI_VERSION);
    assert_eq!(table.struct_size as usize, size_of::<PluginTable>());
    assert_eq!(table.protocol, PROTOCOL_VERSION);
}

#[test]
fn describe_returns_descriptor_json() {
    // SAFETY: as above.
    let table = unsafe { &*flywheel_stage_plugin() };
    let mut out = Vec::new();
    let sink = AbiSink { ctx: &mut out as *mut Vec<u8> as *mut c_void, write: append };
    // SAFETY: the sink outlives the call.
    let status = unsafe { (table.describe)(&sink) };
    assert_eq!(status, STATUS_OK);
    let descriptors: Vec<StageDescriptor> = serde_json::from_slice(&out).unwrap();
    assert_eq!(descriptors, vec![Greeter.descriptor()]);
}

#[test]
fn run_returns_outcome_and_calls_host() {
    let received = Received::default();
    let (status, out) = call_run(&request("greet"), &host_table(&received));
    assert_eq!(status, STATUS_OK, "{out}");
    let outcome: StageOutcome = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome.metrics["greetings"], 1);
    let lines = received.lines.lock().unwrap();
    assert_eq!(*lines, ["log 2 hello from the plugin side", "progress 1/2 half"]);
}

#[test]
fn run_catches_panic() {
    let (status, out) = call_run(&request("panic"), &host_table(&Received::default()));
    assert_eq!(status, STATUS_PANICKED);
    assert_eq!(out, "greeter panicked on request");
}

#[test]
fn run_returns_stage_error() {
    let (status, out) = call_run(&request("fail"), &host_table(&Received::default()));
    assert_eq!(status, STATUS_FAILED);
    assert_eq!(out, "greeter failed on request");
}

#[test]
fn run_reports_cancellation() {
    let received = Received { cancelled: true, ..Received::default() };
    let (status, _) = call_run(&request("cancel"), &host_table(&received));
    assert_eq!(status, STATUS_CANCELLED);
}

#[test]
fn run_rejects_host_of_other_abi_version() {
    let received = Received::default();
    let host = HostTable { abi_version: ABI_VERSION + 1, ..host_table(&received) };
    let (status, out) = call_run(&request("greet"), &host);
    assert_eq!(status, STATUS_FAILED);
    assert!(out.contains(&format!("ABI version {}", ABI_VERSION + 1)), "{out}");
}

#[test]
fn run_rejects_unknown_stage() {
    let request = request("greet").replace("\"stage\":\"greet\"", "\"stage\":\"other\"");
    let (status, out) = call_run(&request, &host_table(&Received::default()));
    assert_eq!(status, STATUS_FAILED);
    assert_eq!(out, "this plugin has no stage `other`; it has `greet`");
}

#[test]
fn run_rejects_other_protocol() {
    let request = request("greet").replace(&format!("\"protocol\":{PROTOCOL_VERSION}"), "\"protocol\":99");
    let (status, out) = call_run(&request, &host_table(&Received::default()));
    assert_eq!(status, STATUS_FAILED);
    assert!(out.contains("protocol version 99"), "{out}");
}
