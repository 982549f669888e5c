//! The ODE tasks: sir and lotka_volterra (Dormand–Prince 5(4) at tolerance 1e-8).

use ode_solvers::dop_shared::OutputType;
use ode_solvers::{Dopri5, SVector, System, Vector2, Vector3};
use rand::RngCore;
use rand_distr::{Binomial, Distribution, StandardNormal};
use simfer_distributions::{LogNormal, Prior};

use super::Task;
use simfer_simulators::{Simulator, SimulatorError, check_lengths};

/// Relative and absolute tolerance of the ODE solves.
pub const ODE_TOLERANCE: f64 = 1e-8;

/// Solves `system` from `y0` at t = 0 to `t_end` with relative and absolute tolerance
/// `tolerance`, returning the states at t = 0, dt, 2dt, … (`points` of them) from the
/// solver's dense output.
fn solve<const N: usize, F>(
    system: F,
    y0: SVector<f64, N>,
    t_end: f64,
    dt: f64,
    points: usize,
    tolerance: f64,
) -> Result<Vec<SVector<f64, N>>, SimulatorError>
where
    F: System<f64, SVector<f64, N>>,
{
    let mut stepper = Dopri5::from_param(
        system,
        0.0,
        t_end,
        dt,
        y0,
        tolerance,
        tolerance,
        0.9,      // safety factor (the solver's default)
        0.04,     // PI-controller beta (default)
        0.2,      // minimum step-size factor (default)
        10.0,     // maximum step-size factor (default)
        t_end,    // maximum step (default)
        0.0,      // initial step: automatic
        100_000,  // maximum number of steps (default)
        u32::MAX, // no stiffness test: keep integrating, fail only on step limits
        OutputType::Dense,
    );
    stepper
        .integrate()
        .map_err(|e| SimulatorError::Ode(e.to_string()))?;
    let ys = stepper.y_out();
    if ys.len() < points {
        return Err(SimulatorError::Ode(format!(
            "the solver returned {} output points, expected {points}",
            ys.len()
        )));
    }
    Ok(ys[..points].to_vec())
}

/// Checks the length of θ for a direct call of a solve.
fn check_theta(theta: &[f64], expected: usize) -> Result<(), SimulatorError> {
    if theta.len() == expected {
        Ok(())
    } else {
        Err(SimulatorError::ThetaDimension {
            expected,
            found: theta.len(),
        })
    }
}

