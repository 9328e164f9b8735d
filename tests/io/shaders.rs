//! naga parses and validates every shader in `shaders/`, specialises it with the override
//! values the crate uses, and translates it to SPIR-V. No GPU needed.

use std::collections::BTreeSet;
use std::path::Path;

use gru_wgpu::shaders::{
    dtype_prelude, Kernel, COMMON, DTYPE_F16, DTYPE_F32, GEMM_COMMON, GRU_LAYER, GRU_STATE,
    GRU_STATE_VEC4,
};
use gru_wgpu::Dtype;
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn parse_and_validate(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    validate_with(name, source, false)
}

/// Parses and validates `source` with SHADER_FLOAT16 (the f16 storage variants; wgpu grants
/// it with SHADER_F16) and, with `subgroups`, SUBGROUP (wgpu grants it with
/// `Features::SUBGROUP`). Every kernel that does not need subgroups is validated without
/// them, as a device without subgroups will.
fn validate_with(
    name: &str,
    source: &str,
    subgroups: bool,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name} does not parse:\n{}", e.emit_to_string(source)));
    let mut capabilities = Capabilities::default() | Capabilities::SHADER_FLOAT16;
    if subgroups {
        capabilities |= Capabilities::SUBGROUP;
    }
    let info = Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
    (module, info)
}

/// A kernel's module, validated with the capabilities it needs and no more.
fn kernel_module(k: Kernel, dtype: Dtype) -> (naga::Module, naga::valid::ModuleInfo) {
    validate_with(k.file_name(), k.source(dtype), k.needs_subgroups())
}

/// The subgroup kernel needs SUBGROUP (a device without it refuses the module, so the crate
/// must not build it there), and nothing else does.
#[test]
fn only_the_subgroup_kernel_needs_subgroups() {
    for k in Kernel::ALL {
        let source = k.source(Dtype::F32);
        let module = naga::front::wgsl::parse_str(source).expect("parses");
        let without = Validator::new(
            ValidationFlags::all(),
            Capabilities::default() | Capabilities::SHADER_FLOAT16,
        )
        .validate(&module);
        assert_eq!(
            without.is_err(),
            k.needs_subgroups(),
            "{}: validation without SUBGROUP gave {without:?}",
            k.file_name()
        );
    }
}

/// Every `.wgsl` file in `shaders/` is either `common.wgsl` or a kernel the crate loads, and
/// every kernel's file exists: no shader escapes validation.
#[test]
fn every_shader_file_is_a_known_kernel() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    let mut known: BTreeSet<String> = Kernel::ALL
        .iter()
        .map(|k| k.file_name().to_string())
        .collect();
    known.insert("common.wgsl".to_string());
    known.insert("dtype_f32.wgsl".to_string());
    known.insert("dtype_f16.wgsl".to_string());
    known.insert("gru_layer.wgsl".to_string());
    known.insert("gru_state.wgsl".to_string());
    known.insert("gru_state_vec4.wgsl".to_string());
    known.insert("gemm_common.wgsl".to_string());
    known.insert("gru_split.wgsl".to_string());
    known.insert("train_state.wgsl".to_string());
    known.insert("train_state_vec4.wgsl".to_string());
    known.insert("train_gemm_operands.wgsl".to_string());
    known.insert("train_gemm_operands_vec4.wgsl".to_string());
    assert_eq!(
        on_disk, known,
        "shaders/ and gru_wgpu::shaders::Kernel disagree"
    );
    // The embedded sources are the storage-type file, the preludes and the kernel's file, as
    // on disk.
    for (k, dtype) in Kernel::ALL
        .into_iter()
        .flat_map(|k| [(k, Dtype::F32), (k, Dtype::F16)])
    {
        let mut expected =
            std::fs::read_to_string(dir.join(dtype_prelude(dtype))).expect("dtype file");
        for prelude in k.preludes() {
            expected += &std::fs::read_to_string(dir.join(prelude)).expect("prelude file");
        }
        expected += &std::fs::read_to_string(dir.join(k.file_name())).expect("kernel file");
        assert!(
            k.source(dtype) == expected,
            "{}: the embedded source is not preludes {:?} + the file on disk ({} vs {} bytes)",
            k.file_name(),
            k.preludes(),
            k.source(dtype).len(),
            expected.len()
        );
    }
}

