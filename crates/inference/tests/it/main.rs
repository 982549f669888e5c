//! Integration tests of simfer-inference (one binary).

mod append_posterior;
mod bad_inputs;
mod durable;
mod errors;
mod mcmc;
mod methods;
mod mutations;
mod non_atomic;
mod posterior;
mod tutorial;

/// The uniform prior on [-1, 1]² of the error tests.
pub fn prior() -> std::sync::Arc<dyn simfer_distributions::Prior> {
    std::sync::Arc::new(simfer_distributions::BoxUniform::uniform(2, -1.0, 1.0).unwrap())
}

/// A small, quickly trained SNPE-C configuration (8 hidden units, 1 transform, 3 epochs).
pub fn quick() -> simfer_inference::SnpeConfig {
    simfer_inference::SnpeConfig {
        estimator: simfer_flows::MafConfig {
            hidden_features: 8,
            num_transforms: 1,
            ..simfer_flows::MafConfig::default()
        }
        .into(),
        training: simfer_snpe::TrainingConfig {
            max_num_epochs: Some(3),
            ..simfer_snpe::TrainingConfig::default()
        },
        ..simfer_inference::SnpeConfig::default()
    }
}

/// A whole NPE/SNPE-C run through the builder.
pub fn run_npe(
    prior: std::sync::Arc<dyn simfer_distributions::Prior>,
    simulator: &dyn simfer_simulators::Simulator,
    x_o: Option<&[f64]>,
    rounds: usize,
    simulations_per_round: usize,
    seed: u64,
    config: simfer_inference::SnpeConfig,
) -> Result<simfer_inference::InferenceRun, simfer_inference::InferenceError> {
    let mut inference = simfer_inference::Inference::new(prior)
        .method(if rounds > 1 { "snpe" } else { "npe" })
        .with_snpe_config(config)
        .rounds(rounds)
        .simulations_per_round(simulations_per_round)
        .seed(seed);
    if let Some(x) = x_o {
        inference = inference.observation(x);
    }
    inference.run(simulator)
}
