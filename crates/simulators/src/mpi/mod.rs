//! Simulation across the processes of an MPI job (cargo feature `mpi`): rank 0 runs the
//! inference, and every rank, rank 0 included, simulates its share of each batch.
//!
//! One program runs on every rank. [`init`] starts MPI; rank 0 wraps its simulator in an
//! [`MpiSimulator`] and uses it like any other simulator (in
//! [`simulate_batch`](crate::simulate_batch), [`simulate_for_sbi`](crate::simulate_for_sbi)
//! or a multi-round run); every other rank calls [`serve`] with the same simulator, which
//! simulates whatever rank 0 sends until rank 0 is done with its `MpiSimulator`.
//!
//! ```no_run
//! use simfer_simulators::mpi::{self, MpiSimulator};
//! use simfer_simulators::{SimulationOptions, SimulatorError, simulate_for_sbi, task};
//!
//! fn main() -> Result<(), SimulatorError> {
//!     let universe = mpi::init()?;
//!     let world = universe.world();
//!     let task = task("two_moons")?;
//!     let simulator = task.simulator(); // the same simulator on every rank
//!     if world.rank() == 0 {
//!         let sim = MpiSimulator::new(world, simulator)?;
//!         let prior = task.prior();
//!         for round in 0..3u64 {
//!             // Each batch is shared among all ranks; the result is the one a single process
//!             // gives with the same options, whatever the number of ranks.
//!             let opts = SimulationOptions::with_seed(1).with_stream_offset(round * 10_000);
//!             let sims = simulate_for_sbi(&sim, &prior, 10_000, &opts)?;
//!             println!("round {round}: {}", sims.invalid);
//!             // ... train on (sims.theta, sims.x), propose from the posterior ...
//!         }
//!         sim.finish()?; // tells the other ranks to return from `serve` (so does a drop)
//!     } else {
//!         let served = mpi::serve(world, &simulator)?;
//!         eprintln!("rank {}: simulated {} rows", world.rank(), served.rows);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Running it
//!
//! Build with the feature (it needs an MPI library and libclang: on Debian or Ubuntu,
//! `apt-get install libopenmpi-dev openmpi-bin libclang-dev`), then start one process per
//! rank:
//!
//! - with `mpirun`: `mpirun -np 8 target/release/my_inference` (as root add
//!   `--allow-run-as-root`; for more ranks than cores, `--oversubscribe`);
//! - under SLURM: `srun --ntasks=8 --cpus-per-task=4 target/release/my_inference` (or those
//!   options as `#SBATCH` lines of a batch script that runs `srun target/release/my_inference`).
//!
//! Each rank simulates its share on all the threads of its rayon pool (or through its
//! simulator's own batch path, e.g. an [`ExternalSimulator`](crate::ExternalSimulator)'s
//! worker processes), so one rank per node with `--cpus-per-task` cores is a good layout.
//! Without `mpirun` the program runs as a single rank that simulates everything itself.
//!
//! # What is sent between ranks
//!
//! For each chunk that [`simulate_batch`](crate::simulate_batch) hands the `MpiSimulator`
//! (the whole batch by default, or at most [`with_batch_size`](MpiSimulator::with_batch_size)
//! rows), rank 0 splits the rows into as many contiguous shares as there are ranks, in rank
//! order (the first `rows % size` shares one row longer). It sends each other rank one
//! message with the chunk's number, the first simulation index and random stream of its
//! share, the seed, `theta_dim` and `x_dim` of rank 0's simulator, and the share's θ values;
//! simulates its own share (the first) meanwhile; then waits for one answer from every rank
//! it sent work to: either the share's x values and the rows the simulator failed to produce
//! (by simulation index, with reasons), or an error message. At the end rank 0 sends each
//! other rank a stop message. Messages are bytes on a communicator of their own (a duplicate
//! of `MPI_COMM_WORLD`, so they never mix with the program's own MPI messages); floats travel
//! as their bits, so NaN, ±∞ and −0 arrive unchanged. Nothing else is sent: no simulator, no
//! generator state, no closures.
//!
//! Row `k` of a share is simulation `first_index + k` and draws only from
//! `derive_rng(seed, first_stream + k)`, as in one process, so x, the invalid rows and the
//! failed rows are bit-identical to one process's for any number of ranks and any chunking.
//!
//! # Failures
//!
//! | what happens | what rank 0 gets |
//! |---|---|
//! | a simulation on rank 0 errors or panics | the error [`simulate_batch`](crate::simulate_batch) gives in one process, naming the simulation index |
//! | a simulation on another rank errors or panics | [`SimulatorError::MpiRank`] naming that rank, with the error (and the simulation index in the batch) as text; the rank goes on serving |
//! | a rank serves a simulator of other dimensions | [`SimulatorError::MpiRank`] saying so |
//! | rows the simulator could not produce (a batch simulator's failed rows) | listed in [`InvalidReport::failed`](crate::InvalidReport), as in one process |
//!
//! When several shares fail, the error of the lowest rank (the lowest simulation index) is
//! returned, after every rank has answered, so the next batch starts in step. Nothing panics
//! across the MPI boundary. A rank whose *process* dies (a crash, a kill) ends the whole job:
//! that is MPI's rule, and `mpirun` or `srun` report it. A simulation that never returns
//! keeps rank 0 waiting: give slow simulators their own timeout (as
//! [`ExternalSimulator`](crate::ExternalSimulator) has) and the job a time limit.
//!
//! # Threads and CPU time
//!
//! [`init`] asks MPI for `MPI_THREAD_SERIALIZED`, so an `MpiSimulator` can be used from any
//! thread (one exchange at a time). If the library offers less, only the thread that made
//! the [`World`] may use it, and other threads get a [`SimulatorError::Mpi`].
//! Waiting ranks poll for messages with sleeps in between instead of spinning, so idle
//! workers do not take CPU time from rank 0's training on a shared node: after 0.2 ms of
//! polling, a wait sleeps an eighth of the time it has waited so far, at most 10 ms. A
//! message is so noticed at most about 10 ms (and 12.5 %) late.
//!
//! One `MpiSimulator` uses a world at a time, and each worker's [`serve`] serves one
//! `MpiSimulator`: to switch simulators, finish the first on rank 0 and call `serve` again
//! with the second on the others.

