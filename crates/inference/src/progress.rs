//! A training spinner (indicatif), shown only when asked for and stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use simfer_snpe::{EpochReport, TrainingHistory};

pub(crate) struct TrainingProgress {
    bar: Option<ProgressBar>,
}

impl TrainingProgress {
    pub(crate) fn new(enabled: bool, round: usize) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.set_prefix(format!("round {round}: training"));
            bar
        });
        Self { bar }
    }

    pub(crate) fn epoch(&mut self, r: &EpochReport) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "epoch {}, validation loss {:.4} (best {:.4}, {} epochs ago)",
                r.epoch, r.validation_loss, r.best_validation_loss, r.epochs_since_improvement
            ));
            bar.tick();
        }
    }

    pub(crate) fn finish(&mut self, history: Option<&TrainingHistory>) {
        if let Some(bar) = self.bar.take() {
            match history {
                Some(h) => bar.finish_with_message(format!(
                    "{} after {} epochs (best epoch {}, validation loss {:.4})",
                    h.stop_reason, h.epochs_trained, h.best_epoch, h.best_validation_loss
                )),
                None => bar.abandon_with_message("failed"),
            }
        }
    }
}