/// Writes `observe(value, rng)` for each solution value into `out`, or NaN everywhere if the
/// solve failed (a numerical failure is an invalid simulation, not an error).
fn observe_or_nan<const N: usize>(
    solution: Result<[f64; N], SimulatorError>,
    rng: &mut dyn RngCore,
    out: &mut [f64],
    mut observe: impl FnMut(f64, &mut dyn RngCore) -> f64,
) -> Result<(), SimulatorError> {
    match solution {
        Ok(values) => {
            for (o, v) in out.iter_mut().zip(values) {
                *o = observe(v, rng);
            }
            Ok(())
        }
        Err(SimulatorError::Ode(_)) => {
            out.fill(f64::NAN);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

struct SirSystem {
    beta: f64,
    gamma: f64,
}

impl System<f64, Vector3<f64>> for SirSystem {
    fn system(&self, _t: f64, y: &Vector3<f64>, dy: &mut Vector3<f64>) {
        let infection = self.beta * y[0] * y[1] / Sir::POPULATION;
        let recovery = self.gamma * y[1];
        dy[0] = -infection;
        dy[1] = infection - recovery;
        dy[2] = recovery;
    }
}

/// sir: θ = (β, γ), β ~ LogN(ln 0.4, 0.5²), γ ~ LogN(ln 0.125, 0.2²); N = 10⁶,
/// (S, I, R)(0) = (N − 1, 1, 0); dS/dt = −βSI/N, dI/dt = βSI/N − γI, dR/dt = γI on
/// [0, 160]; x_i ~ Binomial(1000, clamp(I(t_i)/N, 0, 1)) at t = 0, 17, …, 153.
/// A failed solve gives NaN outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sir;

impl Sir {
    /// Population size N.
    pub const POPULATION: f64 = 1e6;
    /// Trials of the binomial observation.
    pub const TRIALS: u64 = 1000;
    /// Spacing of the 10 observation times.
    pub const DT: f64 = 17.0;
    /// End of the solve.
    pub const T_END: f64 = 160.0;

    /// I(t) at t = 0, 17, …, 153 (no observation noise), solved at [`ODE_TOLERANCE`].
    ///
    /// # Errors
    /// θ of the wrong length, or [`SimulatorError::Ode`] if the solve fails.
    pub fn infected(&self, theta: &[f64]) -> Result<[f64; 10], SimulatorError> {
        self.infected_with_tolerance(theta, ODE_TOLERANCE)
    }

    /// [`infected`](Self::infected) at another relative and absolute tolerance.
    ///
    /// # Errors
    /// As [`infected`](Self::infected).
    pub fn infected_with_tolerance(
        &self,
        theta: &[f64],
        tolerance: f64,
    ) -> Result<[f64; 10], SimulatorError> {
        check_theta(theta, 2)?;
        let system = SirSystem {
            beta: theta[0],
            gamma: theta[1],
        };
        let y0 = Vector3::new(Self::POPULATION - 1.0, 1.0, 0.0);
        let ys = solve(system, y0, Self::T_END, Self::DT, 10, tolerance)?;
        Ok(std::array::from_fn(|k| ys[k][1]))
    }
}

impl Simulator for Sir {
    fn theta_dim(&self) -> usize {
        2
    }
    fn x_dim(&self) -> usize {
        10
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        observe_or_nan(self.infected(theta), rng, out, |infected, rng| {
            let p = (infected / Self::POPULATION).clamp(0.0, 1.0);
            match Binomial::new(Self::TRIALS, p) {
                Ok(b) => b.sample(rng) as f64,
                Err(_) => f64::NAN, // p is NaN
            }
        })
    }
}

impl Task for Sir {
    fn name(&self) -> &'static str {
        "sir"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(
            LogNormal::new(vec![0.4f64.ln(), 0.125f64.ln()], vec![0.5, 0.2])
                .expect("valid constants"),
        )
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        vec!["beta".into(), "gamma".into()]
    }
}

struct LotkaVolterraSystem {
    alpha: f64,
    beta: f64,
    gamma: f64,
    delta: f64,
}

impl System<f64, Vector2<f64>> for LotkaVolterraSystem {
    fn system(&self, _t: f64, y: &Vector2<f64>, dy: &mut Vector2<f64>) {
        let (u, v) = (y[0], y[1]);
        dy[0] = self.alpha * u - self.beta * u * v;
        dy[1] = -self.gamma * v + self.delta * u * v;
    }
}

/// lotka_volterra: θ = (α, β, γ, δ) ~ LogN(μ, 0.5²), μ = (−0.125, −3, −0.125, −3);
/// (u, v)(0) = (30, 1); du/dt = αu − βuv, dv/dt = −γv + δuv on [0, 20];
/// x = [u at t = 0, 2.1, …, 18.9, then v at the same times], each value observed as
/// LogNormal(ln clamp(value, 1e-10, 1e4), 0.1²). A failed solve gives NaN outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LotkaVolterra;

impl LotkaVolterra {
    /// Spacing of the 10 observation times.
    pub const DT: f64 = 2.1;
    /// End of the solve.
    pub const T_END: f64 = 20.0;
    /// Standard deviation of the log-normal observation noise.
    pub const NOISE_SD: f64 = 0.1;

    /// `[u(t_0..t_9), v(t_0..t_9)]` at t = 0, 2.1, …, 18.9 (no observation noise), solved
    /// at [`ODE_TOLERANCE`].
    ///
    /// # Errors
    /// θ of the wrong length, or [`SimulatorError::Ode`] if the solve fails.
    pub fn populations(&self, theta: &[f64]) -> Result<[f64; 20], SimulatorError> {
        self.populations_with_tolerance(theta, ODE_TOLERANCE)
    }

    /// [`populations`](Self::populations) at another relative and absolute tolerance.
    ///
    /// # Errors
    /// As [`populations`](Self::populations).
    pub fn populations_with_tolerance(
        &self,
        theta: &[f64],
        tolerance: f64,
    ) -> Result<[f64; 20], SimulatorError> {
        check_theta(theta, 4)?;
        let system = LotkaVolterraSystem {
            alpha: theta[0],
            beta: theta[1],
            gamma: theta[2],
            delta: theta[3],
        };
        let ys = solve(
            system,
            Vector2::new(30.0, 1.0),
            Self::T_END,
            Self::DT,
            10,
            tolerance,
        )?;
        Ok(std::array::from_fn(|k| ys[k % 10][k / 10]))
    }
}

impl Simulator for LotkaVolterra {
    fn theta_dim(&self) -> usize {
        4
    }
    fn x_dim(&self) -> usize {
        20
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        observe_or_nan(self.populations(theta), rng, out, |v, rng| {
            let z: f64 = StandardNormal.sample(rng);
            (v.clamp(1e-10, 1e4).ln() + Self::NOISE_SD * z).exp()
        })
    }
}

impl Task for LotkaVolterra {
    fn name(&self) -> &'static str {
        "lotka_volterra"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(
            LogNormal::new(vec![-0.125, -3.0, -0.125, -3.0], vec![0.5; 4])
                .expect("valid constants"),
        )
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        ["alpha", "beta", "gamma", "delta"]
            .map(String::from)
            .to_vec()
    }
}
