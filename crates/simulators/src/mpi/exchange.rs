//! Rank 0's side ([`Root`]) and a worker's side ([`serve_link`]) of an exchange, over any
//! [`Link`]: MPI in production ([`World`](super::World)), channels between threads in the
//! tests, so that all of the logic is tested without `mpirun`.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use nalgebra::DMatrix;
use rand::RngCore;

use super::protocol::{
    self, MAX_MESSAGE_BYTES, Reply, Request, Work, WorkHeader, decode_reply, decode_request,
    encode_done, encode_error, encode_stop, encode_work,
};
use crate::{
    BatchPlan, SimulationChunk, SimulationOptions, Simulator, SimulatorError, check_chunk,
    simulate_batch,
};

/// Messages between the ranks of one communicator.
pub(crate) trait Link {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sends each message to its rank and returns when all are sent.
    fn send(&self, messages: &[(usize, Vec<u8>)]);
    /// Waits for the next message from `from` (any rank if `None`); returns its sender too.
    fn receive(&self, from: Option<usize>) -> (usize, Vec<u8>);
    /// Whether the calling thread may communicate now.
    fn check_thread(&self) -> Result<(), SimulatorError>;
}

impl<T: Link + ?Sized> Link for &T {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn send(&self, messages: &[(usize, Vec<u8>)]) {
        (**self).send(messages);
    }
    fn receive(&self, from: Option<usize>) -> (usize, Vec<u8>) {
        (**self).receive(from)
    }
    fn check_thread(&self) -> Result<(), SimulatorError> {
        (**self).check_thread()
    }
}

/// Adds `offset` to the simulation index an error names (a share's simulation `i` is the
/// batch's simulation `offset + i`).
fn shift_index(e: SimulatorError, offset: usize) -> SimulatorError {
    match e {
        SimulatorError::Simulation {
            index,
            theta,
            source,
        } => SimulatorError::Simulation {
            index: index + offset,
            theta,
            source,
        },
        SimulatorError::Panicked {
            index,
            theta,
            message,
        } => SimulatorError::Panicked {
            index: index + offset,
            theta,
            message,
        },
        other => other,
    }
}

/// Simulates a share (`theta`: its rows, one θ after another) with `simulate_batch`, on this
/// process's rayon pool or the simulator's own batch path; its first row is simulation
/// `first_index`, drawing from stream `first_stream`. Writes x into `out` and returns the
/// failed rows by simulation index.
fn simulate_share<S: Simulator + ?Sized>(
    sim: &S,
    theta: &[f64],
    first_index: usize,
    seed: u64,
    first_stream: u64,
    out: &mut [f64],
) -> Result<Vec<(usize, String)>, SimulatorError> {
    let td = sim.theta_dim();
    if theta.is_empty() || td == 0 {
        return Ok(Vec::new());
    }
    let theta = DMatrix::from_column_slice(td, theta.len() / td, theta);
    let opts = SimulationOptions {
        seed,
        progress: false,
        stream_offset: first_stream,
    };
    match catch_unwind(AssertUnwindSafe(|| simulate_batch(&sim, &theta, &opts))) {
        Ok(Ok(sims)) => {
            if sims.x.len() != out.len() {
                return Err(SimulatorError::DimensionMismatch {
                    what: "values simulated in a share (rows × x_dim)",
                    expected: out.len(),
                    found: sims.x.len(),
                });
            }
            out.copy_from_slice(sims.x.as_slice());
            Ok(sims
                .invalid
                .failed
                .into_iter()
                .map(|(i, why)| (i + first_index, why))
                .collect())
        }
        Ok(Err(e)) => Err(shift_index(e, first_index)),
        Err(payload) => Err(SimulatorError::Panicked {
            index: first_index,
            theta: theta.column(0).iter().copied().collect(),
            message: format!(
                "{} (while simulating simulations {first_index}..{})",
                panic_message(payload.as_ref()),
                first_index + theta.ncols()
            ),
        }),
    }
}

/// What a worker did while it served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Shares received (one per chunk that gave this rank rows).
    pub batches: usize,
    /// Rows simulated.
    pub rows: usize,
}

