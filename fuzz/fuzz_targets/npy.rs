//! The `.npy` reader: `npy::parse_f32` and `npy::parse_i64` on arbitrary bytes. Whatever they
//! accept must survive a round trip through `npy::encode_f32`.
#![no_main]

use gru_wgpu::npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = npy::parse_f32(data, "fuzz.npy") {
        let count: usize = a.shape.iter().product();
        assert_eq!(count, a.data.len(), "element count of an accepted array");
        let bytes = npy::encode_f32(&a.shape, &a.data).expect("re-encoding an accepted array");
        let b = npy::parse_f32(&bytes, "roundtrip.npy").expect("reading our own encoding");
        assert_eq!(a.shape, b.shape);
        assert!(
            a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "values changed in a round trip"
        );
    }
    if let Ok((shape, values)) = npy::parse_i64(data, "fuzz.npy") {
        let count: usize = shape.iter().product();
        assert_eq!(
            count,
            values.len(),
            "element count of an accepted int array"
        );
    }
});
