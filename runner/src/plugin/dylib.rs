//! Stages in dynamic libraries: [`load`] opens a plugin library (once per process, never
//! unloaded), checks its [`PluginTable`] and describes its stages; [`DylibStage`] is the
//! [`Stage`] that calls into it through the C ABI of [`flywheel_stage_api::abi`].

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flywheel_stage_api::abi::{
    ABI_VERSION, AbiSink, AbiStr, ENTRY_POINT, EntryPoint, HostTable, PluginTable, STATUS_CANCELLED, STATUS_FAILED,
    STATUS_OK, STATUS_PANICKED, level_from_code,
};
use flywheel_stage_api::{Host, PROTOCOL_VERSION, Stage, StageContext, StageDescriptor, StageError, StageOutcome};

use super::{PluginError, check_descriptors};
use crate::digest::Digest;
use crate::registry::RegisteredStage;
use crate::store::hash::hash_file;

/// A loaded plugin library. Leaked on load, so the code it points into stays mapped for the
/// rest of the process.
pub struct PluginLibrary {
    /// The library path as given, for messages.
    pub path: PathBuf,
    /// Blake3 of the library file when it was loaded.
    pub digest: Digest,
    table: &'static PluginTable,
    _library: libloading::Library,
}

/// Libraries loaded by this process, by canonical path.
static LOADED: Mutex<BTreeMap<PathBuf, &'static PluginLibrary>> = Mutex::new(BTreeMap::new());

/// Loads the library at `path` and returns its stages, each with the fingerprint
/// `dylib:b3:<hex of the library file>`.
pub fn load(path: &Path) -> Result<Vec<RegisteredStage>, PluginError> {
    let library = open(path)?;
    let descriptors = describe(library)?;
    let fingerprint = format!("dylib:{}", library.digest);
    Ok(descriptors
        .into_iter()
        .map(|descriptor| RegisteredStage {
            stage: Arc::new(DylibStage { library, descriptor: descriptor.clone() }),
            descriptor,
            fingerprint: fingerprint.clone(),
        })
        .collect())
}

fn open(path: &Path) -> Result<&'static PluginLibrary, PluginError> {
    let error = |message: String| PluginError::new(path.display().to_string(), message);
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            error("library file not found; build the plugin (`cargo build --release -p NAME`) or fix the path".to_string())
        }
        _ => error(format!("cannot read the library file: {e}")),
    })?;
    if !metadata.is_file() {
        return Err(error("not a file; `library:` must name the plugin's .so file".to_string()));
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| error(format!("cannot resolve the path: {e}")))?;
    let digest = hash_file(&canonical).map_err(|e| error(format!("cannot hash the library file: {e}")))?;

    let mut loaded = LOADED.lock().expect("plugin library table lock");
    if let Some(library) = loaded.get(&canonical) {
        if library.digest != digest {
            return Err(error(format!(
                "the library file changed since this process loaded it ({} -> {}); a loaded library cannot be \
                 reloaded, so run flywheel again",
                library.digest.short(),
                digest.short()
            )));
        }
        return Ok(library);
    }

    // SAFETY: loading a library runs its initializers. flywheel trusts the libraries that a
    // workflow names, as it trusts the stages it runs.
    let library = unsafe { libloading::Library::new(&canonical) }.map_err(|e| {
        error(format!(
            "cannot load it as a dynamic library ({}); a library plugin must be a cdylib built for this platform",
            with_source(&e)
        ))
    })?;
    // SAFETY: the symbol is declared with the signature that `export_stages!` generates.
    let entry = unsafe { library.get::<EntryPoint>(ENTRY_POINT.as_bytes()) }.map_err(|e| {
        error(format!(
            "missing entry point `{ENTRY_POINT}` ({}); export the stages with `flywheel_stage_api::export_stages!(...)`",
            with_source(&e)
        ))
    })?;
    // SAFETY: `entry` is the plugin's entry point, which takes nothing.
    let table_ptr = unsafe { entry() };
    if table_ptr.is_null() {
        return Err(error(format!("the entry point `{ENTRY_POINT}` returned no plugin table (a null pointer)")));
    }
    // SAFETY: the table is a static of the loaded library. Only the first two fields, whose
    // place is the same in every ABI version, are read before the version check.
    let (version, size) = unsafe { ((*table_ptr).abi_version, (*table_ptr).struct_size) };
    if version != ABI_VERSION {
        return Err(error(format!(
            "the plugin was built for stage ABI version {version}, but this flywheel loads version {ABI_VERSION}; \
             rebuild the plugin against this flywheel's flywheel-stage-api"
        )));
    }
    if (size as usize) < size_of::<PluginTable>() {
        return Err(error(format!(
            "its plugin table is {size} bytes, smaller than the {} bytes of ABI version {ABI_VERSION}; \
             rebuild the plugin against this flywheel's flywheel-stage-api",
            size_of::<PluginTable>()
        )));
    }
    // SAFETY: version and size match, so the pointer is a valid `PluginTable` of this ABI,
    // and it lives as long as the library, which is never unloaded.
    let table: &'static PluginTable = unsafe { &*table_ptr };
    if table.protocol != PROTOCOL_VERSION {
        return Err(error(format!(
            "the plugin speaks JSON protocol version {}, but this flywheel speaks version {PROTOCOL_VERSION}; \
             rebuild the plugin against this flywheel's flywheel-stage-api",
            table.protocol
        )));
    }

    let library: &'static PluginLibrary =
        Box::leak(Box::new(PluginLibrary { path: path.to_path_buf(), digest, table, _library: library }));
    loaded.insert(canonical, library);
    Ok(library)
}

