//! gru_wgpu in the browser: JavaScript bindings (wasm-bindgen) over the library's async API,
//! running on the page's WebGPU adapter, with the f64 CPU reference compiled to wasm beside
//! it for checking.
//!
//! Built with `cargo build -p gru-web --target wasm32-unknown-unknown --release` and
//! `wasm-bindgen --target web` into `crates/gru-web/www/pkg` (see `scripts/build-web.sh`).
//! JavaScript sees (every shape row-major; `T` steps, `B` batch, `I` inputs, `L` layers, `D`
//! directions, `H` units; gates in the order of the file's framework):
//!
//! ```js
//! import init, * as gru from './pkg/gru_web.js';
//! await init();
//! const info = await gru.adapterInfo();            // null without WebGPU
//! const model = await gru.GruModel.load(bytes);    // PyTorch / Keras / ONNX file bytes
//! const out = await model.forward(x, {T, B});      // {y, yShape, hN, hNShape, ms}
//! const ref = model.forwardCpu(x, {T, B});         // the CPU reference, same shapes
//! gru.compare(out.y, ref.y);                       // onnxruntime's f32 tolerance
//! const s = await model.session(8);                // streaming, state kept on the GPU
//! const id = await s.open();
//! const y = await s.feed([id], frames, steps);     // [k, steps, H]
//! ```
//!
//! Every error (a promise's rejection or a thrown call) is a JavaScript `Error` carrying the
//! library's one-line message; nothing panics on what JavaScript passes in.

pub mod shapes;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_intrusive::sync::LocalMutex;
use gru_wgpu::gpu::{
    ContextOptions, Feed, GpuContext, GpuGru, GruSession as Session, ModelOptions, StreamId,
};
use gru_wgpu::init::{self, Init};
use gru_wgpu::io::{self, ImportOptions, Imported};
use gru_wgpu::{cpu, Convention, Direction, Dtype, GruError, GruModel as Network, Tolerance};
use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use shapes::{layout_name, output_shapes, parse_layout, ForwardArgs, Origin};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_time::Instant;

/// A JavaScript `Error` with `e`'s message.
fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// A JavaScript `Error` for an argument of the wrong kind.
fn bad_arg(what: &str, expected: &str, got: &JsValue) -> JsValue {
    let got = if got.is_undefined() {
        "undefined".to_string()
    } else if got.is_null() {
        "null".to_string()
    } else if let Some(s) = got.as_string() {
        format!("{s:?}")
    } else if let Some(n) = got.as_f64() {
        format!("{n}")
    } else {
        got.js_typeof().as_string().unwrap_or_else(|| "?".into())
    };
    js_err(GruError::invalid(what, expected, got))
}

thread_local! {
    /// The page's GPU context, made by the first call that needs it.
    static CONTEXT: RefCell<Option<GpuContext>> = const { RefCell::new(None) };
    /// Whether that context asks for WebGPU's default limits instead of the adapter's.
    static DEFAULT_LIMITS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Which limits the page's device is created with, before its first GPU call: `"adapter"`
/// (the default: the adapter's own, e.g. larger bindings on a discrete GPU) or `"default"`
/// (WebGPU's default limits, which every adapter grants: 8 storage buffers per stage, 128 MiB
/// bindings, 65535 workgroups per dimension, 16 KiB of workgroup memory; every kernel runs
/// within them, splitting work where a problem is larger). `adapterInfo().limits` reports the
/// device's. Throws once the device exists, or for another value.
#[wasm_bindgen(js_name = setDeviceLimits)]
pub fn set_device_limits(which: &str) -> Result<(), JsValue> {
    let default = match which {
        "adapter" => false,
        "default" => true,
        other => {
            return Err(bad_arg(
                "device limits",
                "\"adapter\" or \"default\"",
                &other.into(),
            ))
        }
    };
    if CONTEXT.with(|c| c.borrow().is_some()) {
        return Err(js_err(GruError::invalid(
            "setDeviceLimits",
            "a call before the page's first GPU call",
            "the device already exists",
        )));
    }
    DEFAULT_LIMITS.with(|d| d.set(default));
    Ok(())
}

/// The page's context: the WebGPU adapter and device, created once.
async fn context() -> Result<GpuContext, GruError> {
    if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
        return Ok(ctx);
    }
    let options = ContextOptions {
        limits: DEFAULT_LIMITS.with(|d| d.get()).then(wgpu::Limits::default),
        ..ContextOptions::from_env()
    };
    let ctx = GpuContext::with_options_async(&options).await?;
    // Two calls may have raced to create it: keep the first.
    Ok(CONTEXT.with(|c| c.borrow_mut().get_or_insert(ctx).clone()))
}

