//! `simfer sample` (posterior samples of a finished run at another observation) and
//! `simfer plot` (the plots again, from the run's files).

use std::path::{Path, PathBuf};

use simfer_distributions::derive_rng;

use crate::commands::run::restore;
use crate::log::read_training;
use crate::outputs::{STREAM_SAMPLE_COMMAND, write_loss_plot, write_pairplot};
use crate::rundir::RunDir;
use crate::{CliError, Result};

/// Checks that the run in `dir` has finished training every round.
fn finished(dir: &RunDir, rounds: usize) -> Result<()> {
    if rounds == 0 || read_training(&dir.rounds_dir(), rounds - 1)?.is_none() {
        return Err(CliError::Usage(format!(
            "the run in {} has not finished (round {} is not trained yet): continue it with \
             `simfer resume {}`",
            dir.path().display(),
            rounds.saturating_sub(1),
            dir.path().display()
        )));
    }
    Ok(())
}

/// Draws `n` samples from the finished run's posterior at `x` (seeded by `seed`, or by a
/// stream of the run's seed) and writes them as CSV to `out` (default `DIR/sample.csv`);
/// returns the file.
///
/// # Errors
/// An unfinished run, an `x` of the wrong length or not finite, and sampling failures.
pub fn sample(
    dir: &Path,
    x: &[f64],
    n: usize,
    seed: Option<u64>,
    out: Option<&Path>,
) -> Result<PathBuf> {
    let dir = RunDir::at(dir);
    let (config, _) = dir.config()?;
    finished(&dir, config.rounds)?;
    if x.len() != config.x_o.len() {
        return Err(CliError::Usage(format!(
            "--x: expected {} values (the simulator's x_dim), found {}",
            config.x_o.len(),
            x.len()
        )));
    }
    if n == 0 {
        return Err(CliError::Usage("--n: expected at least 1, found 0".into()));
    }
    let (log, _lock) = dir.open_log()?;
    let run = restore(&config, &log, None, false)?.ok_or_else(|| {
        CliError::Usage(format!(
            "the run in {} waits for simulations: continue it first",
            dir.path().display()
        ))
    })?;
    let mut rng = match seed {
        Some(s) => derive_rng(s, STREAM_SAMPLE_COMMAND),
        None => derive_rng(config.seed, STREAM_SAMPLE_COMMAND),
    };
    let samples = run.posterior().sample(n, Some(x), &mut rng)?;
    let path = out.map_or_else(|| dir.file("sample.csv"), Path::to_path_buf);
    simfer_analysis::write_samples_csv(&path, &samples, Some(&config.parameters))?;
    Ok(path)
}

/// Draws `pairplot.svg` (from `samples.csv`) and `loss.svg` (from the saved trainings)
/// of the run in `dir` again; returns the files written.
///
/// # Errors
/// A run without samples yet, or files that cannot be read or written.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = RunDir::at(dir);
    let (config, _) = dir.config()?;
    let samples_path = dir.file("samples.csv");
    if !samples_path.exists() {
        return Err(CliError::Usage(format!(
            "{} has no samples.csv yet: finish the run with `simfer resume {}`",
            dir.path().display(),
            dir.path().display()
        )));
    }
    let samples = simfer_analysis::read_samples_csv(&samples_path)?.samples;
    let title = config.title();
    let pairplot = dir.file("pairplot.svg");
    write_pairplot(&pairplot, &samples, &config.parameters, None, &title)?;
    let mut written = vec![pairplot];
    let mut histories = Vec::new();
    for r in 0..config.rounds {
        match read_training(&dir.rounds_dir(), r)? {
            Some(t) => histories.push(t.history),
            None => break,
        }
    }
    if !histories.is_empty() {
        let loss = dir.file("loss.svg");
        write_loss_plot(&loss, &histories)?;
        written.push(loss);
    }
    Ok(written)
}