mod exchange;
mod protocol;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ::mpi::Threading;
use ::mpi::point_to_point::MatchedReceiveVec;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator, Destination, Source};
use rand::RngCore;

pub use self::exchange::Served;
use self::exchange::{Link, Root, serve_link};
use crate::{BatchPlan, SimulationChunk, Simulator, SimulatorError};

/// The rsmpi crate this module is built on, for programs that send MPI messages of their
/// own (e.g. `universe.rsmpi().world()`).
pub use ::mpi as rsmpi;

/// The tag of every message of this module (on its own communicator).
const TAG: ::mpi::Tag = 0x51F;
/// How long a wait for a message polls without sleeping.
const SPIN_FOR: Duration = Duration::from_micros(200);
/// After that, a wait sleeps an eighth of the time it has waited between polls (so it adds
/// at most about an eighth to the wait), but at least this long...
const MIN_PAUSE: Duration = Duration::from_micros(20);
/// ... and at most this long.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// MPI, started by [`init`]; dropping it finalizes MPI (after its [`World`]).
pub struct Universe {
    // Dropped first: the world's communicator is freed before MPI is finalized.
    world: World,
    mpi: ::mpi::environment::Universe,
}

/// Starts MPI (asking for `MPI_THREAD_SERIALIZED`) and returns the [`Universe`], whose
/// [`world`](Universe::world) holds every rank of the job. Call it once, on every rank,
/// before anything else that uses MPI.
///
/// # Errors
/// [`SimulatorError::Mpi`] if MPI was already initialized (by this program or a library
/// it uses); then make the world with [`World::from_communicator`] instead.
pub fn init() -> Result<Universe, SimulatorError> {
    let Some((mpi, _)) = ::mpi::initialize_with_threading(Threading::Serialized) else {
        return Err(SimulatorError::Mpi(
            "MPI is already initialized (init was called before, or another library started \
             MPI): make the World with World::from_communicator from that library's \
             communicator instead"
                .to_string(),
        ));
    };
    let world = World::from_communicator(&mpi.world());
    Ok(Universe { world, mpi })
}

impl Universe {
    /// All ranks of the job (on a communicator of this module's own).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// This process's rank in the world, from 0 to `size() - 1`.
    pub fn rank(&self) -> usize {
        self.world.rank()
    }

    /// The number of ranks in the world.
    pub fn size(&self) -> usize {
        self.world.size()
    }

    /// The underlying rsmpi universe, for MPI messages of the program's own.
    pub fn rsmpi(&self) -> &::mpi::environment::Universe {
        &self.mpi
    }
}

