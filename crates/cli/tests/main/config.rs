//! Mistakes in a config: each is an error naming the file, line, column and key, and what
//! was expected and found; nothing runs.

use std::path::Path;

use simfer_cli::CliError;
use simfer_cli::config::RunConfig;

use crate::common::{arg, fails, scratch, write};

const GOOD: &str = r#"seed = 3
rounds = 2
simulations_per_round = 100

[simulator]
task = "two_moons"

[prior]
u = { kind = "uniform", low = -1, high = 1 }
v = { kind = "uniform", low = -1, high = 1 }

[observation]
values = [0.1, 0.2]
"#;

/// The error of `text` as a config, with its place.
fn error(text: &str) -> (usize, usize, String, String) {
    match RunConfig::parse(text, Path::new("c.toml"), Path::new("/tmp")) {
        Err(CliError::Config {
            line,
            column,
            key,
            message,
            ..
        }) => (line, column, key, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn a_good_config_resolves() {
    let c = RunConfig::parse(GOOD, Path::new("c.toml"), Path::new("/tmp")).unwrap();
    assert_eq!(c.parameters, ["u", "v"]);
    assert_eq!(
        c.method,
        simfer_inference::MethodKind::Snpe,
        "2 rounds: snpe"
    );
    assert_eq!((c.rounds, c.simulations_per_round, c.seed), (2, 100, 3));
    assert_eq!(c.output, Path::new("/tmp/c.run"));
    // Two uniform entries are one box, as the task's own prior.
    assert_eq!(
        c.prior,
        simfer_distributions::PriorSpec::BoxUniform {
            low: vec![-1.0, -1.0],
            high: vec![1.0, 1.0]
        }
    );
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let text = GOOD.replace("seed = 3", "seed = 3\nsead = 4");
    let (line, column, key, message) = error(&text);
    assert_eq!((line, column), (2, 1));
    assert_eq!(key, "sead");
    assert!(message.contains("unknown field `sead`"), "{message}");
    assert!(message.contains("expected one of"), "{message}");
    // In a table.
    let text = GOOD.replace("task = \"two_moons\"", "task = \"two_moons\"\nworkerz = 2");
    let (line, _, key, message) = error(&text);
    assert_eq!((line, key.as_str()), (7, "simulator.workerz"));
    assert!(message.contains("unknown field `workerz`"), "{message}");
    // In a prior entry.
    let text = GOOD.replace("high = 1 }\nv", "hihg = 1 }\nv");
    let (line, _, key, message) = error(&text);
    assert_eq!((line, key.as_str()), (9, "prior.u.hihg"));
    assert!(message.contains("unknown field `hihg`"), "{message}");
}

#[test]
fn a_wrong_type_says_what_was_expected_and_found() {
    let text = GOOD.replace("rounds = 2", "rounds = \"two\"");
    let (line, column, key, message) = error(&text);
    assert_eq!((line, column, key.as_str()), (2, 10, "rounds"));
    assert!(
        message.contains("invalid type: string \"two\"") && message.contains("expected usize"),
        "{message}"
    );
    let text = GOOD.replace("values = [0.1, 0.2]", "values = [0.1, \"x\"]");
    let (line, _, key, message) = error(&text);
    assert_eq!((line, key.as_str()), (13, "observation.values[1]"));
    assert!(message.contains("expected f64"), "{message}");
}

#[test]
fn a_missing_or_misplaced_field_is_an_error() {
    let (_, _, key, message) = error(&GOOD.replace("task = \"two_moons\"", ""));
    assert_eq!(key, "simulator");
    assert!(message.contains("exactly one of `task`"), "{message}");
    let (_, _, _, message) = error(&GOOD.replace("[simulator]\ntask = \"two_moons\"\n", ""));
    assert!(message.contains("missing field `simulator`"), "{message}");
    let (line, _, key, message) = error(&GOOD.replace("values = [0.1, 0.2]", "values = [0.1]"));
    assert_eq!((line, key.as_str()), (12, "observation"));
    assert!(
        message.contains("expected 2 values") && message.contains("found 1"),
        "{message}"
    );
    // An external simulator without x_dim.
    let text = GOOD.replace("task = \"two_moons\"", "program = \"sim\"");
    let (_, _, key, message) = error(&text);
    assert_eq!(key, "simulator.x_dim");
    assert!(message.contains("needs `x_dim`"), "{message}");
    // A prior entry of an unknown kind, and one missing a bound.
    let (line, _, key, message) =
        error(&GOOD.replace("kind = \"uniform\", low", "kind = \"unif\", low"));
    assert_eq!((line, key.as_str()), (9, "prior.u"));
    assert!(
        message.contains("one of uniform, normal, lognormal, gaussian"),
        "{message}"
    );
    let (_, _, key, message) = error(&GOOD.replace(", high = 1 }\nv", " }\nv"));
    assert_eq!(key, "prior.u");
    assert!(message.contains("needs `high`"), "{message}");
    // An unknown method names the choices.
    let (line, _, key, message) = error(&GOOD.replace("seed = 3", "seed = 3\nmethod = \"snpx\""));
    assert_eq!((line, key.as_str()), (2, "method"));
    assert!(message.contains("snpx"), "{message}");
}

#[test]
fn the_binary_reports_file_line_and_key_and_runs_nothing() {
    let dir = scratch("config-binary");
    let path = write(&dir, "bad.toml", &GOOD.replace("seed = 3", "seed = -3"));
    let stderr = fails(&["run", arg(&path)]);
    assert!(
        stderr.contains(&format!("{}:1:8: `seed`: ", path.display())),
        "{stderr}"
    );
    assert!(!dir.join("bad.run").exists(), "a bad config starts no run");
}

/// The parameter names head the columns of samples.csv: names it could not write so that
/// they read back (found by the fuzz target `samples_csv`) are refused when the config is
/// read, not when the run ends.
#[test]
fn parameter_names_that_cannot_head_a_sample_file_are_refused() {
    for (name, what) in [
        ("\"a,b\"", "commas"),
        ("\" a\"", "white space"),
        ("\"#a\"", "`#`"),
    ] {
        let text = GOOD.replace("\nu = {", &format!("\n{name} = {{"));
        let (_, _, key, message) = error(&text);
        assert_eq!(key, "prior", "{name}");
        assert!(message.contains("samples.csv"), "{message}");
        assert!(message.contains(what), "{name}: {message}");
    }
    let text = GOOD
        .replace("\nu = {", "\n1 = {")
        .replace("\nv = {", "\n2 = {");
    let (_, _, key, message) = error(&text);
    assert_eq!(key, "prior");
    assert!(message.contains("not a number"), "{message}");
    // One name that is not a number is enough.
    let text = GOOD.replace("\nu = {", "\n1 = {");
    let c = RunConfig::parse(&text, Path::new("c.toml"), Path::new("/tmp")).unwrap();
    assert_eq!(c.parameters, ["1", "v"]);
}