/// Formats a libloading error with the system's message, which its `Display` leaves out.
fn with_source(error: &libloading::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

fn describe(library: &PluginLibrary) -> Result<Vec<StageDescriptor>, PluginError> {
    let error = |message: String| PluginError::new(library.path.display().to_string(), message);
    let mut out = Vec::new();
    let sink = output_sink(&mut out);
    // SAFETY: the sink and its buffer outlive the call.
    let status = unsafe { (library.table.describe)(&sink) };
    let text = String::from_utf8_lossy(&out);
    match status {
        STATUS_OK => {}
        STATUS_PANICKED => return Err(error(format!("describing its stages panicked: {text}"))),
        other => return Err(error(format!("describing its stages failed with status {other}: {text}"))),
    }
    let descriptors: Vec<StageDescriptor> =
        serde_json::from_str(&text).map_err(|e| error(format!("invalid stage descriptors JSON: {e}")))?;
    check_descriptors(&descriptors).map_err(error)?;
    Ok(descriptors)
}

/// One stage of a plugin library.
pub struct DylibStage {
    library: &'static PluginLibrary,
    descriptor: StageDescriptor,
}

impl Stage for DylibStage {
    fn descriptor(&self) -> StageDescriptor {
        self.descriptor.clone()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let request = serde_json::to_string(ctx.request).map_err(|e| StageError::failed(format!("cannot serialize the request: {e}")))?;
        let host: &dyn Host = ctx.host;
        let host_table = HostTable {
            abi_version: ABI_VERSION,
            struct_size: size_of::<HostTable>() as u32,
            ctx: &host as *const &dyn Host as *const c_void,
            log: host_log,
            progress: host_progress,
            metric: host_metric,
            is_cancelled: host_is_cancelled,
        };
        let mut out = Vec::new();
        let sink = output_sink(&mut out);
        // SAFETY: the request, the host table (and the `host` it points to) and the sink
        // outlive the call, and the table belongs to a library that is never unloaded.
        let status = unsafe { (self.library.table.run)(AbiStr::new(&request), &host_table, &sink) };
        let text = String::from_utf8_lossy(&out);
        let library = self.library.path.display();
        match status {
            STATUS_OK => serde_json::from_str(&text)
                .map_err(|e| StageError::failed(format!("plugin {library} returned an invalid outcome JSON: {e}"))),
            STATUS_FAILED => Err(StageError::failed(text.into_owned())),
            STATUS_PANICKED => Err(StageError::failed(format!("stage panicked in plugin {library}: {text}"))),
            STATUS_CANCELLED => Err(StageError::Cancelled),
            other => Err(StageError::failed(format!("plugin {library} returned the unknown status {other}: {text}"))),
        }
    }
}

fn output_sink(buffer: &mut Vec<u8>) -> AbiSink {
    AbiSink { ctx: buffer as *mut Vec<u8> as *mut c_void, write: append_output }
}

unsafe extern "C" fn append_output(ctx: *mut c_void, bytes: AbiStr) {
    // SAFETY: `ctx` is the `Vec<u8>` of `output_sink`, alive during the call; the plugin
    // passes readable bytes.
    unsafe { (*(ctx as *mut Vec<u8>)).extend_from_slice(bytes.as_bytes()) }
}

/// Returns the host behind a `HostTable::ctx` made in [`DylibStage::run`].
///
/// # Safety
/// `ctx` must be the `ctx` of a host table whose `run` call has not returned.
unsafe fn host_of<'a>(ctx: *const c_void) -> &'a dyn Host {
    // SAFETY: `ctx` points to the `&dyn Host` on the stack of `DylibStage::run`.
    unsafe { *(ctx as *const &dyn Host) }
}

// The callbacks below catch panics because unwinding out of an `extern "C"` function aborts
// the process.

unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, message: AbiStr) {
    // SAFETY: the plugin calls back only during `run`, with readable bytes.
    let (host, message) = unsafe { (host_of(ctx), message.to_string_lossy()) };
    let _ = catch_unwind(AssertUnwindSafe(|| host.log(level_from_code(level), &message)));
}

unsafe extern "C" fn host_progress(ctx: *const c_void, done: u64, total: u64, message: AbiStr) {
    // SAFETY: as in `host_log`.
    let (host, message) = unsafe { (host_of(ctx), message.to_string_lossy()) };
    let _ = catch_unwind(AssertUnwindSafe(|| host.progress(done, total, &message)));
}

unsafe extern "C" fn host_metric(ctx: *const c_void, name: AbiStr, step: u64, value: f64) {
    // SAFETY: as in `host_log`.
    let (host, name) = unsafe { (host_of(ctx), name.to_string_lossy()) };
    let _ = catch_unwind(AssertUnwindSafe(|| host.metric(&name, step, value)));
}

unsafe extern "C" fn host_is_cancelled(ctx: *const c_void) -> bool {
    // SAFETY: as in `host_log`.
    let host = unsafe { host_of(ctx) };
    catch_unwind(AssertUnwindSafe(|| host.is_cancelled())).unwrap_or(true)
}
