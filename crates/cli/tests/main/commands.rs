//! `simfer sample` and `simfer plot` on a finished run, and what they refuse.

use crate::common::{arg, fails, ok, scratch, write};

const CONFIG: &str = r#"
method = "npe"
simulations_per_round = 300
seed = 2
samples = 100
output = "run"
[simulator]
task = "two_moons"
[prior]
theta = { kind = "uniform", low = [-1, -1], high = [1, 1], names = ["left", "right"] }
[observation]
values = [0.0, 0.1]
[training]
max_epochs = 10
"#;

#[test]
fn sample_draws_at_another_observation_and_plot_draws_again() {
    let dir = scratch("commands");
    let config = write(&dir, "c.toml", CONFIG);
    let run = dir.join("run");
    // Nothing to sample or plot before the run.
    ok(&["run", arg(&config), "--no-simulate"]);
    let stderr = fails(&["sample", arg(&run), "--x=0.1,0.2"]);
    assert!(stderr.contains("has not finished"), "{stderr}");
    let stderr = fails(&["plot", arg(&run)]);
    assert!(stderr.contains("no samples.csv yet"), "{stderr}");
    ok(&["resume", arg(&run), "--no-progress"]);

    let out = dir.join("at.csv");
    ok(&[
        "sample",
        arg(&run),
        "--x=-0.2,0.3",
        "--n",
        "50",
        "--seed",
        "9",
        "--out",
        arg(&out),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("left,right\n"), "{text}");
    assert_eq!(text.lines().count(), 51);
    // The same seed, the same samples; another seed, others.
    let again = dir.join("again.csv");
    ok(&[
        "sample",
        arg(&run),
        "--x=-0.2,0.3",
        "--n",
        "50",
        "--seed",
        "9",
        "--out",
        arg(&again),
    ]);
    assert_eq!(std::fs::read(&again).unwrap(), text.as_bytes());
    ok(&[
        "sample",
        arg(&run),
        "--x=-0.2,0.3",
        "--n",
        "50",
        "--seed",
        "10",
        "--out",
        arg(&again),
    ]);
    assert_ne!(std::fs::read(&again).unwrap(), text.as_bytes());
    let stderr = fails(&["sample", arg(&run), "--x=0.1"]);
    assert!(
        stderr.contains("expected 2 values") && stderr.contains("found 1"),
        "{stderr}"
    );

    for file in ["pairplot.svg", "loss.svg"] {
        std::fs::remove_file(run.join(file)).unwrap();
    }
    let out = ok(&["plot", arg(&run)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pairplot.svg"));
    let svg = std::fs::read_to_string(run.join("pairplot.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("left"),
        "the axes are named"
    );
    assert!(run.join("loss.svg").exists());
}

#[test]
fn the_readme_example_config_runs_its_python_simulator() {
    if !crate::common::have_python() {
        return;
    }
    let example = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/cli/two_moons.toml");
    let config = simfer_cli::config::RunConfig::load(&example).unwrap();
    assert_eq!(config.parameters, ["theta_1", "theta_2"]);
    // The same config, smaller, with its relative paths resolved as from its directory.
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace(
            "simulations_per_round = 1000",
            "simulations_per_round = 200",
        )
        .replace("samples = 10000", "samples = 100")
        .replace("output = \"two_moons.run\"", "output = \"run\"")
        + "\n[training]\nmax_epochs = 5\n";
    let dir = scratch("readme-example");
    let sims = dir.join("simulators");
    std::fs::create_dir_all(&sims).unwrap();
    std::fs::copy(
        example.parent().unwrap().join("../simulators/two_moons.py"),
        sims.join("two_moons.py"),
    )
    .unwrap();
    let cli = dir.join("cli");
    std::fs::create_dir_all(&cli).unwrap();
    let path = write(&cli, "two_moons.toml", &text);
    ok(&["run", arg(&path), "--no-progress"]);
    let s = crate::common::summary(&cli.join("run"));
    assert_eq!(s["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(s["failed"], 0);
}
