//! The GPU context: instance, adapter, device and queue, with the adapter's real limits.

use std::sync::{Arc, Mutex};

use crate::error::{GruError, Result};
use crate::gpu::kernels::{KernelCache, KernelStats};

/// How to pick an adapter. [`ContextOptions::from_env`] reads the usual wgpu variables.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// Backends to try (`WGPU_BACKEND`, e.g. `vulkan`, `metal`, `dx12`, `gl`). `None`: the
    /// primary backends (Vulkan, Metal, DX12) first, then GL if none of them has an adapter.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name (`WGPU_ADAPTER_NAME`).
    pub adapter_name: Option<String>,
    /// Power preference (`WGPU_POWER_PREF`: `low` or `high`; default high performance).
    pub power_preference: wgpu::PowerPreference,
    /// Limits to ask for instead of the adapter's own (tests use this to lower limits).
    pub limits: Option<wgpu::Limits>,
    /// Features requested when the adapter has them (none is required): by default
    /// [`ContextOptions::OPTIONAL_FEATURES`], timestamps for profiling, `SHADER_F16` for
    /// f16 storage and `SUBGROUP` for the split step kernel's reduction. Leaving `SUBGROUP`
    /// out makes that kernel add its lanes' sums in workgroup memory, as on devices without
    /// subgroups.
    pub optional_features: wgpu::Features,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            backends: None,
            adapter_name: None,
            power_preference: wgpu::PowerPreference::HighPerformance,
            limits: None,
            optional_features: ContextOptions::OPTIONAL_FEATURES,
        }
    }
}

impl ContextOptions {
    /// The features a context asks for where the adapter has them: `TIMESTAMP_QUERY`
    /// ([`crate::gpu::GpuGru::set_profiling`]), `SHADER_F16` ([`crate::Dtype::F16`]) and
    /// `SUBGROUP` ([`crate::gpu::StepKernel::Split`]'s reduction).
    #[cfg(not(target_arch = "wasm32"))]
    pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
        .union(wgpu::Features::SHADER_F16)
        .union(wgpu::Features::SUBGROUP);

    /// On the web: `TIMESTAMP_QUERY` and `SHADER_F16` only. The subgroup form of the split
    /// kernel is written in naga's WGSL (the `subgroup_id` builtin, no `enable subgroups;`),
    /// which browsers' shader compilers do not take; the split kernel adds its lanes' sums in
    /// workgroup memory there.
    #[cfg(target_arch = "wasm32")]
    pub const OPTIONAL_FEATURES: wgpu::Features =
        wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::SHADER_F16);

    /// Options from `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`.
    pub fn from_env() -> Self {
        ContextOptions {
            backends: wgpu::Backends::from_env(),
            adapter_name: std::env::var("WGPU_ADAPTER_NAME")
                .ok()
                .filter(|s| !s.is_empty()),
            power_preference: wgpu::PowerPreference::from_env()
                .unwrap_or(wgpu::PowerPreference::HighPerformance),
            limits: None,
            optional_features: ContextOptions::OPTIONAL_FEATURES,
        }
    }
}

/// Errors that reached the device outside any error scope; kept instead of panicking.
#[derive(Clone, Default, Debug)]
pub(crate) struct ErrorLog(Arc<Mutex<Vec<String>>>);

impl ErrorLog {
    pub(crate) fn take(&self) -> Vec<String> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// A device and queue, with the adapter they came from.
///
/// Cheap to clone (the wgpu handles are reference counted). Build one with
/// [`GpuContext::new`] (adapter chosen from the environment), [`GpuContext::with_options`], or
/// share an application's device with [`GpuContext::from_device`].
#[derive(Clone, Debug)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pub(crate) errors: ErrorLog,
    lost: Arc<Mutex<Option<(String, String)>>>,
    faults: Arc<Mutex<Option<(usize, Fault)>>>,
    kernels: KernelCache,
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) poller: crate::gpu::poller::Poller,
}

/// A device error [`GpuContext::inject_fault`] makes an operation report, for testing how a
/// program copes with errors that lavapipe (which overcommits memory) never produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// As if the device had run out of memory (wgpu's `Error::OutOfMemory`).
    OutOfMemory,
    /// As if wgpu had reported a validation error.
    Validation,
}

