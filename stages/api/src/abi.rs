//! The C ABI for stages compiled into dynamic libraries (plugins).
//!
//! A plugin is a `cdylib` that exports one symbol, [`ENTRY_POINT`], an `extern "C"` function
//! that takes nothing and returns a pointer to a static [`PluginTable`]. Everything else
//! crosses the boundary as JSON ([`crate::StageDescriptor`], [`StageRequest`], [`crate::StageOutcome`]) in
//! borrowed byte slices ([`AbiStr`]), so the two sides share no Rust types, allocators or
//! compiler versions. Artifacts cross as directory paths inside the request.
//!
//! - [`PluginTable`]: the plugin's side, with `describe` and `run`.
//! - [`HostTable`]: the runner's callbacks (log, progress, metric, cancellation), passed to
//!   every `run` call, so a plugin's log lines land in the run log under its node.
//! - [`AbiSink`]: a callback through which a plugin returns JSON or an error message. The
//!   caller copies the bytes during the call, so no memory changes owner.
//!
//! Both tables start with `abi_version` and `struct_size`, and these two fields keep their
//! place in every future version, so either side can read them before trusting the rest.
//! The runner rejects a table whose `abi_version` differs from [`ABI_VERSION`] or whose
//! `struct_size` is smaller than the table of its own build. Fields may be appended without a version
//! bump; any other change bumps [`ABI_VERSION`].
//!
//! A panic inside a stage is caught at the boundary and returned as [`STATUS_PANICKED`] with
//! its message; unwinding never crosses the C ABI. This needs the plugin to be built with
//! `panic = "unwind"`, Rust's default: with `panic = "abort"` a panic ends the whole runner.
//!
//! Plugin authors write only the [`crate::Stage`] impls and call [`crate::export_stages!`]:
//!
//! ```ignore
//! struct Bm25;
//! impl flywheel_stage_api::Stage for Bm25 { /* descriptor() and run() */ }
//! flywheel_stage_api::export_stages!(Bm25);
//! ```

use std::any::Any;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Host, LogLevel, PROTOCOL_VERSION, Stage, StageContext, StageError, StageRequest};

/// Version of the C layout of [`PluginTable`] and [`HostTable`].
pub const ABI_VERSION: u32 = 1;

/// Name of the symbol every plugin library exports: `extern "C" fn() -> *const PluginTable`.
pub const ENTRY_POINT: &str = "flywheel_stage_plugin";

/// Type of the [`ENTRY_POINT`] function. It must return a pointer to a table that lives as
/// long as the library stays loaded (a `static`).
pub type EntryPoint = unsafe extern "C" fn() -> *const PluginTable;

/// `run` returned normally; the sink received the [`crate::StageOutcome`] as JSON.
pub const STATUS_OK: u32 = 0;
/// The stage returned an error; the sink received its message as UTF-8.
pub const STATUS_FAILED: u32 = 1;
/// The stage panicked; the sink received the panic message as UTF-8.
pub const STATUS_PANICKED: u32 = 2;
/// The stage stopped because the host reported cancellation; the sink received nothing.
pub const STATUS_CANCELLED: u32 = 3;

/// Borrowed bytes (UTF-8 text or JSON) valid only during the call that receives them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AbiStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl AbiStr {
    /// Borrows `text` for one call; the caller keeps `text` alive until the call returns.
    pub fn new(text: &str) -> AbiStr {
        AbiStr { ptr: text.as_ptr(), len: text.len() }
    }

    /// Returns the bytes; a null pointer reads as empty.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr` points to `len` readable bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Copies the bytes into a `String`, replacing invalid UTF-8 with U+FFFD.
    ///
    /// # Safety
    /// As for [`AbiStr::as_bytes`].
    pub unsafe fn to_string_lossy(self) -> String {
        // SAFETY: forwarded to the caller.
        String::from_utf8_lossy(unsafe { self.as_bytes() }).into_owned()
    }
}

/// A callback that receives bytes from the other side. The receiver copies them before
/// `write` returns; several calls append.
#[repr(C)]
pub struct AbiSink {
    pub ctx: *mut c_void,
    pub write: unsafe extern "C" fn(ctx: *mut c_void, bytes: AbiStr),
}

impl AbiSink {
    /// Sends `text` through the sink.
    ///
    /// # Safety
    /// `self` must be a sink that the host handed to the current call.
    pub unsafe fn send(&self, text: &str) {
        // SAFETY: the host keeps `ctx` valid for the duration of the call.
        unsafe { (self.write)(self.ctx, AbiStr::new(text)) }
    }
}

/// The plugin's function table, returned by [`ENTRY_POINT`].
#[repr(C)]
pub struct PluginTable {
    /// Always [`ABI_VERSION`] of the `flywheel-stage-api` the plugin was built with.
    pub abi_version: u32,
    /// `size_of::<PluginTable>()` in the plugin's build.
    pub struct_size: u32,
    /// [`PROTOCOL_VERSION`] of the JSON the plugin reads and writes.
    pub protocol: u32,
    /// Writes a JSON array of every stage's [`crate::StageDescriptor`] to `out`. Returns
    /// [`STATUS_OK`], or [`STATUS_PANICKED`] with a message.
    pub describe: unsafe extern "C" fn(out: *const AbiSink) -> u32,
    /// Runs the stage named in the [`StageRequest`] JSON `request`, reporting through `host`.
    /// Returns one of the `STATUS_*` codes, with the outcome or message written to `out`.
    pub run: unsafe extern "C" fn(request: AbiStr, host: *const HostTable, out: *const AbiSink) -> u32,
}