// ---- reading JavaScript arguments -------------------------------------------------------

/// `opts[key]`, or `None` when `opts` is undefined/null or the field is undefined/null.
fn field(opts: &JsValue, key: &str) -> Result<Option<JsValue>, JsValue> {
    if opts.is_undefined() || opts.is_null() {
        return Ok(None);
    }
    if !opts.is_object() {
        return Err(bad_arg("options", "an object", opts));
    }
    let v = Reflect::get(opts, &JsValue::from_str(key))?;
    Ok(if v.is_undefined() || v.is_null() {
        None
    } else {
        Some(v)
    })
}

/// A non-negative whole number.
fn count(v: &JsValue, what: &str) -> Result<usize, JsValue> {
    match v.as_f64() {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9.0e15 => Ok(n as usize),
        _ => Err(bad_arg(what, "a non-negative whole number", v)),
    }
}

fn count_field(opts: &JsValue, key: &str, default: Option<usize>) -> Result<usize, JsValue> {
    match (field(opts, key)?, default) {
        (Some(v), _) => count(&v, key),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(bad_arg(
            key,
            "a non-negative whole number",
            &JsValue::UNDEFINED,
        )),
    }
}

fn bool_field(opts: &JsValue, key: &str, default: bool) -> Result<bool, JsValue> {
    match field(opts, key)? {
        None => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| bad_arg(key, "true or false", &v)),
    }
}

fn string_field(opts: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    match field(opts, key)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| bad_arg(key, "a string", &v)),
    }
}

/// Numbers from a `Float32Array`, `Float64Array` or plain array of numbers.
fn floats(v: &JsValue, what: &str) -> Result<Vec<f32>, JsValue> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    if let Some(a) = v.dyn_ref::<js_sys::Float64Array>() {
        return Ok(a.to_vec().into_iter().map(|x| x as f32).collect());
    }
    if Array::is_array(v) {
        return Array::from(v)
            .iter()
            .map(|e| {
                e.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| bad_arg(what, "a Float32Array or an array of numbers", &e))
            })
            .collect();
    }
    Err(bad_arg(what, "a Float32Array or an array of numbers", v))
}

