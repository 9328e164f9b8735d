//! Unit tests of the `.npy` adapter: header forms NumPy and older tools write, hostile
//! headers, the writer's padding.

use super::*;

fn file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
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

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn header_is_numpy_padded() {
    let bytes = encode_f32(&[2, 3], &[0.0; 6]).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    assert_eq!(bytes[10 + header_len - 1], b'\n');
    let text = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
        "{text}"
    );
    assert_eq!(bytes.len(), 10 + header_len + 24);
}

#[test]
fn shapes_format_like_numpy() {
    assert_eq!(format_shape(&[]), "()");
    assert_eq!(format_shape(&[5]), "(5,)");
    assert_eq!(format_shape(&[2, 3, 4]), "(2, 3, 4)");
}

#[test]
fn header_parsing_is_robust() {
    let data = le_f32(&[1.0, 2.0]);
    for dict in [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n",
        "{'shape':(2,),'fortran_order':False,'descr':'<f4'}\n",
        "{ \"descr\" : \"<f4\" , \"fortran_order\" : False , \"shape\" : ( 2 , ) }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2], 'extra': None}\n\0\0",
    ] {
        for version in [1, 2, 3] {
            let a = parse_f32(&file(version, dict, &data), "t.npy")
                .unwrap_or_else(|e| panic!("{dict:?} v{version}: {e}"));
            assert_eq!(a.data, vec![1.0, 2.0], "{dict:?}");
        }
    }
}

#[test]
fn scalar_and_empty_shapes() {
    let a = parse_f32(
        &file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            &le_f32(&[7.5]),
        ),
        "s.npy",
    )
    .unwrap();
    assert_eq!((a.shape, a.data), (vec![], vec![7.5]));
    let a = parse_f32(
        &file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }",
            &[],
        ),
        "e.npy",
    )
    .unwrap();
    assert_eq!((a.shape, a.data), (vec![3, 0], vec![]));
}

#[test]
fn malformed_headers_are_errors() {
    for dict in [
        "",
        "{",
        "{'descr': '<f4'",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
        "{'descr': <f4, 'fortran_order': False, 'shape': (2,)}",
        "[1, 2]",
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
    ] {
        let err = parse_f32(&file(1, dict, &[0; 8]), "m.npy").unwrap_err();
        assert!(matches!(err, GruError::Npy { .. }), "{dict:?}: {err}");
    }
}

/// A hostile header nests brackets a million deep (py_literal recurses per level): a
/// typed error, no stack overflow. Brackets inside strings do not count.
#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let err = parse_f32(&file(2, &deep, &[]), "d.npy").unwrap_err();
    assert!(err.to_string().contains("nested deeper than 4"), "{err}");
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'note': '{}'}}",
        "((((".repeat(100)
    );
    let a = parse_f32(&file(1, &dict, &le_f32(&[1.0, 2.0])), "s.npy").unwrap();
    assert_eq!(a.data, vec![1.0, 2.0]);
    assert_eq!(
        without_long_suffixes("{'a': (2L, 3l), 'L': '4L'}"),
        "{'a': (2, 3), 'L': '4L'}"
    );
}

#[test]
fn overflowing_shape_is_an_error() {
    let dict = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        usize::MAX,
        2
    );
    let err = parse_f32(&file(1, &dict, &[]), "o.npy").unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn int_reads() {
    let data: Vec<u8> = [3i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
    let (shape, v) = parse_i64(
        &file(
            1,
            "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
            &data,
        ),
        "i.npy",
    )
    .unwrap();
    assert_eq!((shape, v), (vec![2], vec![3, -1]));
    let err = parse_i64(
        &file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        ),
        "f.npy",
    )
    .unwrap_err();
    assert!(err.to_string().contains("astype(np.int64)"), "{err}");
}

/// A repeated key: the last one counts, as in Python's dict literals (what NumPy reads).
#[test]
fn repeated_keys_take_the_last() {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (2,)}";
    let a = parse_f32(&file(1, dict, &le_f32(&[1.0, 2.0])), "r.npy").unwrap();
    assert_eq!(a.shape, vec![2]);
}