impl PluginTable {
    /// A table of this ABI version around the two functions.
    pub const fn new(
        describe: unsafe extern "C" fn(*const AbiSink) -> u32,
        run: unsafe extern "C" fn(AbiStr, *const HostTable, *const AbiSink) -> u32,
    ) -> PluginTable {
        PluginTable {
            abi_version: ABI_VERSION,
            struct_size: size_of::<PluginTable>() as u32,
            protocol: PROTOCOL_VERSION,
            describe,
            run,
        }
    }
}

/// The runner's callbacks for one `run` call.
///
/// The callbacks may be called from any thread until `run` returns, and never after. `ctx`
/// is opaque to the plugin and is passed back unchanged.
#[repr(C)]
pub struct HostTable {
    /// Always [`ABI_VERSION`] of the runner's `flywheel-stage-api`.
    pub abi_version: u32,
    /// `size_of::<HostTable>()` in the runner's build.
    pub struct_size: u32,
    pub ctx: *const c_void,
    /// Records a log line; `level` is a [`level_code`].
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, message: AbiStr),
    pub progress: unsafe extern "C" fn(ctx: *const c_void, done: u64, total: u64, message: AbiStr),
    pub metric: unsafe extern "C" fn(ctx: *const c_void, name: AbiStr, step: u64, value: f64),
    pub is_cancelled: unsafe extern "C" fn(ctx: *const c_void) -> bool,
}

/// Returns the number that stands for `level` in [`HostTable::log`]: 0 error to 4 trace.
pub fn level_code(level: LogLevel) -> u32 {
    match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 2,
        LogLevel::Debug => 3,
        LogLevel::Trace => 4,
    }
}

/// Inverse of [`level_code`]; an unknown number reads as `Warn` so the line is not lost.
pub fn level_from_code(code: u32) -> LogLevel {
    match code {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        3 => LogLevel::Debug,
        4 => LogLevel::Trace,
        _ => LogLevel::Warn,
    }
}

/// Returns the message of a caught panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// The plugin's view of a [`HostTable`], as a [`Host`] that stages call.
struct PluginHost<'a> {
    table: &'a HostTable,
}

// SAFETY: the `HostTable` contract lets its callbacks be called from any thread while `run`
// executes, and a `PluginHost` never outlives the `run` call that created it.
unsafe impl Send for PluginHost<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for PluginHost<'_> {}

impl Host for PluginHost<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        // SAFETY: the table and its ctx are valid during `run` (see `HostTable`).
        unsafe { (self.table.log)(self.table.ctx, level_code(level), AbiStr::new(message)) }
    }

    fn progress(&self, done: u64, total: u64, message: &str) {
        // SAFETY: as for `log`.
        unsafe { (self.table.progress)(self.table.ctx, done, total, AbiStr::new(message)) }
    }

    fn metric(&self, name: &str, step: u64, value: f64) {
        // SAFETY: as for `log`.
        unsafe { (self.table.metric)(self.table.ctx, AbiStr::new(name), step, value) }
    }

    fn is_cancelled(&self) -> bool {
        // SAFETY: as for `log`.
        unsafe { (self.table.is_cancelled)(self.table.ctx) }
    }
}

/// The plugin side of the ABI, called by the functions that [`crate::export_stages!`] generates.
#[doc(hidden)]
pub mod export {
    use super::*;

    /// The stages of one plugin, built on first use.
    pub type StageList = fn() -> &'static [Box<dyn Stage>];

    /// Implements [`PluginTable::describe`].
    ///
    /// # Safety
    /// `out` must be a valid sink for the duration of the call.
    pub unsafe fn describe(stages: StageList, out: *const AbiSink) -> u32 {
        let result = catch_unwind(|| {
            let descriptors: Vec<_> = stages().iter().map(|stage| stage.descriptor()).collect();
            serde_json::to_string(&descriptors).expect("descriptors serialize to JSON")
        });
        // SAFETY: the caller guarantees `out` is valid.
        let out = unsafe { &*out };
        match result {
            Ok(json) => {
                // SAFETY: `out` is the sink of this call.
                unsafe { out.send(&json) };
                STATUS_OK
            }
            Err(payload) => {
                // SAFETY: as above.
                unsafe { out.send(&panic_message(payload.as_ref())) };
                STATUS_PANICKED
            }
        }
    }