/// A short description of an adapter wgpu can see (for `gru info`).
#[derive(Clone, Debug)]
pub struct AdapterReport {
    /// Name, backend, device type and driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's own limits.
    pub limits: wgpu::Limits,
    /// The adapter's features.
    pub features: wgpu::Features,
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see on the given backends (all when `None`). Native only: a
/// browser hands out one adapter at a time (see [`GpuContext::new_async`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn enumerate_adapters(backends: Option<wgpu::Backends>) -> Vec<AdapterReport> {
    let backends = backends.unwrap_or(wgpu::Backends::all());
    let inst = instance(backends);
    pollster::block_on(inst.enumerate_adapters(backends))
        .into_iter()
        .map(|a| AdapterReport {
            info: a.get_info(),
            limits: a.limits(),
            features: a.features(),
        })
        .collect()
}

async fn find_adapter(options: &ContextOptions) -> Result<wgpu::Adapter> {
    let tries: Vec<wgpu::Backends> = match options.backends {
        Some(b) => vec![b],
        None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
    };
    let mut seen = Vec::new();
    for backends in tries {
        let inst = instance(backends);
        if let Some(wanted) = &options.adapter_name {
            let wanted = wanted.to_lowercase();
            for adapter in inst.enumerate_adapters(backends).await {
                let info = adapter.get_info();
                if info.name.to_lowercase().contains(&wanted) {
                    return Ok(adapter);
                }
                seen.push(format!("{} ({:?})", info.name, info.backend));
            }
        } else {
            let request = wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                ..Default::default()
            };
            if let Ok(adapter) = inst.request_adapter(&request).await {
                return Ok(adapter);
            }
        }
    }
    Err(match &options.adapter_name {
        Some(name) => GruError::NoAdapter(format!(
            "WGPU_ADAPTER_NAME={name:?} matches none of the adapters found: [{}]",
            seen.join(", ")
        )),
        #[cfg(target_arch = "wasm32")]
        None => GruError::NoAdapter(
            "the browser offers no WebGPU adapter (navigator.gpu is missing, or \
             requestAdapter() found none); WebGPU needs a recent Chrome, Edge or Firefox, \
             a secure context (https or localhost), and a GPU or software adapter it allows"
                .into(),
        ),
        #[cfg(not(target_arch = "wasm32"))]
        None => GruError::NoAdapter(format!(
            "wgpu found no adapter on backends {}; install a Vulkan, Metal or DX12 driver \
             (on Debian: apt-get install mesa-vulkan-drivers) or set WGPU_BACKEND",
            options
                .backends
                .map(|b| format!("{b:?}"))
                .unwrap_or_else(|| "Vulkan/Metal/DX12, then GL".into())
        )),
    })
}

