//! Compile-time checks: the types a server shares between threads are `Send` (and `Sync`
//! where sharing by reference makes sense).

use gru_wgpu::gpu::{GpuContext, GpuGru, GruSession, StreamId};
use gru_wgpu::head::{Classifier, GpuClassifier};
use gru_wgpu::{GruError, GruModel, GruOutput, GruWeights};

fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    send::<GpuContext>();
    sync::<GpuContext>();
    send::<GpuGru>();
    sync::<GpuGru>();
    send::<GruSession>();
    sync::<GruSession>();
    send::<StreamId>();
    send::<GpuClassifier>();
    send::<GruModel>();
    sync::<GruModel>();
    send::<GruWeights>();
    send::<Classifier>();
    send::<GruOutput>();
    send::<GruError>();
    sync::<GruError>();
}
