//! NumPy `.npy` files (`simfer_cli::data::parse_npy`, what `simfer append` reads of θ's and
//! x's): any bytes parse to a table or are an error, never a panic; a table has
//! `rows × cols` values, and written back (`write_npy_to`) parses to the same table, bit
//! for bit.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nalgebra::DMatrix;
use simfer_cli::data::{parse_npy, write_npy_to};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    let Ok(table) = parse_npy(data, path) else {
        return;
    };
    assert_eq!(Some(table.values.len()), table.rows.checked_mul(table.cols));
    // One row of the file per column of the matrix.
    let m = DMatrix::from_column_slice(table.cols, table.rows, &table.values);
    let mut written = Vec::new();
    write_npy_to(&mut written, &m).expect("writing to memory cannot fail");
    let again = parse_npy(&written, path)
        .unwrap_or_else(|e| panic!("a written .npy file does not parse: {e}"));
    assert_eq!((again.rows, again.cols), (table.rows, table.cols));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&again.values), bits(&table.values));
});