/// The answer to one work message, as bytes (never panics).
fn answer<S: Simulator + ?Sized>(sim: &S, rank: usize, w: &Work) -> Vec<u8> {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, String> {
        let (td, xd) = (sim.theta_dim(), sim.x_dim());
        if (w.theta_dim, w.x_dim) != (td as u64, xd as u64) {
            return Err(format!(
                "rank 0's simulator has theta_dim = {}, x_dim = {}, but rank {rank} serves one \
                 with theta_dim = {td}, x_dim = {xd}: every rank must serve the same simulator",
                w.theta_dim, w.x_dim
            ));
        }
        let rows = w.theta.len() / td.max(1);
        let first_index = usize::try_from(w.first_index)
            .map_err(|_| format!("the first index {} is too large", w.first_index))?;
        let mut x = vec![0.0; rows * xd];
        let failed = simulate_share(sim, &w.theta, first_index, w.seed, w.first_stream, &mut x)
            .map_err(|e| e.to_string())?;
        let failed: Vec<(u64, String)> =
            failed.into_iter().map(|(i, why)| (i as u64, why)).collect();
        let bytes = encode_done(w.batch, xd, &x, &failed);
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "the answer for simulations {first_index}..{} takes {} bytes, more than the \
                 {MAX_MESSAGE_BYTES} bytes of one message (long failure reasons?): use a \
                 smaller batch size (MpiSimulator::with_batch_size)",
                first_index + rows,
                bytes.len()
            ));
        }
        Ok(bytes)
    }));
    match outcome {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(message)) => encode_error(w.batch, &message),
        Err(payload) => encode_error(
            w.batch,
            &format!(
                "the simulator panicked: {}",
                panic_message(payload.as_ref())
            ),
        ),
    }
}

/// A worker's loop: answers every work message from rank 0 until a stop message.
pub(crate) fn serve_link<L: Link, S: Simulator + ?Sized>(
    link: &L,
    sim: &S,
) -> Result<Served, SimulatorError> {
    if link.rank() == 0 {
        return Err(SimulatorError::Mpi(
            "serve is for the ranks other than 0; rank 0 runs the inference with an \
             MpiSimulator"
                .to_string(),
        ));
    }
    link.check_thread()?;
    let mut served = Served::default();
    loop {
        let (_, bytes) = link.receive(Some(0));
        let reply = match decode_request(&bytes) {
            Ok(Request::Stop) => return Ok(served),
            Ok(Request::Work(w)) => {
                served.batches += 1;
                served.rows += w.theta.len() / (w.theta_dim.max(1) as usize);
                answer(sim, link.rank(), &w)
            }
            Err(why) => encode_error(u64::MAX, &format!("could not read rank 0's message: {why}")),
        };
        link.send(&[(0, reply)]);
    }
}

/// A worker's share of x and its failed rows (by simulation index, with reasons).
type Answer = (Vec<f64>, Vec<(usize, String)>);

/// Rank 0's state between chunks.
struct RootState {
    /// The number of the next exchange.
    next_batch: u64,
    /// Whether the stop message was sent.
    finished: bool,
}

/// Rank 0's side: simulates each chunk by sharing its rows among all ranks.
pub(crate) struct Root<L, S> {
    link: L,
    inner: S,
    batch_size: usize,
    max_share_rows: usize,
    state: Mutex<RootState>,
}

impl<L: Link, S: Simulator> Root<L, S> {
    pub(crate) fn new(link: L, inner: S) -> Self {
        let max_share_rows = protocol::max_share_rows(inner.theta_dim(), inner.x_dim());
        Self {
            link,
            inner,
            batch_size: usize::MAX,
            max_share_rows,
            state: Mutex::new(RootState {
                next_batch: 0,
                finished: false,
            }),
        }
    }

