//! The external simulator's answers (`simfer_simulators::external::protocol`): the lines a
//! worker writes, read as the simulator reads them (`line_text`, `parse_answer`), give
//! values, a declared failure or a protocol error, never a panic. Values written back as
//! the protocol writes numbers parse to the same bits, and so do θ's through a request
//! (`write_request`). The first byte of an input sets `x_dim` (1 to 8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use simfer_simulators::external::protocol::{Answer, line_text, parse_answer, write_request};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let x_dim = 1 + usize::from(first % 8);
    let mut out = vec![0.0; x_dim];
    for line in rest.split_inclusive(|&b| b == b'\n') {
        let line = line_text(line.to_vec());
        match parse_answer(&line, &mut out) {
            Answer::Values => {
                let written = out
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut again = vec![0.0; x_dim];
                assert_eq!(
                    parse_answer(&written, &mut again),
                    Answer::Values,
                    "{written}"
                );
                assert!(simfer_fuzz::same_values(&again, &out), "{written}");
                // The same numbers as a request's θ.
                let mut request = String::new();
                write_request(&mut request, std::iter::once((7, out.as_slice())));
                let row = request.lines().nth(1).expect("a request has its row");
                let (seed, theta) = row.split_once(' ').expect("a seed, then θ");
                assert_eq!(seed, "7");
                assert_eq!(parse_answer(theta, &mut again), Answer::Values, "{request}");
                assert!(simfer_fuzz::same_values(&again, &out), "{request}");
            }
            Answer::Declared(message) => {
                assert!(!message.is_empty());
                assert!(message.chars().count() <= 201, "{message}");
            }
            Answer::Invalid(why) => assert!(!why.is_empty()),
        }
    }
});
