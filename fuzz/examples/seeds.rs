//! Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/seed-*: real files
//! of small models and data, written by simfer's own writers.
//!
//!     cargo run --release --manifest-path fuzz/Cargo.toml --example seeds
//!
//! Files found by fuzzing (crashes fixed, kept as regression inputs) sit beside them under
//! other names and are left alone.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nalgebra::DMatrix;
use simfer_analysis::samples_to_csv;
use simfer_cli::data::write_npy_to;
use simfer_cli::log::FileLog;
use simfer_distributions::PriorSpec;
use simfer_flows::{
    ClassifierConfig, Estimator, EstimatorConfig, MafConfig, MdnConfig, NsfConfig, RatioClassifier,
};
use simfer_inference::{DirectPosterior, ProposalSource, RunLog, SavedProposal, SavedTraining};
use simfer_snpe::TrainingHistory;

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> Result {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    Ok(())
}

/// θ and x of a tiny data set (2 × 40 each).
fn data() -> (DMatrix<f64>, DMatrix<f64>) {
    let theta = DMatrix::from_fn(2, 40, |i, j| ((i * 7 + j * 13) % 17) as f64 / 8.5 - 1.0);
    let x = DMatrix::from_fn(2, 40, |i, j| {
        theta[(i, j)] + ((j * 5 + i) % 11) as f64 / 50.0
    });
    (theta, x)
}

fn estimators() -> Result<Vec<(&'static str, Estimator)>> {
    let (theta, x) = data();
    let maf = MafConfig {
        hidden_features: 3,
        num_transforms: 2,
        num_blocks: 1,
        ..MafConfig::default()
    };
    let nsf = NsfConfig {
        hidden_features: 3,
        num_transforms: 1,
        num_bins: 3,
        num_blocks: 1,
        ..NsfConfig::default()
    };
    let mdn = MdnConfig {
        hidden_features: 3,
        num_components: 2,
        num_hidden_layers: 1,
        ..MdnConfig::default()
    };
    Ok(vec![
        ("maf", EstimatorConfig::Maf(maf).build(&theta, &x, 1)?),
        ("nsf", EstimatorConfig::Nsf(nsf).build(&theta, &x, 2)?),
        ("mdn", EstimatorConfig::Mdn(mdn).build(&theta, &x, 3)?),
    ])
}

fn classifier() -> Result<RatioClassifier> {
    let (theta, x) = data();
    let config = ClassifierConfig {
        hidden_features: 3,
        num_blocks: 1,
        ..ClassifierConfig::default()
    };
    Ok(RatioClassifier::new(&config, &theta, &x, 4)?)
}

/// A training history of two epochs.
fn history() -> Result<TrainingHistory> {
    Ok(serde_json::from_value(serde_json::json!({
        "round": 0, "loss": "maximum likelihood", "train_loss": [2.5, 2.25],
        "validation_loss": [2.5, 2.375], "epoch_seconds": [0.01, 0.01], "best_epoch": 1,
        "best_validation_loss": 2.5, "epochs_trained": 2, "stop_reason": "MaxEpochs",
        "num_train": 36, "num_validation": 4, "seconds": 0.02
    }))?)
}