    pub(crate) fn link(&self) -> &L {
        &self.link
    }

    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    pub(crate) fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.max(1);
    }

    #[cfg(test)]
    fn set_max_share_rows(&mut self, rows: usize) {
        self.max_share_rows = rows.max(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RootState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most rows of one exchange.
    fn rows_per_exchange(&self) -> usize {
        self.max_share_rows.saturating_mul(self.link.size().max(1))
    }

    /// Sends the stop message to every worker (once); returns whether it was sent now.
    pub(crate) fn stop(&self) -> bool {
        let mut state = self.lock();
        if state.finished {
            return false;
        }
        state.finished = true;
        let stops: Vec<(usize, Vec<u8>)> =
            (1..self.link.size()).map(|r| (r, encode_stop())).collect();
        self.link.send(&stops);
        true
    }

    /// One exchange: the rows of `chunk` shared among all ranks, x into `out`, failed rows
    /// onto `failed`.
    fn exchange(
        &self,
        state: &mut RootState,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        let (td, xd, size) = (self.inner.theta_dim(), self.inner.x_dim(), self.link.size());
        let (theta, rows) = (chunk.thetas(), chunk.len());
        let (first_index, seed, first_stream) = (chunk.index(0), chunk.seed(), chunk.stream(0));
        let shares = protocol::shares(rows, size);
        let batch = state.next_batch;
        state.next_batch = state.next_batch.wrapping_add(1);
        let mut work = Vec::new();
        for (rank, share) in shares.iter().enumerate().skip(1) {
            if share.is_empty() {
                continue;
            }
            let header = WorkHeader {
                batch,
                first_index: (first_index + share.start) as u64,
                seed,
                first_stream: first_stream.wrapping_add(share.start as u64),
                theta_dim: td as u64,
                x_dim: xd as u64,
            };
            work.push((
                rank,
                encode_work(&header, &theta[share.start * td..share.end * td]),
            ));
        }
        self.link.send(&work);
        drop(work);

        // Rank 0's own share, while the workers simulate theirs.
        let local = shares[0].clone();
        let local_result = simulate_share(
            &self.inner,
            &theta[local.start * td..local.end * td],
            first_index,
            seed,
            first_stream,
            &mut out[local.start * xd..local.end * xd],
        );

        // Every worker that was sent work answers exactly once, whatever happened: wait for
        // all of them, so that the next exchange starts in step.
        let mut pending: Vec<usize> = shares
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, s)| !s.is_empty())
            .map(|(r, _)| r)
            .collect();
        let mut errors: Vec<(usize, SimulatorError)> = Vec::new();
        let mut worker_failed: Vec<(usize, String)> = Vec::new();
        while !pending.is_empty() {
            let (rank, bytes) = self.link.receive(None);
            let Some(at) = pending.iter().position(|&r| r == rank) else {
                errors.push((
                    rank,
                    SimulatorError::MpiRank {
                        rank,
                        message: format!(
                            "sent a message during batch {batch}, expected only from ranks \
                             {pending:?}"
                        ),
                    },
                ));
                continue;
            };
            pending.swap_remove(at);
            let share = &shares[rank];
            match self.read_reply(rank, batch, share, first_index, &bytes) {
                Ok((x, rows_failed)) => {
                    out[share.start * xd..share.end * xd].copy_from_slice(&x);
                    worker_failed.extend(rows_failed);
                }
                Err(e) => errors.push((rank, e)),
            }
        }
        match local_result {
            Err(e) => return Err(e),
            Ok(local_failed) => failed.extend(local_failed),
        }
        if let Some((_, e)) = errors.into_iter().min_by_key(|(rank, _)| *rank) {
            return Err(e);
        }
        failed.extend(worker_failed);
        Ok(())
    }

    /// Checks a worker's answer for `share` and returns its x and failed rows.
    fn read_reply(
        &self,
        rank: usize,
        batch: u64,
        share: &Range<usize>,
        first_index: usize,
        bytes: &[u8],
    ) -> Result<Answer, SimulatorError> {
        let xd = self.inner.x_dim();
        let wrong = |message: String| SimulatorError::MpiRank { rank, message };
        match decode_reply(bytes)
            .map_err(|why| wrong(format!("sent an unreadable answer: {why}")))?
        {
            Reply::Error { message, .. } => Err(wrong(message)),
            Reply::Done {
                batch: b,
                rows,
                x_dim,
                x,
                failed,
            } => {
                if b != batch {
                    return Err(wrong(format!("answered batch {b}, expected batch {batch}")));
                }
                if (rows, x_dim) != (share.len() as u64, xd as u64) {
                    return Err(wrong(format!(
                        "answered {rows} rows of {x_dim} values, expected {} rows of {xd}",
                        share.len()
                    )));
                }
                let range = (first_index + share.start) as u64..(first_index + share.end) as u64;
                let mut rows_failed = Vec::with_capacity(failed.len());
                for (i, why) in failed {
                    if !range.contains(&i) {
                        return Err(wrong(format!(
                            "reported simulation {i} as failed, outside its share {range:?}"
                        )));
                    }
                    rows_failed.push((i as usize, why));
                }
                Ok((x, rows_failed))
            }
        }
    }
}