/// The ranks that share the simulations: a communicator of this module's own.
///
/// Made by [`init`] (all ranks of the job, [`Universe::world`]) or from any rsmpi
/// communicator by [`World::from_communicator`].
pub struct World {
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    threading: Threading,
    owner: ThreadId,
    /// Serializes this world's MPI calls.
    lock: Mutex<()>,
    /// Whether an `MpiSimulator` is using this world.
    in_use: AtomicBool,
    /// Not `Send`, whatever type the MPI library gives its handles.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a `World` is only shared, never sent (it is not `Send`, whatever type the MPI
// library gives its handles), so it is dropped and its communicator freed on the thread that
// made it. Every MPI call made through a shared `World` holds `lock`, so no two of them run
// at once, as `MPI_THREAD_SERIALIZED` requires; and below that level, every exchange, serve
// loop and stop first checks (`check_thread`) that it runs on the thread that made the
// world, where MPI was initialized.
unsafe impl Sync for World {}

impl World {
    /// A world of the ranks of `comm`, on a duplicate of it (`MPI_Comm_dup`), so that this
    /// module's messages never mix with the program's own. Like every duplication, this is
    /// collective: every rank of `comm` must call it. Use it when MPI was started by
    /// something other than [`init`], and drop the world before MPI is finalized. If MPI's
    /// threading level is below `MPI_THREAD_SERIALIZED`, call it on the thread that started
    /// MPI: only that thread may then use the world.
    ///
    /// ```no_run
    /// use simfer_simulators::mpi::{World, rsmpi};
    ///
    /// let universe = rsmpi::initialize().expect("MPI started once");
    /// let world = World::from_communicator(&universe.world());
    /// println!("rank {} of {}", world.rank(), world.size());
    /// ```
    pub fn from_communicator<C: Communicator>(comm: &C) -> World {
        let comm = comm.duplicate();
        World {
            rank: usize::try_from(comm.rank()).unwrap_or(0),
            size: usize::try_from(comm.size()).unwrap_or(1).max(1),
            comm,
            threading: ::mpi::environment::threading_support(),
            owner: std::thread::current().id(),
            lock: Mutex::new(()),
            in_use: AtomicBool::new(false),
            _not_send: PhantomData,
        }
    }

    /// This process's rank, from 0 to `size() - 1`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    fn mpi_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn process(&self, rank: usize) -> ::mpi::topology::Process<'_> {
        // Ranks here come from `0..size`, which MPI counts in an `int`.
        self.comm
            .process_at_rank(::mpi::Rank::try_from(rank).unwrap_or(::mpi::Rank::MAX))
    }

    /// One poll for a message.
    fn try_receive(&self, from: Option<usize>) -> Option<(usize, Vec<u8>)> {
        let _guard = self.mpi_lock();
        let probe = match from {
            Some(rank) => self.process(rank).immediate_matched_probe_with_tag(TAG),
            None => self
                .comm
                .any_process()
                .immediate_matched_probe_with_tag(TAG),
        }?;
        let (bytes, status) = probe.matched_receive_vec::<u8>();
        Some((
            usize::try_from(status.source_rank()).unwrap_or(usize::MAX),
            bytes,
        ))
    }
}

impl Link for World {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn send(&self, messages: &[(usize, Vec<u8>)]) {
        let _guard = self.mpi_lock();
        if let [(rank, m)] = messages {
            self.process(*rank).send_with_tag(&m[..], TAG);
            return;
        }
        // All at once, so that every worker starts as soon as it looks.
        ::mpi::request::multiple_scope(messages.len(), |scope, requests| {
            for (rank, m) in messages {
                requests.add(
                    self.process(*rank)
                        .immediate_send_with_tag(scope, &m[..], TAG),
                );
            }
            let mut done = Vec::with_capacity(messages.len());
            requests.wait_all(&mut done);
        });
    }

    fn receive(&self, from: Option<usize>) -> (usize, Vec<u8>) {
        let start = Instant::now();
        loop {
            if let Some(message) = self.try_receive(from) {
                return message;
            }
            let waited = start.elapsed();
            if waited < SPIN_FOR {
                std::thread::yield_now();
            } else {
                std::thread::sleep((waited / 8).clamp(MIN_PAUSE, MAX_PAUSE));
            }
        }
    }

    fn check_thread(&self) -> Result<(), SimulatorError> {
        if self.threading >= Threading::Serialized || std::thread::current().id() == self.owner {
            Ok(())
        } else {
            Err(SimulatorError::Mpi(format!(
                "the MPI library provides the threading level {:?}, so only the thread that \
                 made the World may communicate, but this is another thread: use the \
                 MpiSimulator on that thread, or start MPI with mpi::init (which asks for \
                 Serialized)",
                self.threading
            )))
        }
    }
}

