//! The `.npy` reader and writer: round trips, dtype conversions, and every refusal.
//! Fixtures are built byte by byte as NumPy writes them, so no Python is needed.

use crate::common;

use gru_wgpu::npy::{self, encode_f32, parse_f32, parse_i64, read_f32, read_i64, write_f32};
use gru_wgpu::GruError;

use common::cli::TempDir;
use common::raw_npy;

fn with_version(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

fn message(err: GruError) -> String {
    match &err {
        GruError::Npy { path, message } => {
            assert_eq!(path, "t.npy", "{err}");
            message.clone()
        }
        other => panic!("expected GruError::Npy, got {other:?}"),
    }
}

fn f32_err(bytes: &[u8]) -> String {
    message(parse_f32(bytes, "t.npy").unwrap_err())
}

#[test]
fn round_trip_through_a_file() {
    let dir = TempDir::new("round-trip");
    let cases: Vec<(Vec<usize>, Vec<f32>)> = vec![
        (vec![2, 3], (0..6).map(|v| v as f32 * 0.5 - 1.0).collect()),
        (vec![5], vec![1.0, -0.0, f32::MIN_POSITIVE, f32::MAX, 1e-40]),
        (vec![], vec![42.0]),
        (vec![3, 0, 2], vec![]),
        (
            vec![1, 2, 1, 2],
            vec![f32::INFINITY, f32::NEG_INFINITY, 3.0, 4.0],
        ),
    ];
    for (shape, data) in cases {
        let path = dir.join("a.npy");
        write_f32(&path, &shape, &data).unwrap();
        let a = read_f32(&path).unwrap();
        assert_eq!(a.shape, shape);
        assert_eq!(
            a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // NaN survives bit for bit.
    let path = dir.join("nan.npy");
    write_f32(&path, &[1], &[f32::NAN]).unwrap();
    assert!(read_f32(&path).unwrap().data[0].is_nan());
}

#[test]
fn writer_matches_numpy_byte_for_byte() {
    let data: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let expected = raw_npy("<f4", false, "(2, 3)", &bytes);
    assert_eq!(encode_f32(&[2, 3], &data).unwrap(), expected);
    assert_eq!(
        expected.len(),
        128 + 24,
        "np.save puts the data at byte 128"
    );
    assert_eq!(
        encode_f32(&[4], &[0.0; 4]).unwrap(),
        raw_npy("<f4", false, "(4,)", &[0; 16])
    );
    assert_eq!(
        encode_f32(&[], &[0.0]).unwrap(),
        raw_npy("<f4", false, "()", &[0; 4])
    );
}

#[test]
fn write_checks_the_element_count() {
    let dir = TempDir::new("write-count");
    let err = write_f32(&dir.join("bad.npy"), &[2, 3], &[0.0; 5]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("(2, 3)") && text.contains('5'), "{text}");
    assert!(!dir.join("bad.npy").exists(), "nothing is written on error");
    let err = write_f32(&dir.join("big.npy"), &[usize::MAX, 2], &[]).unwrap_err();
    assert!(err.to_string().contains("fits in usize"), "{err}");
}

#[test]
fn float64_is_converted_to_float32() {
    let values = [0.1f64, -2.5, 1e300, 1e-50, 3.0];
    let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let a = parse_f32(&raw_npy("<f8", false, "(5,)", &le), "t.npy").unwrap();
    let expected: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert_eq!(a.data, expected);
    assert_eq!(a.data[0], 0.1f32, "rounded to the nearest f32");
    assert_eq!(
        a.data[2],
        f32::INFINITY,
        "beyond f32 range is inf, as astype gives"
    );

    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let b = parse_f32(&raw_npy(">f8", false, "(5,)", &be), "t.npy").unwrap();
    assert_eq!(b.data, expected);
}

#[test]
fn big_endian_and_native_float32() {
    let values = [1.5f32, -3.25, 1e-3, 7.0, 0.0, -1.0];
    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let a = parse_f32(&raw_npy(">f4", false, "(2, 3)", &be), "t.npy").unwrap();
    assert_eq!(a.shape, vec![2, 3]);
    assert_eq!(a.data, values);

    let native: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let n = parse_f32(&raw_npy("=f4", false, "(6,)", &native), "t.npy").unwrap();
    assert_eq!(n.data, values);
}

#[test]
fn versions_2_and_3() {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    for version in [1, 2, 3] {
        let a = parse_f32(&with_version(version, dict, &data), "t.npy").unwrap();
        assert_eq!(a.data, vec![1.0, 2.0], "version {version}");
    }
    let msg = f32_err(&with_version(4, dict, &data));
    assert!(msg.contains("version 4.0"), "{msg}");
}

#[test]
fn integer_reads() {
    let values = [3i64, -7, 1 << 40];
    let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (shape, v) = parse_i64(&raw_npy("<i8", false, "(3,)", &le), "t.npy").unwrap();
    assert_eq!((shape, v), (vec![3], values.to_vec()));

    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let (_, v) = parse_i64(&raw_npy(">i8", false, "(3,)", &be), "t.npy").unwrap();
    assert_eq!(v, values);

    let small = [5i32, -1, i32::MAX, i32::MIN];
    let le: Vec<u8> = small.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (shape, v) = parse_i64(&raw_npy("<i4", false, "(2, 2)", &le), "t.npy").unwrap();
    assert_eq!(shape, vec![2, 2]);
    assert_eq!(v, small.iter().map(|&x| x as i64).collect::<Vec<_>>());

    let be: Vec<u8> = [u32::MAX].iter().flat_map(|v| v.to_be_bytes()).collect();
    let (_, v) = parse_i64(&raw_npy(">u4", false, "(1,)", &be), "t.npy").unwrap();
    assert_eq!(v, vec![u32::MAX as i64]);

    let dir = TempDir::new("int-file");
    let path = dir.join("lens.npy");
    std::fs::write(&path, raw_npy("<i8", false, "(3,)", &le[..0]).as_slice()).unwrap();
    let err = read_i64(&path).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let msg = message(parse_i64(&raw_npy("<f4", false, "(1,)", &[0; 4]), "t.npy").unwrap_err());
    assert!(msg.contains("expected int32 or int64, got '<f4'"), "{msg}");
    assert!(msg.contains("astype(np.int64)"), "{msg}");
}

#[test]
fn refuses_fortran_order() {
    let msg = f32_err(&raw_npy("<f4", true, "(2, 3)", &[0; 24]));
    assert!(msg.contains("Fortran"), "{msg}");
    assert!(msg.contains("np.ascontiguousarray(a)"), "{msg}");
    // One non-trivial dimension: Fortran and C order are the same bytes.
    let a = parse_f32(&raw_npy("<f4", true, "(1, 3)", &[0; 12]), "t.npy").unwrap();
    assert_eq!(a.shape, vec![1, 3]);
}

#[test]
fn refuses_other_dtypes_for_float_reads() {
    let msg = f32_err(&raw_npy("<i8", false, "(2,)", &[0; 16]));
    assert!(
        msg.contains(
            "expected float32 or float64, got '<i8' (int64); convert with a.astype(np.float32)"
        ),
        "{msg}"
    );
    for (descr, size) in [
        ("<f2", 2),
        ("<i4", 4),
        ("|u1", 1),
        ("|b1", 1),
        ("<c8", 8),
        ("<U3", 12),
        ("|O", 8),
    ] {
        let msg = f32_err(&raw_npy(descr, false, "(1,)", &vec![0; size]));
        assert!(
            msg.contains(&format!("got '{descr}'")) && msg.contains("astype(np.float32)"),
            "{descr}: {msg}"
        );
    }
    let msg = f32_err(&raw_npy("|f4", false, "(1,)", &[0; 4]));
    assert!(msg.contains("byte order"), "{msg}");
    let structured =
        "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let msg = f32_err(&with_version(1, structured, &[0; 8]));
    assert!(msg.contains("structured"), "{msg}");
}

#[test]
fn refuses_wrong_data_lengths() {
    let msg = f32_err(&raw_npy("<f4", false, "(2, 3)", &[0; 20]));
    assert!(msg.contains("truncated"), "{msg}");
    assert!(msg.contains("24 bytes") && msg.contains("20"), "{msg}");

    let msg = f32_err(&raw_npy("<f8", false, "(2,)", &[0; 20]));
    assert!(msg.contains("4 trailing bytes"), "{msg}");

    let full = raw_npy("<f4", false, "(2,)", &[0; 8]);
    for cut in [3, 7, 9, 40, 127] {
        let msg = f32_err(&full[..cut]);
        assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
    }
    let msg = f32_err(&raw_npy(
        "<f4",
        false,
        &format!("({}, {})", usize::MAX / 2, 3),
        &[],
    ));
    assert!(msg.contains("corrupt"), "{msg}");
}

#[test]
fn refuses_what_is_not_npy() {
    assert!(f32_err(b"").contains("empty"));
    let msg = f32_err(b"hello, this is a CSV file\n1,2,3\n");
    assert!(msg.contains("not a .npy file"), "{msg}");
    let msg = f32_err(b"PK\x03\x04\x14\x00\x00\x00");
    assert!(msg.contains(".npz"), "{msg}");
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(97) % 251) as u8)
        .collect();
    let msg = f32_err(&garbage);
    assert!(msg.contains("not a .npy file"), "{msg}");
    // The magic, then nonsense in the header.
    let msg = f32_err(&with_version(1, "\u{1}\u{2}\u{3} not a dict", &[]));
    assert!(msg.contains("malformed .npy header"), "{msg}");
}

#[test]
fn io_errors_name_the_file() {
    let dir = TempDir::new("io");
    let path = dir.join("missing.npy");
    match read_f32(&path).unwrap_err() {
        GruError::Io { path: p, .. } => assert!(p.ends_with("missing.npy"), "{p}"),
        other => panic!("expected Io, got {other:?}"),
    }
    let err = write_f32(&dir.join("no/such/dir/y.npy"), &[1], &[0.0]).unwrap_err();
    assert!(matches!(err, GruError::Io { .. }), "{err:?}");
}

#[test]
fn shape_strings() {
    assert_eq!(npy::format_shape(&[1, 12, 3]), "(1, 12, 3)");
    assert_eq!(npy::format_shape(&[7]), "(7,)");
    assert_eq!(npy::format_shape(&[]), "()");
}