fn main() -> Result {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let estimators = estimators()?;
    let classifier = classifier()?;

    // Estimator files, binary and JSON, and the MAF files of the first format.
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/flows/tests/data");
    for (name, e) in &estimators {
        write(
            &corpus.join("estimator_bytes"),
            &format!("{name}.bin"),
            e.to_bytes()?,
        )?;
        write(
            &corpus.join("estimator_json"),
            &format!("{name}.json"),
            e.to_json()?,
        )?;
    }
    write(
        &corpus.join("estimator_bytes"),
        "ratio-classifier.bin",
        classifier.to_bytes()?,
    )?;
    write(
        &corpus.join("estimator_json"),
        "ratio-classifier.json",
        classifier.to_json()?,
    )?;
    write(
        &corpus.join("estimator_bytes"),
        "maf_v1.bin",
        std::fs::read(legacy.join("maf_v1.bin"))?,
    )?;
    write(
        &corpus.join("estimator_json"),
        "maf_v1.json",
        std::fs::read(legacy.join("maf_v1.json"))?,
    )?;

    // Posterior files of each kind, with a default x and a history.
    let priors = [
        PriorSpec::BoxUniform {
            low: vec![-1.0, -1.0],
            high: vec![1.0, 1.0],
        },
        PriorSpec::MultivariateNormal {
            mean: vec![0.0, 0.5],
            covariance: vec![vec![1.0, 0.25], vec![0.25, 2.0]],
        },
        PriorSpec::LogNormal {
            mu: vec![0.0, 0.1],
            sigma: vec![1.0, 0.5],
        },
    ];
    for ((name, e), prior) in estimators.iter().zip(priors) {
        let mut posterior = DirectPosterior::new(e.clone(), Arc::from(prior.build()?), 7)?
            .with_history(vec![history()?]);
        posterior.set_default_x(&[0.25, -0.5])?;
        write(
            &corpus.join("posterior"),
            &format!("{name}.json"),
            posterior.to_json()?,
        )?;
    }

    // Sample files.
    let samples = DMatrix::from_column_slice(2, 3, &[0.5, -1.0, 1e-7, 3.0, f64::NAN, -0.0]);
    let dir = corpus.join("samples_csv");
    write(&dir, "default-names.csv", samples_to_csv(&samples, None)?)?;
    let names = ["mu".to_string(), "log_sigma".to_string()];
    write(&dir, "names.csv", samples_to_csv(&samples, Some(&names))?)?;
    write(&dir, "no-header.csv", "0.1,0.2,0.3\n-1e300,inf,-inf\n")?;
    write(
        &dir,
        "quoted-comments-crlf.csv",
        "# samples\r\n\"a\", \"b\"\r\n\r\n 1 , 2 \r\nNaN,-Infinity\r\n",
    )?;

    // .npy files: what simfer writes (C order), and by hand a 1-D and a Fortran-order one.
    let dir = corpus.join("npy");
    let mut bytes = Vec::new();
    write_npy_to(&mut bytes, &samples)?;
    write(&dir, "c-order.npy", &bytes)?;
    let npy = |descr: &str, order: &str, shape: &str, values: &[f64]| {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    };
    write(
        &dir,
        "1d.npy",
        npy("<f8", "False", "(3,)", &[1.0, 2.0, 3.0]),
    )?;
    write(
        &dir,
        "fortran.npy",
        npy("<f8", "True", "(2, 3)", &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]),
    )?;
    write(&dir, "float32.npy", npy("<f4", "False", "(2,)", &[1.0]))?;

    // Observation files.
    let dir = corpus.join("observation");
    write(&dir, "values.csv", "0.1,0.2\n")?;
    write(&dir, "header.csv", "x_1,x_2,x_3\n1.5,-2,3e-3\n")?;
    write(&dir, "two-rows.csv", "1,2\n3,4\n")?;

    // Configs: the shipped example, and one with every table.
    let dir = corpus.join("config");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cli/two_moons.toml");
    write(&dir, "two_moons.toml", std::fs::read(example)?)?;
    write(&dir, "everything.toml", EVERYTHING)?;
    write(
        &dir,
        "task.toml",
        "rounds = 3\n[simulator]\ntask = \"gaussian_linear\"\n[observation]\nvalues = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]\n",
    )?;

    // Answers of an external simulator: the first byte sets x_dim (1 + byte % 8).
    let dir = corpus.join("protocol");
    write(
        &dir,
        "values.txt",
        "\x012.5 -1e-7\n0.1\t0.2\r\nnan NaN\ninf -Infinity\n",
    )?;
    write(
        &dir,
        "errors.txt",
        "\x00error the solver diverged\nERROR\n1.0\n",
    )?;
    write(
        &dir,
        "garbage.txt",
        "\x02hello world\n1,2,3\n\n\u{3b8} 1 2\n",
    )?;

    // Record files of a run directory: the log's simulations, a proposal and a training.
    let tmp = std::env::temp_dir().join(format!("simfer-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let rounds = tmp.join("rounds");
    let log = FileLog::open(&tmp.join("simulations.log"), &rounds)?;
    let (theta, x) = data();
    log.save_simulations(0, 0, &x.as_slice()[..10], 2, &[])?;
    log.save_simulations(
        0,
        5,
        &x.as_slice()[10..14],
        2,
        &[(7, "the solver diverged".into())],
    )?;
    log.save_proposal(
        0,
        &SavedProposal {
            theta: theta.columns(0, 4).into_owned(),
            source: ProposalSource::Prior,
        },
    )?;
    log.save_training(
        0,
        &SavedTraining {
            model: estimators[0].1.to_bytes()?,
            history: history()?,
        },
    )?;
    drop(log);
    let dir = corpus.join("records");
    write(
        &dir,
        "simulations.log",
        std::fs::read(tmp.join("simulations.log"))?,
    )?;
    write(
        &dir,
        "proposal-000.bin",
        std::fs::read(rounds.join("proposal-000.bin"))?,
    )?;
    write(
        &dir,
        "training-000.bin",
        std::fs::read(rounds.join("training-000.bin"))?,
    )?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}

const EVERYTHING: &str = r#"method = "snpe"
estimator = "nsf"
rounds = 2
simulations_per_round = 500
seed = 11
samples = 100
output = "out.run"
precision = "f64"
invalid_simulations = "exclude"

[prior]
a = { kind = "uniform", low = -1.0, high = 1.0 }
b = { kind = "normal", mean = 0.0, std = 2.0 }
c = { kind = "lognormal", mu = [0.0, 1.0], sigma = [1.0, 0.5] }
g = { kind = "gaussian", mean = [0.0, 0.0], covariance = [[1.0, 0.5], [0.5, 1.0]], names = ["g_x", "g_y"] }

[simulator]
program = "python3"
args = ["sim.py", "--fast"]
x_dim = 3
workers = 2
batch_size = 50
timeout = 30.5
startup_timeout = 5
max_restarts = 1
env = { OMP_NUM_THREADS = "1" }
dir = "sims"
forward_stderr = true

[observation]
values = [0.5, -0.25, 1e-3]

[training]
max_epochs = 20
batch_size = 64
learning_rate = 0.001
validation_fraction = 0.2
stop_after_epochs = 5
clip_max_norm = 5.0

[mcmc]
chains = 2
warmup = 10
thin = 2
tuning = 5
init_width = 0.5
max_seconds = 10.0
"#;