/// Whole numbers from an integer typed array or a plain array (`lengths`, stream ids).
fn integers(v: &JsValue, what: &str) -> Result<Vec<i64>, JsValue> {
    let values: Vec<f64> = if let Some(a) = v.dyn_ref::<js_sys::Int32Array>() {
        a.to_vec().into_iter().map(f64::from).collect()
    } else if let Some(a) = v.dyn_ref::<js_sys::Uint32Array>() {
        a.to_vec().into_iter().map(f64::from).collect()
    } else if Array::is_array(v) {
        Array::from(v)
            .iter()
            .map(|e| {
                e.as_f64()
                    .ok_or_else(|| bad_arg(what, "an array of whole numbers", &e))
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(bad_arg(
            what,
            "an Int32Array, Uint32Array or array of whole numbers",
            v,
        ));
    };
    values
        .into_iter()
        .map(|x| {
            if x.fract() == 0.0 && x.abs() <= 9.0e15 {
                Ok(x as i64)
            } else {
                Err(bad_arg(what, "whole numbers", &JsValue::from_f64(x)))
            }
        })
        .collect()
}

fn parse_dtype(opts: &JsValue) -> Result<Dtype, JsValue> {
    match string_field(opts, "dtype")?.as_deref() {
        None | Some("f32") | Some("float32") => Ok(Dtype::F32),
        Some("f16") | Some("float16") => Ok(Dtype::F16),
        Some(other) => Err(js_err(GruError::invalid(
            "dtype",
            "\"f32\" or \"f16\"",
            format!("{other:?}"),
        ))),
    }
}

/// Where a model runs: `"auto"` (the GPU when WebGPU works, else the CPU reference), `"gpu"`
/// or `"cpu"`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Device {
    Auto,
    Gpu,
    Cpu,
}

fn parse_device(opts: &JsValue) -> Result<Device, JsValue> {
    match string_field(opts, "device")?.as_deref() {
        None | Some("auto") => Ok(Device::Auto),
        Some("gpu") => Ok(Device::Gpu),
        Some("cpu") => Ok(Device::Cpu),
        Some(other) => Err(js_err(GruError::invalid(
            "device",
            "\"auto\", \"gpu\" or \"cpu\"",
            format!("{other:?}"),
        ))),
    }
}

fn parse_forward(x: &JsValue, opts: &JsValue) -> Result<ForwardArgs, JsValue> {
    if opts.is_undefined() || opts.is_null() {
        return Err(bad_arg("options", "an object with T and B", opts));
    }
    Ok(ForwardArgs {
        x: floats(x, "x")?,
        seq_len: count_field(opts, "T", None)?,
        batch: count_field(opts, "B", None)?,
        h0: field(opts, "h0")?.map(|v| floats(&v, "h0")).transpose()?,
        lengths: field(opts, "lengths")?
            .map(|v| integers(&v, "lengths"))
            .transpose()?,
        layout: string_field(opts, "layout")?
            .map(|s| parse_layout(&s).map_err(js_err))
            .transpose()?,
    })
}

// ---- building JavaScript values ---------------------------------------------------------

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Reflect::set on a plain object only fails for a frozen one.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn shape_array(shape: &[usize]) -> Array {
    shape.iter().map(|&n| JsValue::from_f64(n as f64)).collect()
}

fn opt_string(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

// ---- the adapter --------------------------------------------------------------------------

/// The page's WebGPU adapter: `{name, backend, deviceType, driver, description, shaderF16,
/// subgroups, limits: {maxStorageBuffersPerShaderStage, maxStorageBufferBindingSize,
/// maxComputeWorkgroupsPerDimension, maxComputeWorkgroupStorageSize}}` (the limits the device
/// was created with: [`set_device_limits`]), or `null` when the browser has no WebGPU adapter.
#[wasm_bindgen(js_name = adapterInfo)]
pub fn adapter_info() -> Promise {
    future_to_promise(async move {
        let ctx = match context().await {
            Ok(ctx) => ctx,
            Err(GruError::NoAdapter(_)) => return Ok(JsValue::NULL),
            Err(e) => return Err(js_err(e)),
        };
        let info = ctx.adapter_info();
        let features = ctx.device().features();
        let limits = ctx.limits();
        let obj = Object::new();
        set(&obj, "name", info.name.as_str());
        set(&obj, "backend", format!("{:?}", info.backend));
        set(&obj, "deviceType", format!("{:?}", info.device_type));
        set(&obj, "driver", info.driver.as_str());
        set(&obj, "description", ctx.describe());
        set(
            &obj,
            "shaderF16",
            features.contains(wgpu::Features::SHADER_F16),
        );
        set(
            &obj,
            "subgroups",
            features.contains(wgpu::Features::SUBGROUP),
        );
        let l = Object::new();
        set(
            &l,
            "maxStorageBuffersPerShaderStage",
            limits.max_storage_buffers_per_shader_stage,
        );
        set(
            &l,
            "maxStorageBufferBindingSize",
            limits.max_storage_buffer_binding_size as f64,
        );
        set(
            &l,
            "maxComputeWorkgroupsPerDimension",
            limits.max_compute_workgroups_per_dimension,
        );
        set(
            &l,
            "maxComputeWorkgroupStorageSize",
            limits.max_compute_workgroup_storage_size,
        );
        set(&obj, "limits", l);
        Ok(obj.into())
    })
}

// ---- models -------------------------------------------------------------------------------

/// What a model is, fixed when it is made.
struct Meta {
    origin: Origin,
    dtype: Dtype,
    /// Why it runs elsewhere than asked (no WebGPU, no `shader-f16`), when it does.
    fallback: Option<String>,
    adapter: Option<String>,
}

/// A GRU network on the page's GPU (or on the CPU reference when there is none).
///
/// Weights are uploaded once when the model is made and stay on the device. Calls that touch
/// the GPU return promises and take turns (a second forward waits for the first).
#[wasm_bindgen(js_name = GruModel)]
pub struct WebModel {
    network: Rc<Network>,
    meta: Rc<Meta>,
    gpu: Option<Rc<LocalMutex<GpuGru>>>,
}

/// Builds a model placed on `device`.
async fn place(
    network: Network,
    origin: Origin,
    device: Device,
    dtype: Dtype,
) -> Result<WebModel, GruError> {
    let (gpu, fallback, adapter, dtype) = match device {
        Device::Cpu => (None, None, None, dtype),
        Device::Gpu | Device::Auto => {
            let built = async {
                let ctx = context().await?;
                let options = ModelOptions {
                    dtype,
                    allow_f32_fallback: device == Device::Auto,
                };
                let gru = GpuGru::from_model_async(&ctx, &network, &options).await?;
                Ok::<_, GruError>((gru, ctx.describe()))
            }
            .await;
            match built {
                Ok((gru, adapter)) => {
                    let fallback = gru.fallback().map(str::to_string);
                    let dtype = gru.dtype();
                    (
                        Some(Rc::new(LocalMutex::new(gru, true))),
                        fallback,
                        Some(adapter),
                        dtype,
                    )
                }
                Err(e) if device == Device::Auto => (
                    None,
                    Some(format!("{e}; running on the CPU reference path")),
                    None,
                    dtype,
                ),
                Err(e) => return Err(e),
            }
        }
    };
    Ok(WebModel {
        network: Rc::new(network),
        meta: Rc::new(Meta {
            origin,
            dtype,
            fallback,
            adapter,
        }),
        gpu,
    })
}

fn direction(bidirectional: bool) -> Direction {
    if bidirectional {
        Direction::Bidirectional
    } else {
        Direction::Forward
    }
}

/// The outputs of one forward as `{y, yShape, hN, hNShape, ms}`.
fn forward_result(origin: Origin, out: &gru_wgpu::GruOutput, ms: f64) -> JsValue {
    let (y_shape, h_shape) = output_shapes(origin, &out.dims);
    let obj = Object::new();
    set(&obj, "y", Float32Array::from(out.y.as_slice()));
    set(&obj, "yShape", shape_array(&y_shape));
    set(&obj, "hN", Float32Array::from(out.y_h.as_slice()));
    set(&obj, "hNShape", shape_array(&h_shape));
    set(&obj, "ms", ms);
    obj.into()
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

#[wasm_bindgen(js_class = GruModel)]
impl WebModel {
    /// A model from the bytes of a model file: a PyTorch `nn.GRU` state_dict
    /// (`.safetensors`), Keras GRU weights (`.npz` or `.safetensors`) or an ONNX model with
    /// one GRU node (`.onnx`); the format is read from the bytes. `opts`: `{name, device:
    /// "auto"|"gpu"|"cpu", dtype: "f32"|"f16", kerasResetAfter, prefix}`.
    pub fn load(bytes: &[u8], opts: JsValue) -> Promise {
        let bytes = bytes.to_vec();
        let parsed = (|| {
            let name = string_field(&opts, "name")?.unwrap_or_else(|| "model bytes".into());
            let options = ImportOptions {
                keras_reset_after: match field(&opts, "kerasResetAfter")? {
                    None => None,
                    Some(v) => Some(
                        v.as_bool()
                            .ok_or_else(|| bad_arg("kerasResetAfter", "true or false", &v))?,
                    ),
                },
                pytorch_prefix: string_field(&opts, "prefix")?,
            };
            Ok::<_, JsValue>((name, options, parse_device(&opts)?, parse_dtype(&opts)?))
        })();
        future_to_promise(async move {
            let (name, options, device, dtype) = parsed?;
            let imported = io::load_bytes(&bytes, &name, &options).map_err(js_err)?;
            let origin = match &imported {
                Imported::PyTorch(_) => Origin::PyTorch,
                Imported::Keras(_) => Origin::Keras,
                Imported::Onnx(m) => Origin::Onnx(m.layout),
            };
            let network = imported.model().clone();
            let model = place(network, origin, device, dtype)
                .await
                .map_err(js_err)?;
            Ok(model.into())
        })
    }

    /// A seeded model (PyTorch's initialisation, `U(±1/√H)`): `opts` `{inputSize,
    /// hiddenSize, numLayers = 1, bidirectional = false, resetAfter = true, seed = 0,
    /// device, dtype}`. Its forward takes ONNX's shapes (`X[T, B, I]` → `Y[T, D, B, H]`,
    /// `Y_h[L·D, B, H]`).
    pub fn seeded(opts: JsValue) -> Promise {
        let parsed = (|| {
            Ok::<_, JsValue>((
                count_field(&opts, "inputSize", None)?,
                count_field(&opts, "hiddenSize", None)?,
                count_field(&opts, "numLayers", Some(1))?,
                bool_field(&opts, "bidirectional", false)?,
                bool_field(&opts, "resetAfter", true)?,
                count_field(&opts, "seed", Some(0))?,
                parse_device(&opts)?,
                parse_dtype(&opts)?,
            ))
        })();
        future_to_promise(async move {
            let (i, h, layers, bidirectional, reset_after, seed, device, dtype) = parsed?;
            let convention = if reset_after {
                Convention::ResetAfter
            } else {
                Convention::ResetBefore
            };
            let network = init::gru_model(
                Init::PyTorch,
                convention,
                direction(bidirectional),
                layers,
                i,
                h,
                seed as u64,
            )
            .map_err(js_err)?;
            let model = place(network, Origin::Seeded, device, dtype)
                .await
                .map_err(js_err)?;
            Ok(model.into())
        })
    }

    /// `{format, inputSize, hiddenSize, numLayers, numDirections, resetAfter, dtype, device,
    /// fallback, adapter, layout, style}`: `layout` and `style` are what
    /// [`forward`](WebModel::forward) uses by default.
    pub fn info(&self) -> JsValue {
        let (n, m) = (&self.network, &self.meta);
        let obj = Object::new();
        set(&obj, "format", m.origin.format());
        set(&obj, "inputSize", n.input_size() as f64);
        set(&obj, "hiddenSize", n.hidden_size() as f64);
        set(&obj, "numLayers", n.num_layers() as f64);
        set(&obj, "numDirections", n.num_directions() as f64);
        set(&obj, "resetAfter", n.convention() == Convention::ResetAfter);
        set(&obj, "dtype", m.dtype.name());
        set(
            &obj,
            "device",
            if self.gpu.is_some() { "gpu" } else { "cpu" },
        );
        set(&obj, "fallback", opt_string(m.fallback.as_deref()));
        set(&obj, "adapter", opt_string(m.adapter.as_deref()));
        set(&obj, "layout", layout_name(m.origin.default_layout()));
        set(&obj, "style", m.origin.style_name());
        obj.into()
    }

    /// Runs the network on `x` (`Float32Array`); `opts` `{T, B, h0, lengths, layout}`.
    /// Resolves to `{y, yShape, hN, hNShape, ms}` in the shapes of the model's framework (see
    /// the crate docs); on the GPU when the model is there, else on the CPU reference.
    pub fn forward(&self, x: JsValue, opts: JsValue) -> Promise {
        let args = parse_forward(&x, &opts);
        let (network, meta, gpu) = (self.network.clone(), self.meta.clone(), self.gpu.clone());
        future_to_promise(async move {
            let args = args?;
            let start = Instant::now();
            let input = args.input(meta.origin).map_err(js_err)?;
            let out = match gpu {
                Some(gpu) => {
                    let mut gru = gpu.lock().await;
                    gru.forward_async(&input).await
                }
                None => cpu_forward(&network, meta.dtype, &args, meta.origin),
            }
            .map_err(js_err)?;
            Ok(forward_result(meta.origin, &out, elapsed_ms(start)))
        })
    }

    /// The f64 CPU reference on the same arguments as [`forward`](WebModel::forward),
    /// synchronously (for an f16 model: weights and inputs rounded to f16 first, as the GPU
    /// stores them).
    #[wasm_bindgen(js_name = forwardCpu)]
    pub fn forward_cpu(&self, x: JsValue, opts: JsValue) -> Result<JsValue, JsValue> {
        let args = parse_forward(&x, &opts)?;
        let start = Instant::now();
        let out =
            cpu_forward(&self.network, self.meta.dtype, &args, self.meta.origin).map_err(js_err)?;
        Ok(forward_result(self.meta.origin, &out, elapsed_ms(start)))
    }

    /// A streaming session of `capacity` streams over this model (GPU models that run
    /// forward only). Each stream's state stays on the GPU between feeds; the session reads
    /// the model's weights where they already are (no second upload).
    pub fn session(&self, capacity: JsValue) -> Promise {
        let capacity = count(&capacity, "capacity");
        let (network, meta, gpu) = (self.network.clone(), self.meta.clone(), self.gpu.clone());
        future_to_promise(async move {
            let capacity = capacity?;
            let Some(gpu) = gpu else {
                return Err(js_err(GruError::invalid(
                    "model for a streaming session",
                    "a model on the GPU",
                    meta.fallback
                        .clone()
                        .unwrap_or_else(|| "a model on the CPU reference path".into()),
                )));
            };
            let gru = gpu.lock().await.share();
            let session = Session::new_async(gru, capacity).await.map_err(js_err)?;
            let web = WebSession {
                state_len: session.state_len(),
                capacity,
                hidden: network.hidden_size(),
                session: Rc::new(LocalMutex::new(session, true)),
                ids: Rc::new(RefCell::new(Ids::default())),
            };
            Ok(web.into())
        })
    }
}

/// The CPU reference on `args` (rounded to `dtype` first, as the GPU stores them).
fn cpu_forward(
    network: &Network,
    dtype: Dtype,
    args: &ForwardArgs,
    origin: Origin,
) -> gru_wgpu::Result<gru_wgpu::GruOutput> {
    if dtype == Dtype::F32 {
        return cpu::forward_model(network, &args.input(origin)?);
    }
    let round = |v: &[f32]| v.iter().map(|&x| dtype.round(x)).collect::<Vec<_>>();
    let rounded = ForwardArgs {
        x: round(&args.x),
        h0: args.h0.as_deref().map(round),
        ..args.clone()
    };
    cpu::forward_model(&network.rounded_to(dtype), &rounded.input(origin)?)
}

// ---- sessions -----------------------------------------------------------------------------

/// The JavaScript ids of a session's open streams.
#[derive(Default)]
struct Ids {
    open: HashMap<u32, StreamId>,
    next: u32,
}

impl Ids {
    fn get(&self, id: &JsValue) -> Result<StreamId, JsValue> {
        self.key(id).map(|(_, stream)| stream)
    }

    /// The map's key of `id` and its stream.
    fn key(&self, id: &JsValue) -> Result<(u32, StreamId), JsValue> {
        let n = count(id, "stream")?;
        u32::try_from(n)
            .ok()
            .and_then(|n| self.open.get(&n).map(|&stream| (n, stream)))
            .ok_or_else(|| {
                js_err(GruError::invalid(
                    "stream",
                    "the id of an open stream of this session",
                    n,
                ))
            })
    }
}

/// A streaming session: up to `capacity` streams, each fed in chunks of steps, each keeping
/// its state `[L, H]` on the GPU between feeds. Outputs are the last layer's.
#[wasm_bindgen(js_name = GruSession)]
pub struct WebSession {
    session: Rc<LocalMutex<Session>>,
    ids: Rc<RefCell<Ids>>,
    state_len: usize,
    capacity: usize,
    hidden: usize,
}

#[wasm_bindgen(js_class = GruSession)]
impl WebSession {
    /// `L·H`, the length of a stream's state.
    #[wasm_bindgen(getter, js_name = stateLen)]
    pub fn state_len(&self) -> usize {
        self.state_len
    }

    /// How many streams may be open at once.
    #[wasm_bindgen(getter)]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Opens a stream from a zero state, or from `state` (`Float32Array [L·H]`); resolves to
    /// its id.
    pub fn open(&self, state: JsValue) -> Promise {
        let state = if state.is_undefined() || state.is_null() {
            Ok(None)
        } else {
            floats(&state, "state").map(Some)
        };
        let (session, ids) = (self.session.clone(), self.ids.clone());
        future_to_promise(async move {
            let state = state?;
            let stream = {
                let mut s = session.lock().await;
                s.open_async(state.as_deref()).await.map_err(js_err)?
            };
            let mut ids = ids.borrow_mut();
            let id = ids.next;
            ids.next = ids.next.wrapping_add(1);
            ids.open.insert(id, stream);
            Ok(JsValue::from_f64(id as f64))
        })
    }

    /// Feeds `steps` steps of each stream in `streams` (ids, each at most once): `x` is
    /// `Float32Array [k, steps, I]`, each stream's steps back to back. Resolves to the last
    /// layer's outputs `Float32Array [k, steps, H]`.
    pub fn feed(&self, streams: JsValue, x: JsValue, steps: JsValue) -> Promise {
        let parsed = (|| {
            let ids = self.ids.borrow();
            let list = integers(&streams, "streams")?
                .into_iter()
                .map(|n| ids.get(&JsValue::from_f64(n as f64)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, JsValue>((list, floats(&x, "x")?, count(&steps, "steps")?))
        })();
        let session = self.session.clone();
        future_to_promise(async move {
            let (streams, x, steps) = parsed?;
            let mut s = session.lock().await;
            let y = s
                .feed_async(&Feed::new(&streams, &x, steps))
                .await
                .map_err(js_err)?;
            Ok(Float32Array::from(y.as_slice()).into())
        })
    }

    /// Resolves to stream `id`'s state, `Float32Array [L, H]` (layer 0 first).
    pub fn state(&self, id: JsValue) -> Promise {
        let stream = self.ids.borrow().get(&id);
        let session = self.session.clone();
        future_to_promise(async move {
            let stream = stream?;
            let mut s = session.lock().await;
            let state = s.read_state_async(stream).await.map_err(js_err)?;
            Ok(Float32Array::from(state.as_slice()).into())
        })
    }

    /// Sets stream `id`'s state to `state` (`[L·H]`), or to zeros when it is omitted.
    #[wasm_bindgen(js_name = setState)]
    pub fn set_state(&self, id: JsValue, state: JsValue) -> Promise {
        let stream = self.ids.borrow().get(&id);
        let state = if state.is_undefined() || state.is_null() {
            Ok(None)
        } else {
            floats(&state, "state").map(Some)
        };
        let session = self.session.clone();
        future_to_promise(async move {
            let (stream, state) = (stream?, state?);
            let mut s = session.lock().await;
            s.set_state_async(stream, state.as_deref())
                .await
                .map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Closes stream `id` at once (its id is refused from now on); its slot is freed once
    /// the feeds before it have finished.
    pub fn close(&self, id: JsValue) -> Result<(), JsValue> {
        let (key, stream) = self.ids.borrow().key(&id)?;
        self.ids.borrow_mut().open.remove(&key);
        let session = self.session.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut s = session.lock().await;
            // The id was checked above and removed from the map: close cannot fail.
            let _ = s.close(stream);
        });
        Ok(())
    }

    /// `H`, the width of each output row.
    #[wasm_bindgen(getter, js_name = hiddenSize)]
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }
}

// ---- helpers --------------------------------------------------------------------------------

/// Compares `got` with `expected` element by element under onnxruntime's tolerance
/// (`|a − e| ≤ 1e-5 + 1e-4·|e|` for `dtype` `"f32"`, the default; `2.5e-3 + 1e-3·|e|` for
/// `"f16"`): `{ok, failures, maxAbsErr, worstIndex, got, expected, tolerance}`, the worst
/// element being the one furthest past (or closest to) its bound. Throws when the lengths
/// differ.
#[wasm_bindgen]
pub fn compare(got: &[f32], expected: &[f32], dtype: JsValue) -> Result<JsValue, JsValue> {
    let opts = Object::new();
    set(&opts, "dtype", dtype);
    let tolerance = Tolerance::for_dtype(parse_dtype(&opts)?);
    if got.len() != expected.len() {
        return Err(js_err(GruError::shape(
            "compared arrays",
            format!("{} elements (expected's length)", expected.len()),
            format!("{} elements", got.len()),
        )));
    }
    let c = tolerance.compare(got, expected);
    let obj = Object::new();
    set(&obj, "ok", c.passed());
    set(&obj, "failures", c.failures as f64);
    set(&obj, "maxAbsErr", c.max_abs_err);
    let (index, g, e) = c.worst.map_or((-1.0, f64::NAN, f64::NAN), |(i, g, e)| {
        (i as f64, g as f64, e as f64)
    });
    set(&obj, "worstIndex", index);
    set(&obj, "got", g);
    set(&obj, "expected", e);
    set(
        &obj,
        "tolerance",
        format!("|a−e| ≤ {:e} + {:e}·|e|", tolerance.atol, tolerance.rtol),
    );
    Ok(obj.into())
}

/// Reads a `.npy` file's bytes (float32, float64 or integers, converted to f32):
/// `{data: Float32Array, shape}`.
#[wasm_bindgen(js_name = parseNpy)]
pub fn parse_npy(bytes: &[u8]) -> Result<JsValue, JsValue> {
    let (shape, data) = match gru_wgpu::npy::parse_f32(bytes, "the .npy bytes") {
        Ok(a) => (a.shape, a.data),
        Err(float_error) => match gru_wgpu::npy::parse_i64(bytes, "the .npy bytes") {
            Ok((shape, v)) => (shape, v.into_iter().map(|x| x as f32).collect()),
            Err(_) => return Err(js_err(float_error)),
        },
    };
    let obj = Object::new();
    set(&obj, "data", Float32Array::from(data.as_slice()));
    set(&obj, "shape", shape_array(&shape));
    Ok(obj.into())
}

/// The crate's version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