#[test]
fn preludes_validate_alone() {
    for dtype in [DTYPE_F32, DTYPE_F16] {
        parse_and_validate("dtype + common.wgsl", &format!("{dtype}{COMMON}"));
        for (name, state) in [
            ("gru_state.wgsl", GRU_STATE),
            ("gru_state_vec4.wgsl", GRU_STATE_VEC4),
        ] {
            parse_and_validate(
                &format!("dtype + common.wgsl + {name} + gru_layer.wgsl"),
                &format!("{dtype}{COMMON}{state}{GRU_LAYER}"),
            );
        }
        parse_and_validate(
            "dtype + common.wgsl + gemm_common.wgsl",
            &format!("{dtype}{COMMON}{GEMM_COMMON}"),
        );
    }
}

#[test]
fn kernels_validate_with_their_entry_points_and_overrides() {
    for (k, dtype) in Kernel::ALL
        .into_iter()
        .flat_map(|k| [(k, Dtype::F32), (k, Dtype::F16)])
    {
        let (module, _) = kernel_module(k, dtype);
        for entry in k.entry_points() {
            assert!(
                module.entry_points.iter().any(|e| e.name == *entry),
                "{} has no entry point {entry}",
                k.file_name()
            );
        }
        let declared: BTreeSet<&str> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.as_deref())
            .collect();
        for o in k.overrides() {
            assert!(
                declared.contains(o),
                "{} has no override {o}",
                k.file_name()
            );
        }
    }
}

/// Specialise each kernel with the override values the crate passes (several hidden sizes),
/// validate again, and translate every entry point to SPIR-V, as the Vulkan backend will.
#[test]
fn kernels_specialise_and_translate_to_spirv() {
    for (k, dtype) in Kernel::ALL
        .into_iter()
        .flat_map(|k| [(k, Dtype::F32), (k, Dtype::F16)])
    {
        let (module, info) = kernel_module(k, dtype);
        let hidden_sizes: &[f64] = if k.overrides().contains(&"HIDDEN") {
            if k == Kernel::GruPersistent {
                &[1.0, 64.0, 256.0]
            } else {
                &[1.0, 64.0, 257.0, 2048.0]
            }
        } else {
            &[0.0]
        };
        // The boolean overrides of the kernel (gru_step's DIRECT and VEC_H, the direct GEMM's
        // VEC_K): every combination of their values.
        let flags: Vec<&str> = ["DIRECT", "VEC_H", "VEC_K"]
            .into_iter()
            .filter(|f| k.overrides().contains(f))
            .collect();
        let directs: Vec<u32> = (0..1u32 << flags.len()).collect();
        for (&h, &direct) in hidden_sizes
            .iter()
            .flat_map(|h| directs.iter().map(move |d| (h, d)))
        {
            let mut constants = naga::back::PipelineConstants::default();
            if k.overrides().contains(&"HIDDEN") {
                constants.insert("HIDDEN".to_string(), h);
            }
            if k.overrides().contains(&"WG") {
                constants.insert("WG".to_string(), 64.0);
            }
            for (bit, flag) in flags.iter().enumerate() {
                constants.insert(flag.to_string(), ((direct >> bit) & 1) as f64);
            }
            for entry in k.entry_points() {
                let (m, i) = naga::back::pipeline_constants::process_overrides(
                    &module,
                    &info,
                    Some((naga::ShaderStage::Compute, entry)),
                    &constants,
                )
                .unwrap_or_else(|e| {
                    panic!(
                        "{} {dtype:?} {entry} H={h} {flags:?}={direct:b}: overrides: {e:?}",
                        k.file_name()
                    )
                });
                let options = naga::back::spv::Options::default();
                let pipeline = naga::back::spv::PipelineOptions {
                    shader_stage: naga::ShaderStage::Compute,
                    entry_point: entry.to_string(),
                };
                naga::back::spv::write_vec(&m, &i, &options, Some(&pipeline)).unwrap_or_else(|e| {
                    panic!(
                        "{} {dtype:?} {entry} H={h} {flags:?}={direct:b}: SPIR-V: {e}",
                        k.file_name()
                    )
                });
            }
        }
    }
}