impl<L: Link + Send + Sync, S: Simulator> Simulator for Root<L, S> {
    fn theta_dim(&self) -> usize {
        self.inner.theta_dim()
    }

    fn x_dim(&self) -> usize {
        self.inner.x_dim()
    }

    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.inner.simulate(theta, rng, out)
    }

    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(BatchPlan {
            batch_size: self.batch_size.min(self.rows_per_exchange()).max(1),
            concurrency: 1,
        })
    }

    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        check_chunk(self, chunk, out)?;
        if chunk.is_empty() {
            return Ok(());
        }
        self.link.check_thread()?;
        let mut state = self.lock();
        if state.finished {
            return Err(SimulatorError::Mpi(
                "this MpiSimulator was finished (the workers were told to stop); make a new \
                 one, with the workers serving again, to simulate more"
                    .to_string(),
            ));
        }
        let (td, xd) = (self.inner.theta_dim(), self.inner.x_dim());
        let per_exchange = self.rows_per_exchange();
        let mut start = 0;
        while start < chunk.len() {
            let end = chunk.len().min(start.saturating_add(per_exchange));
            let part = SimulationChunk::new(
                &chunk.thetas()[start * td..end * td],
                td,
                chunk.index(start),
                chunk.seed(),
                chunk.stream(start),
            )?;
            self.exchange(&mut state, &part, &mut out[start * xd..end * xd], failed)?;
            start = end;
        }
        Ok(())
    }
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};

    use rand::Rng;

    use super::*;
    use crate::{FnSimulator, SliceSimulator};

    /// A stochastic simulator of two values (θ plus noise from its generator), standing
    /// in for a benchmark task.
    #[derive(Clone, Copy, Debug)]
    struct TwoMoons;

    impl Simulator for TwoMoons {
        fn theta_dim(&self) -> usize {
            2
        }
        fn x_dim(&self) -> usize {
            2
        }
        fn simulate(
            &self,
            theta: &[f64],
            rng: &mut dyn rand::RngCore,
            out: &mut [f64],
        ) -> Result<(), SimulatorError> {
            crate::check_lengths(self, theta, out)?;
            for (o, t) in out.iter_mut().zip(theta) {
                *o = t + rng.random_range(-0.5..0.5);
            }
            Ok(())
        }
    }

    /// A message and its sender.
    type Letter = (usize, Vec<u8>);

    /// Ranks as threads, messages over channels.
    struct ChannelLink {
        rank: usize,
        to: Vec<Sender<Letter>>,
        /// The channel, and the messages taken from it while waiting for another sender.
        from: Mutex<(Receiver<Letter>, Vec<Letter>)>,
    }

    fn links(size: usize) -> Vec<ChannelLink> {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..size).map(|_| channel()).unzip();
        receivers
            .into_iter()
            .enumerate()
            .map(|(rank, rx)| ChannelLink {
                rank,
                to: senders.clone(),
                from: Mutex::new((rx, Vec::new())),
            })
            .collect()
    }

    impl Link for ChannelLink {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.to.len()
        }
        fn send(&self, messages: &[(usize, Vec<u8>)]) {
            for (to, m) in messages {
                let _ = self.to[*to].send((self.rank, m.clone()));
            }
        }
        fn receive(&self, from: Option<usize>) -> (usize, Vec<u8>) {
            let mut guard = self.from.lock().unwrap();
            let (rx, stash) = &mut *guard;
            if let Some(at) = stash.iter().position(|(r, _)| from.is_none_or(|f| f == *r)) {
                return stash.remove(at);
            }
            loop {
                match rx.recv() {
                    Ok((r, m)) if from.is_none_or(|f| f == r) => return (r, m),
                    Ok(other) => stash.push(other),
                    Err(_) => return (usize::MAX, Vec::new()),
                }
            }
        }
        fn check_thread(&self) -> Result<(), SimulatorError> {
            Ok(())
        }
    }

    /// Runs `root` on rank 0 of `size` ranks whose workers serve `worker(rank)`; returns
    /// what `root` returned and what each worker's `serve` returned.
    fn with_ranks<W, R>(
        size: usize,
        worker: impl Fn(usize) -> W + Sync,
        root: impl FnOnce(&ChannelLink) -> R,
    ) -> (R, Vec<Result<Served, SimulatorError>>)
    where
        W: Simulator,
    {
        let mut all = links(size);
        let workers = all.split_off(1);
        let link0 = all.pop().unwrap();
        std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter()
                .map(|l| {
                    let worker = &worker;
                    s.spawn(move || serve_link(l, &worker(l.rank)))
                })
                .collect();
            let r = root(&link0);
            // Whatever `root` did, stop the workers (a second stop is harmless: they are
            // gone).
            let stops: Vec<_> = (1..size).map(|r| (r, encode_stop())).collect();
            link0.send(&stops);
            let served = handles.into_iter().map(|h| h.join().unwrap()).collect();
            (r, served)
        })
    }

    fn bits(x: &DMatrix<f64>) -> Vec<u64> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// A batch simulator that marks rows with θ₀ < −0.5 as failed, gives NaN for
    /// θ₁ > 0.6 and +∞ for θ₁ < −0.6, and otherwise x = θ + noise.
    struct Flaky;

    impl Simulator for Flaky {
        fn theta_dim(&self) -> usize {
            2
        }
        fn x_dim(&self) -> usize {
            3
        }
        fn simulate(
            &self,
            theta: &[f64],
            rng: &mut dyn RngCore,
            out: &mut [f64],
        ) -> Result<(), SimulatorError> {
            crate::check_lengths(self, theta, out)?;
            let noise: f64 = rng.random();
            out[0] = theta[0] + noise;
            out[1] = if theta[1] > 0.6 {
                f64::NAN
            } else if theta[1] < -0.6 {
                f64::INFINITY
            } else {
                theta[1] * noise
            };
            out[2] = rng.random();
            Ok(())
        }
        fn batch_plan(&self) -> Option<BatchPlan> {
            Some(BatchPlan {
                batch_size: 4,
                concurrency: 2,
            })
        }
        fn simulate_many(
            &self,
            chunk: &SimulationChunk<'_>,
            out: &mut [f64],
            failed: &mut Vec<(usize, String)>,
        ) -> Result<(), SimulatorError> {
            check_chunk(self, chunk, out)?;
            for (k, row) in out.chunks_mut(3).enumerate() {
                if chunk.theta(k)[0] < -0.5 {
                    failed.push((chunk.index(k), format!("θ₀ = {} < -0.5", chunk.theta(k)[0])));
                    continue;
                }
                self.simulate(chunk.theta(k), &mut chunk.rng(k), row)?;
            }
            Ok(())
        }
    }

    fn thetas(n: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = simfer_distributions::rng_from_seed(seed);
        DMatrix::from_fn(2, n, |_, _| rng.random_range(-1.0..1.0))
    }

    /// Runs `root` on rank 0 of `size` ranks whose workers serve each of `phases` in turn
    /// (each until a stop); returns what each worker's `serve` calls returned.
    fn with_phases(
        size: usize,
        phases: &[&dyn Simulator],
        root: impl FnOnce(&ChannelLink),
    ) -> Vec<Vec<Served>> {
        let mut all = links(size);
        let workers = all.split_off(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter()
                .map(|l| {
                    s.spawn(move || {
                        phases
                            .iter()
                            .map(|sim| serve_link(l, *sim).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            root(&all[0]);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn any_number_of_ranks_and_any_chunking_give_the_one_process_result() {
        for size in 1..=4 {
            for batch_size in [1, 3, 10, usize::MAX] {
                for max_share in [2, usize::MAX] {
                    let served = with_phases(size, &[&TwoMoons, &Flaky], |link| {
                        let check = |sim: &dyn Simulator, n: usize, offset: u64| {
                            let mut root = Root::new(link, sim);
                            root.set_batch_size(batch_size);
                            root.set_max_share_rows(max_share);
                            for (n, offset) in [(0, 0), (1, 0), (2, 5), (n, offset)] {
                                let theta = thetas(n, n as u64);
                                let opts = SimulationOptions::with_seed(11)
                                    .with_progress(false)
                                    .with_stream_offset(offset);
                                let one = simulate_batch(sim, &theta, &opts).unwrap();
                                let many = simulate_batch(&root, &theta, &opts).unwrap();
                                let what = format!("{size} ranks, batch size {batch_size}, n {n}");
                                assert_eq!(bits(&many.x), bits(&one.x), "{what}");
                                assert_eq!(many.invalid, one.invalid, "{what}");
                            }
                            assert!(root.stop());
                        };
                        check(&TwoMoons, 37, u64::MAX - 3);
                        check(&Flaky, 41, 7);
                    });
                    // Every worker had rows to simulate in each phase (unless the chunks
                    // are smaller than the number of ranks).
                    for phases in served.iter().filter(|_| batch_size >= size) {
                        assert!(phases.iter().all(|p| p.rows > 0), "{served:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn failed_and_invalid_rows_come_back_in_order() {
        for size in 1..=4 {
            with_phases(size, &[&Flaky], |link| {
                let mut root = Root::new(link, Flaky);
                for batch_size in [1, 5, usize::MAX] {
                    root.set_batch_size(batch_size);
                    let theta = thetas(50, 3);
                    let opts = SimulationOptions::with_seed(5).with_progress(false);
                    let one = simulate_batch(&Flaky, &theta, &opts).unwrap();
                    let many = simulate_batch(&root, &theta, &opts).unwrap();
                    assert!(one.invalid.num_failed() > 3 && one.invalid.num_inf() > 0);
                    assert_eq!(bits(&many.x), bits(&one.x), "size {size}");
                    assert_eq!(many.invalid, one.invalid, "size {size}");
                }
                assert!(root.stop());
                assert!(!root.stop(), "the stop is sent once");
            });
        }
    }

    /// θ₀ = 8 is a panic, θ₀ = 7 a NaN.
    fn touchy() -> impl Simulator {
        SliceSimulator::new(
            2,
            2,
            |theta: &[f64], rng: &mut dyn RngCore, out: &mut [f64]| {
                if theta[0] == 8.0 {
                    panic!("deliberate panic at θ = {theta:?}");
                }
                out[0] = if theta[0] == 7.0 { f64::NAN } else { theta[0] };
                out[1] = rng.random();
            },
        )
    }

    fn erring() -> impl Simulator {
        FnSimulator::new(2, 2, |theta: &[f64], _: &mut dyn RngCore| {
            if theta[0] == 9.0 {
                vec![0.0]
            } else {
                theta.to_vec()
            }
        })
    }

    #[test]
    fn a_worker_error_names_its_rank_and_the_next_batch_still_works() {
        let size = 3;
        let mut all = links(size);
        let workers = all.split_off(1);
        let link0 = &all[0];
        std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter()
                .map(|l| s.spawn(move || serve_link(l, &erring()).unwrap()))
                .collect();
            let root = Root::new(link0, erring());
            let opts = SimulationOptions::with_seed(1).with_progress(false);
            let mut theta = thetas(9, 1);
            // Simulations 5 (on rank 1: the shares are 0..3, 3..6, 6..9) and 7 (on rank 2)
            // fail: the lowest rank's error is returned, naming the lowest index, as in one
            // process.
            theta[(0, 7)] = 9.0;
            theta[(0, 5)] = 9.0;
            let one = simulate_batch(&erring(), &theta, &opts).unwrap_err();
            let err = simulate_batch(&root, &theta, &opts).unwrap_err();
            assert!(
                matches!(one, SimulatorError::Simulation { index: 5, .. }),
                "{one}"
            );
            let SimulatorError::MpiRank { rank, message } = &err else {
                panic!("expected an MpiRank error, found {err}");
            };
            assert_eq!(*rank, 1);
            assert!(message.contains("simulation 5 "), "{message}");
            assert!(err.to_string().contains("rank 1"), "{err}");
            // On rank 0's share: the one-process error itself.
            theta[(0, 1)] = 9.0;
            let one = simulate_batch(&erring(), &theta, &opts).unwrap_err();
            let err = simulate_batch(&root, &theta, &opts).unwrap_err();
            assert_eq!(err.to_string(), one.to_string());
            assert!(matches!(err, SimulatorError::Simulation { index: 1, .. }));
            // Still in step.
            let ok = thetas(20, 2);
            let one = simulate_batch(&erring(), &ok, &opts).unwrap();
            let many = simulate_batch(&root, &ok, &opts).unwrap();
            assert_eq!(bits(&many.x), bits(&one.x));
            assert!(root.stop());
            let served: Vec<Served> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            // 9 rows in shares of 3 twice, then 20 rows: 7 on rank 1, 6 on rank 2.
            assert_eq!(
                served,
                vec![
                    Served {
                        batches: 3,
                        rows: 13
                    },
                    Served {
                        batches: 3,
                        rows: 12
                    }
                ]
            );
            // A finished simulator says so.
            let err = simulate_batch(&root, &ok, &opts).unwrap_err();
            assert!(err.to_string().contains("finished"), "{err}");
        });
    }

    #[test]
    fn a_worker_panic_is_an_error_not_a_hang() {
        let ((), served) = with_ranks(
            2,
            |_| touchy(),
            |link| {
                let root = Root::new(link, touchy());
                let opts = SimulationOptions::with_seed(1).with_progress(false);
                let mut theta = thetas(6, 1);
                theta[(0, 4)] = 8.0;
                theta[(0, 3)] = 7.0;
                let err = simulate_batch(&root, &theta, &opts).unwrap_err();
                let SimulatorError::MpiRank { rank: 1, message } = &err else {
                    panic!("expected an MpiRank error from rank 1, found {err}");
                };
                assert!(message.contains("simulation 4 ") && message.contains("panicked"));
                theta[(0, 4)] = 0.5;
                let one = simulate_batch(&touchy(), &theta, &opts).unwrap();
                let many = simulate_batch(&root, &theta, &opts).unwrap();
                assert_eq!(bits(&many.x), bits(&one.x));
                assert_eq!(many.invalid.nan_rows, vec![3]);
            },
        );
        assert!(served.iter().all(Result::is_ok));
    }

    #[test]
    fn workers_with_another_simulator_are_refused() {
        let ((), _) = with_ranks(
            3,
            |rank| -> Box<dyn Simulator> {
                if rank == 2 {
                    Box::new(FnSimulator::new(2, 5, |_: &[f64], _: &mut dyn RngCore| {
                        vec![0.0; 5]
                    }))
                } else {
                    Box::new(TwoMoons)
                }
            },
            |link| {
                let root = Root::new(link, TwoMoons);
                let opts = SimulationOptions::with_seed(1).with_progress(false);
                let err = simulate_batch(&root, &thetas(10, 1), &opts).unwrap_err();
                let msg = err.to_string();
                assert!(msg.contains("rank 2") && msg.contains("x_dim = 5"), "{msg}");
            },
        );
    }

    #[test]
    fn garbage_and_strays_are_errors() {
        // A worker that answers garbage, then a wrong batch number.
        let mut all = links(2);
        let worker = all.pop().unwrap();
        let link0 = all.pop().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = worker.receive(Some(0));
                worker.send(&[(0, b"nonsense".to_vec())]);
                let _ = worker.receive(Some(0));
                worker.send(&[(0, encode_done(41, 2, &[0.0; 2], &[]))]);
                let _ = worker.receive(Some(0));
                worker.send(&[(0, encode_done(2, 2, &[0.0; 2], &[(0, "x".into())]))]);
            });
            let root = Root::new(&link0, TwoMoons);
            let opts = SimulationOptions::with_seed(1).with_progress(false);
            let theta = thetas(2, 1);
            let e = simulate_batch(&root, &theta, &opts)
                .unwrap_err()
                .to_string();
            assert!(e.contains("rank 1") && e.contains("unreadable"), "{e}");
            let e = simulate_batch(&root, &theta, &opts)
                .unwrap_err()
                .to_string();
            assert!(e.contains("answered batch 41, expected batch 1"), "{e}");
            let e = simulate_batch(&root, &theta, &opts)
                .unwrap_err()
                .to_string();
            assert!(e.contains("outside its share"), "{e}");
        });
        // serve on rank 0, and an unreadable request.
        let all = links(2);
        let e = serve_link(&all[0], &TwoMoons).unwrap_err().to_string();
        assert!(e.contains("ranks other than 0"), "{e}");
        all[0].send(&[(1, b"SF?".to_vec()), (1, encode_stop())]);
        assert_eq!(serve_link(&all[1], &TwoMoons).unwrap(), Served::default());
        let (_, reply) = all[0].receive(Some(1));
        let Ok(Reply::Error { batch, message }) = decode_reply(&reply) else {
            panic!("expected an error reply");
        };
        assert_eq!(batch, u64::MAX);
        assert!(message.contains("could not read"), "{message}");
    }

    #[test]
    fn shifted_errors_name_the_batch_index() {
        let e = shift_index(
            SimulatorError::Panicked {
                index: 2,
                theta: vec![],
                message: String::new(),
            },
            10,
        );
        assert!(matches!(e, SimulatorError::Panicked { index: 12, .. }));
        let e = shift_index(SimulatorError::Check("c".into()), 10);
        assert!(matches!(e, SimulatorError::Check(_)));
    }
}