    /// Implements [`PluginTable::run`]: checks the host table and the request, finds the
    /// stage, runs it with panics caught, and writes the outcome or the message to `out`.
    ///
    /// # Safety
    /// `request` must point to readable bytes, and `host` and `out` must be valid for the
    /// duration of the call.
    pub unsafe fn run(stages: StageList, request: AbiStr, host: *const HostTable, out: *const AbiSink) -> u32 {
        // SAFETY: the caller guarantees `request` is readable during the call.
        let request = unsafe { request.as_bytes() };
        let result = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller guarantees `host` is valid during the call.
            unsafe { run_checked(stages, request, host) }
        }));
        // SAFETY: the caller guarantees `out` is valid.
        let out = unsafe { &*out };
        let (status, text) = match result {
            Ok(Ok(json)) => (STATUS_OK, json),
            Ok(Err(StageError::Cancelled)) => (STATUS_CANCELLED, String::new()),
            Ok(Err(error)) => (STATUS_FAILED, error.to_string()),
            Err(payload) => (STATUS_PANICKED, panic_message(payload.as_ref())),
        };
        // SAFETY: `out` is the sink of this call.
        unsafe { out.send(&text) };
        status
    }

    /// Returns the outcome JSON of the requested stage's run.
    ///
    /// # Safety
    /// `host` must be null or valid during the call.
    unsafe fn run_checked(stages: StageList, request: &[u8], host: *const HostTable) -> Result<String, StageError> {
        if host.is_null() {
            return Err(StageError::failed("the runner passed no host table; this is a bug in the runner"));
        }
        // SAFETY: `host` is not null, and the caller guarantees it is valid. Only the first
        // two fields, whose place never changes, are read before the version check.
        let (version, size) = unsafe { ((*host).abi_version, (*host).struct_size) };
        if version != ABI_VERSION || (size as usize) < size_of::<HostTable>() {
            return Err(StageError::failed(format!(
                "the runner's host table has ABI version {version} ({size} bytes), but this plugin needs version \
                 {ABI_VERSION} ({} bytes); rebuild the plugin against the runner's flywheel-stage-api",
                size_of::<HostTable>()
            )));
        }
        // SAFETY: checked above; the table is valid for the whole call.
        let host = PluginHost { table: unsafe { &*host } };

        let request: StageRequest = serde_json::from_slice(request)
            .map_err(|e| StageError::failed(format!("invalid request JSON from the runner: {e}")))?;
        if request.protocol != PROTOCOL_VERSION {
            return Err(StageError::failed(format!(
                "the runner sent protocol version {}, but this plugin speaks version {PROTOCOL_VERSION}; \
                 rebuild the plugin against the runner's flywheel-stage-api",
                request.protocol
            )));
        }
        let stages = stages();
        let Some(stage) = stages.iter().find(|stage| stage.descriptor().name == request.stage) else {
            let names: Vec<String> = stages.iter().map(|stage| format!("`{}`", stage.descriptor().name)).collect();
            return Err(StageError::failed(format!(
                "this plugin has no stage `{}`; it has {}",
                request.stage,
                names.join(", ")
            )));
        };
        let outcome = stage.run(&StageContext::new(&request, &host))?;
        serde_json::to_string(&outcome).map_err(|e| StageError::failed(format!("cannot serialize the stage outcome: {e}")))
    }
}

/// Exports stages from a `cdylib` crate: generates the [`ENTRY_POINT`] function and its
/// [`PluginTable`]. Each argument is an expression that builds one stage, evaluated once, on
/// first use.
///
/// ```ignore
/// flywheel_stage_api::export_stages!(Bm25Stage, OtherStage::new(3));
/// ```
#[macro_export]
macro_rules! export_stages {
    ($($stage:expr),+ $(,)?) => {
        fn __flywheel_stages() -> &'static [::std::boxed::Box<dyn $crate::Stage>] {
            static STAGES: ::std::sync::OnceLock<::std::vec::Vec<::std::boxed::Box<dyn $crate::Stage>>> =
                ::std::sync::OnceLock::new();
            STAGES.get_or_init(|| ::std::vec![$(::std::boxed::Box::new($stage) as ::std::boxed::Box<dyn $crate::Stage>),+])
        }

        unsafe extern "C" fn __flywheel_describe(out: *const $crate::abi::AbiSink) -> u32 {
            // SAFETY: the runner passes a sink that is valid for this call.
            unsafe { $crate::abi::export::describe(__flywheel_stages, out) }
        }

        unsafe extern "C" fn __flywheel_run(
            request: $crate::abi::AbiStr,
            host: *const $crate::abi::HostTable,
            out: *const $crate::abi::AbiSink,
        ) -> u32 {
            // SAFETY: the runner passes a request, host table and sink valid for this call.
            unsafe { $crate::abi::export::run(__flywheel_stages, request, host, out) }
        }

        static __FLYWHEEL_PLUGIN_TABLE: $crate::abi::PluginTable =
            $crate::abi::PluginTable::new(__flywheel_describe, __flywheel_run);

        /// The plugin entry point that the flywheel runner looks up.
        #[unsafe(no_mangle)]
        pub extern "C" fn flywheel_stage_plugin() -> *const $crate::abi::PluginTable {
            &__FLYWHEEL_PLUGIN_TABLE
        }
    };
}

#[cfg(test)]
mod tests;