impl GpuContext {
    /// A context on the adapter chosen by `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
    /// `WGPU_POWER_PREF` (see [`ContextOptions::from_env`]), with the adapter's own limits.
    /// Blocks (native targets); [`GpuContext::new_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        Self::with_options(&ContextOptions::from_env())
    }

    /// A context on the adapter `options` pick. Blocks (native targets);
    /// [`GpuContext::with_options_async`] awaits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: &ContextOptions) -> Result<Self> {
        pollster::block_on(Self::with_options_async(options))
    }

    /// The async form of [`GpuContext::new`]. In a browser this is how a context is made:
    /// the page's WebGPU adapter (`navigator.gpu`), or [`GruError::NoAdapter`] where the
    /// browser has none.
    pub async fn new_async() -> Result<Self> {
        Self::with_options_async(&ContextOptions::from_env()).await
    }

    /// The async form of [`GpuContext::with_options`].
    pub async fn with_options_async(options: &ContextOptions) -> Result<Self> {
        let adapter = find_adapter(options).await?;
        let info = adapter.get_info();
        let limits = options.limits.clone().unwrap_or_else(|| adapter.limits());
        let desc = wgpu::DeviceDescriptor {
            label: Some("gru-wgpu"),
            // Timestamps let a model report its GPU time (GpuGru::set_profiling), SHADER_F16
            // allows f16 storage; nothing is required of the adapter.
            required_features: adapter.features() & options.optional_features,
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) =
            adapter
                .request_device(&desc)
                .await
                .map_err(|e| GruError::RequestDevice {
                    adapter: info.name.clone(),
                    message: e.to_string(),
                })?;
        Ok(Self::from_parts(device, queue, info))
    }

    /// Shares a device the application already has. `info` is reported by
    /// [`GpuContext::adapter_info`]; the device's own limits are used.
    ///
    /// The context installs an uncaptured-error handler on the device (wgpu's default one
    /// panics); errors are reported by the next forward instead.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        Self::from_parts(device, queue, info)
    }

    fn from_parts(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let errors = ErrorLog::default();
        let log = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut v = match log.0.lock() {
                Ok(v) => v,
                Err(poisoned) => poisoned.into_inner(),
            };
            v.push(e.to_string());
        }));
        let lost: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut v = match flag.lock() {
                Ok(v) => v,
                Err(poisoned) => poisoned.into_inner(),
            };
            *v = Some((format!("{reason:?}"), message));
        });
        let limits = device.limits();
        GpuContext {
            device,
            queue,
            info,
            limits,
            errors,
            lost,
            faults: Arc::default(),
            kernels: KernelCache::default(),
            #[cfg(not(target_arch = "wasm32"))]
            poller: Default::default(),
        }
    }

    /// `Err(GruError::DeviceLost)` once the device has been lost, `Ok` before.
    pub fn check_lost(&self) -> Result<()> {
        let v = match self.lost.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &*v {
            Some((reason, message)) => Err(GruError::DeviceLost {
                reason: reason.clone(),
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Like [`GpuContext::check_lost`], after letting wgpu process the device's events (a
    /// destroyed or lost device reports it from there). For error paths: it polls.
    pub(crate) fn check_lost_after_poll(&self) -> Result<()> {
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.check_lost()
    }

    /// Fault injection: the GPU operation (error scope) of this context `skip + 1` from now —
    /// building a model, allocating a shape's buffers, a forward, a feed, reading state —
    /// fails with `fault`, reported as the device would report it ([`GruError::Gpu`] naming the
    /// operation). The operation's own work has already been recorded; the caller sees the
    /// error, and later calls must work again. Shared by every clone of the context.
    pub fn inject_fault(&self, skip: usize, fault: Fault) {
        let mut f = match self.faults.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        *f = Some((skip, fault));
    }

    /// Disarms a fault injected by [`GpuContext::inject_fault`] that has not fired yet.
    pub fn clear_fault(&self) {
        let mut f = match self.faults.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        *f = None;
    }

    /// The injected fault due now, if any (counts down the skips).
    pub(crate) fn take_fault(&self) -> Option<Fault> {
        let mut f = match self.faults.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        match *f {
            Some((0, fault)) => {
                *f = None;
                Some(fault)
            }
            Some((n, fault)) => {
                *f = Some((n - 1, fault));
                None
            }
            None => None,
        }
    }

    /// Whether `other` is this context or a clone of it (whose buffers may be bound with
    /// this one's). Contexts built separately count as different even around one device:
    /// wgpu's ids repeat across instances, so they cannot tell.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn same_device(&self, other: &GpuContext) -> bool {
        Arc::ptr_eq(&self.lost, &other.lost)
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter's name, backend, type and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// The limits the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// The kernel cache every model and session of this context (and its clones) takes its
    /// shader modules, layouts and pipelines from.
    pub(crate) fn kernels(&self) -> &KernelCache {
        &self.kernels
    }
    /// What the kernel cache has compiled and served so far: a second model with the same
    /// storage type, hidden size and convention compiles nothing.
    pub fn kernel_stats(&self) -> KernelStats {
        self.kernels.stats()
    }
    /// One line: `name (backend, device type, driver)`.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }
}

/// One line: `name (backend, device type, driver driver_info)`.
pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    if info.backend == wgpu::Backend::BrowserWebGpu {
        // Browsers hide the adapter's name and driver; say what is known.
        let name = if info.name.is_empty() {
            "unnamed WebGPU adapter"
        } else {
            info.name.as_str()
        };
        let kind = if info.device_type == wgpu::DeviceType::Cpu {
            "software (CPU)"
        } else {
            "GPU"
        };
        return format!("{name} (browser WebGPU, {kind})");
    }
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

/// A context of its own for a unit test (so that other tests' models do not count), or
/// `None` where `GRU_REQUIRE_GPU=0` allows skipping; without an adapter it panics otherwise.
#[cfg(test)]
pub(crate) fn test_context(test: &str) -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("GRU_REQUIRE_GPU").as_deref() == Ok("0") => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
        Err(e) => panic!("no GPU adapter ({e}); set GRU_REQUIRE_GPU=0 to skip"),
    }
}