/// Rank 0's simulator: wraps any [`Simulator`] and shares every chunk of a batch among all
/// ranks of a [`World`], whose other ranks run [`serve`] with the same simulator.
///
/// It implements [`Simulator`] through the batch path ([`Simulator::batch_plan`] with one
/// chunk at a time), so [`simulate_batch`](crate::simulate_batch) and everything built on it
/// use it unchanged, with the same result as the wrapped simulator in one process.
/// [`Simulator::simulate`] (one θ) runs on rank 0 alone. Dropping it (or
/// [`finish`](Self::finish)) tells the other ranks to return from `serve`. See the
/// [module documentation](self) for a whole program.
pub struct MpiSimulator<'w, S: Simulator> {
    root: Root<&'w World, S>,
}

impl<'w, S: Simulator> MpiSimulator<'w, S> {
    /// Wraps `simulator` on rank 0 of `world`.
    ///
    /// # Errors
    /// [`SimulatorError::Mpi`] on a rank other than 0 (which should call [`serve`]), or
    /// while another `MpiSimulator` uses the world.
    pub fn new(world: &'w World, simulator: S) -> Result<Self, SimulatorError> {
        if world.rank() != 0 {
            return Err(SimulatorError::Mpi(format!(
                "an MpiSimulator runs on rank 0, but this is rank {}: the other ranks call \
                 serve with the same simulator",
                world.rank()
            )));
        }
        if world.in_use.swap(true, Ordering::AcqRel) {
            return Err(SimulatorError::Mpi(
                "another MpiSimulator is using this world: finish it (or drop it) first"
                    .to_string(),
            ));
        }
        Ok(Self {
            root: Root::new(world, simulator),
        })
    }

    /// At most `rows` simulations per chunk (default: the whole batch, split only as far as
    /// the messages need). Smaller chunks make a progress bar move and bound rank 0's
    /// messages, but every chunk waits for its slowest rank.
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.root.set_batch_size(rows);
        self
    }

    /// The wrapped simulator.
    pub fn inner(&self) -> &S {
        self.root.inner()
    }

    /// The world it shares the simulations with.
    pub fn world(&self) -> &'w World {
        self.root.link()
    }

    /// Tells the other ranks to return from [`serve`], and frees the world for another
    /// `MpiSimulator`. Dropping the simulator does the same; this also reports a failure.
    ///
    /// # Errors
    /// [`SimulatorError::Mpi`] if called from a thread that may not use MPI (see
    /// [Threads](self#threads-and-cpu-time)); the simulator is then dropped without telling
    /// the other ranks.
    pub fn finish(self) -> Result<(), SimulatorError> {
        self.stop()
    }

    fn stop(&self) -> Result<(), SimulatorError> {
        self.world().check_thread()?;
        if self.root.stop() {
            self.world().in_use.store(false, Ordering::Release);
        }
        Ok(())
    }
}

impl<S: Simulator> Drop for MpiSimulator<'_, S> {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("simfer: the other MPI ranks were not told to stop serving: {e}");
        }
    }
}

impl<S: Simulator> Simulator for MpiSimulator<'_, S> {
    fn theta_dim(&self) -> usize {
        self.root.theta_dim()
    }

    fn x_dim(&self) -> usize {
        self.root.x_dim()
    }

    /// Simulates one θ on rank 0 with the wrapped simulator.
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.root.simulate(theta, rng, out)
    }

    /// One chunk at a time, of at most [`with_batch_size`](MpiSimulator::with_batch_size)
    /// rows.
    fn batch_plan(&self) -> Option<BatchPlan> {
        self.root.batch_plan()
    }

    /// Shares the chunk's rows among all ranks and gathers x and the failed rows in order.
    ///
    /// # Errors
    /// Lengths that do not fit; the error of the lowest rank whose share failed (on rank 0
    /// the wrapped simulator's own, on another rank [`SimulatorError::MpiRank`]); and
    /// [`SimulatorError::Mpi`] after [`finish`](MpiSimulator::finish) or from a thread that
    /// may not use MPI.
    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        self.root.simulate_many(chunk, out, failed)
    }
}

/// A worker rank's loop: simulates every share that rank 0's [`MpiSimulator`] sends, with
/// `simulator` (the same as rank 0's), until rank 0 finishes or drops it; returns what it
/// did. Errors and panics of the simulator go back to rank 0, and the loop goes on.
///
/// # Errors
/// [`SimulatorError::Mpi`] on rank 0, or from a thread that may not use MPI.
pub fn serve<S: Simulator + ?Sized>(
    world: &World,
    simulator: &S,
) -> Result<Served, SimulatorError> {
    serve_link(world, simulator)
}
