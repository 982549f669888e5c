//! One worker process: spawning, a request with a deadline, killing, shutdown.
//!
//! Three threads per worker keep every pipe moving whatever the process does: a writer
//! (a process that stops reading cannot block us on a full stdin pipe), a reader that sends
//! stdout lines over a channel (so a deadline is a `recv_timeout`), and a stderr drain that
//! keeps the last lines for error messages (a process that fills its stderr pipe cannot
//! block itself or us).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::Config;
use super::protocol::{Answer, line_text, parse_answer, shorten, write_request};

/// How long a worker may take to exit after its stdin is closed, before it is killed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The longest stdout line read whole; a longer one is cut (and is then a protocol error).
const MAX_LINE: u64 = 64 << 20;

/// Lines of stderr kept, and characters kept of each.
const STDERR_LINES: usize = 20;
const STDERR_LINE_CHARS: usize = 400;

/// What the reader thread sends.
enum Line {
    Text(String),
    Eof,
    Failed(String),
}

/// The tail of a worker's stderr, and whether the stream has ended.
#[derive(Default)]
struct StderrTail {
    state: Mutex<(VecDeque<String>, bool)>,
    ended: Condvar,
}

impl StderrTail {
    fn push(&self, line: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0.len() == STDERR_LINES {
            state.0.pop_front();
        }
        state.0.push_back(line);
    }

    fn end(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.ended.notify_all();
    }

    /// `; its stderr ended with: a | b | c` (the last 3 lines, at most 600 characters),
    /// or nothing, after waiting up to `wait` for the stream to end.
    fn describe(&self, wait: Duration) -> String {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .ended
            .wait_timeout_while(guard, wait, |s| !s.1)
            .unwrap_or_else(PoisonError::into_inner);
        let lines: Vec<&str> = guard
            .0
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        let last = lines[lines.len().saturating_sub(3)..].join(" | ");
        format!("; its stderr ended with: {}", shorten(&last, 600))
    }
}

/// How a request ended.
pub(crate) enum Outcome {
    /// Every row answered; rows that declared failure (`error <message>`) are listed by
    /// their position in the request, with the message.
    Done { declared: Vec<(usize, String)> },
    /// The worker was found broken before the request was sent (it had exited, or wrote
    /// lines nobody asked for); it has been killed. Nothing was sent.
    NotSent { reason: String },
    /// The worker failed after answering the first `answered` rows (which are written, as
    /// are the declared failures among them); it has been killed.
    Failed {
        answered: usize,
        declared: Vec<(usize, String)>,
        reason: String,
    },
}

/// A running worker process.
pub(crate) struct Worker {
    child: Child,
    input: Option<Sender<Vec<u8>>>,
    lines: Receiver<Line>,
    stderr: Arc<StderrTail>,
    dead: bool,
    /// No request has been sent yet.
    fresh: bool,
}

fn read_stdout(stdout: ChildStdout, tx: Sender<Line>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) => {
                let _ = tx.send(Line::Eof);
                return;
            }
            Ok(_) => {
                if tx.send(Line::Text(line_text(buf))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Line::Failed(e.to_string()));
                return;
            }
        }
    }
}

fn drain_stderr(stderr: ChildStderr, tail: Arc<StderrTail>, forward: Option<String>) {
    let mut reader = BufReader::new(stderr);
    loop {
        let mut buf = Vec::new();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = line_text(buf);
                if let Some(prefix) = &forward {
                    let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
                }
                tail.push(shorten(&line, STDERR_LINE_CHARS));
            }
        }
    }
    tail.end();
}

impl Worker {
    /// Starts worker `slot` of the simulator `config` describes.
    pub(crate) fn spawn(config: &Config, slot: usize) -> std::io::Result<Self> {
        let mut cmd = Command::new(&config.program);
        cmd.args(&config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &config.current_dir {
            cmd.current_dir(dir);
        }
        cmd.envs(config.env.iter().map(|(k, v)| (k, v)))
            .env("SIMFER_WORKER", slot.to_string())
            .env("SIMFER_THETA_DIM", config.theta_dim.to_string())
            .env("SIMFER_X_DIM", config.x_dim.to_string());
        #[cfg(unix)]
        {
            // Its own process group, so that a kill also reaches what it started.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("the child's pipes were not created"));
        };
        let tail = Arc::new(StderrTail::default());
        let (line_tx, lines) = mpsc::channel();
        let (input, input_rx) = mpsc::channel::<Vec<u8>>();
        let forward = config
            .forward_stderr
            .then(|| format!("[simulator worker {slot}] "));
        let spawned = thread::Builder::new()
            .name(format!("simfer-worker-{slot}-stdout"))
            .spawn(move || read_stdout(stdout, line_tx))
            .and_then(|_| {
                let tail = Arc::clone(&tail);
                thread::Builder::new()
                    .name(format!("simfer-worker-{slot}-stderr"))
                    .spawn(move || drain_stderr(stderr, tail, forward))
            })
            .and_then(|_| {
                thread::Builder::new()
                    .name(format!("simfer-worker-{slot}-stdin"))
                    .spawn(move || {
                        let mut stdin = stdin;
                        for buf in input_rx {
                            if stdin.write_all(&buf).and_then(|()| stdin.flush()).is_err() {
                                break;
                            }
                        }
                        // Dropping stdin closes it: the worker reads end of file.
                    })
            });
        let mut worker = Self {
            child,
            input: Some(input),
            lines,
            stderr: tail,
            dead: false,
            fresh: true,
        };
        if let Err(e) = spawned {
            worker.kill();
            return Err(e);
        }
        Ok(worker)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the worker's process group (SIGKILL), then reaps the worker. The group is
    /// killed before the worker is reaped, so its id cannot have been reused.
    pub(crate) fn kill(&mut self) {
        if self.dead {
            return;
        }
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; it touches no
            // memory of ours. The group is the worker's own (process_group(0)), and the
            // worker is not reaped yet, so the id is still its.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.input = None;
        self.dead = true;
    }

    /// The worker's exit status, after it has ended: killing the rest of its group first.
    fn reap(&mut self) -> Option<ExitStatus> {
        self.kill();
        self.child.try_wait().ok().flatten()
    }

    /// The reason for a failure, with the tail of stderr.
    fn reason(&self, what: String) -> String {
        format!("{what}{}", self.stderr.describe(Duration::from_millis(200)))
    }

    /// Sends `rows` (row seed and θ) as one batch and reads the answers into `out`
    /// (`x_dim` values per row), within `timeout` if there is one (plus `startup` for the
    /// worker's first request).
    pub(crate) fn request<'a>(
        &mut self,
        rows: impl ExactSizeIterator<Item = (u64, &'a [f64])>,
        x_dim: usize,
        out: &mut [f64],
        timeout: Option<Duration>,
        startup: Duration,
    ) -> Outcome {
        let m = rows.len();
        let first = std::mem::replace(&mut self.fresh, false);
        let timeout = timeout.map(|t| if first { t.saturating_add(startup) } else { t });
        // Anything waiting before we ask is a sign that the worker is out of step.
        match self.lines.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(Line::Text(line)) => {
                let what = format!(
                    "the worker wrote `{}` before it was sent a batch (more lines than rows \
                     in an earlier answer?)",
                    shorten(&line, 60)
                );
                self.kill();
                return Outcome::NotSent {
                    reason: self.reason(what),
                };
            }
            Ok(Line::Eof | Line::Failed(_)) | Err(TryRecvError::Disconnected) => {
                let status = self.reap();
                let what = format!("the worker had exited ({})", describe_status(status));
                return Outcome::NotSent {
                    reason: self.reason(what),
                };
            }
        }
        let mut buf = String::new();
        write_request(&mut buf, rows);
        let sent = self
            .input
            .as_ref()
            .is_some_and(|input| input.send(buf.into_bytes()).is_ok());
        if !sent {
            self.kill();
            return Outcome::NotSent {
                reason: "the worker's stdin is closed".to_string(),
            };
        }
        let deadline = timeout.map(|t| (Instant::now() + t, t));
        let mut declared = Vec::new();
        for (k, row) in out.chunks_mut(x_dim).enumerate().take(m) {
            let received = match deadline {
                Some((at, _)) => self
                    .lines
                    .recv_timeout(at.saturating_duration_since(Instant::now())),
                None => self
                    .lines
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            let what = match received {
                Ok(Line::Text(line)) => match parse_answer(&line, row) {
                    Answer::Values => continue,
                    Answer::Declared(message) => {
                        row.fill(f64::NAN);
                        declared.push((k, format!("the simulator reported: {message}")));
                        continue;
                    }
                    Answer::Invalid(why) => {
                        self.kill();
                        format!("the worker's answer to row {} of {m} is {why}", k + 1)
                    }
                },
                Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    let status = self.reap();
                    format!(
                        "the worker exited ({}) after answering {k} of {m} rows",
                        describe_status(status)
                    )
                }
                Ok(Line::Failed(e)) => {
                    self.kill();
                    format!("reading the worker's answer failed after {k} of {m} rows: {e}")
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    let limit = deadline.map_or(Duration::ZERO, |(_, t)| t);
                    let new = if first && !startup.is_zero() {
                        format!(", {startup:?} of it for the start of a new worker")
                    } else {
                        String::new()
                    };
                    format!(
                        "no answer within the timeout of {limit:?}{new}: the worker answered {k} \
                         of {m} rows and was killed"
                    )
                }
            };
            return Outcome::Failed {
                answered: k,
                declared,
                reason: self.reason(what),
            };
        }
        Outcome::Done { declared }
    }

    /// Closes the worker's stdin, so that it can finish and exit.
    pub(crate) fn close_input(&mut self) {
        self.input = None;
    }

    /// Waits until `deadline` for the worker to exit after [`close_input`](Self::close_input),
    /// then kills its group and reaps it.
    pub(crate) fn finish(&mut self, deadline: Instant) {
        self.close_input();
        if self.dead {
            return;
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => {
                    self.dead = true;
                    // The worker is reaped; anything left in its group is killed (the group
                    // id stays reserved while the group has members).
                    #[cfg(unix)]
                    if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                        // SAFETY: as in `kill`; signals only that process group.
                        unsafe {
                            libc::kill(-pid, libc::SIGKILL);
                        }
                    }
                    return;
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        self.kill();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.finish(Instant::now() + SHUTDOWN_GRACE);
    }
}

fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        None => "exit status unknown".to_string(),
        Some(s) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(signal) = s.signal() {
                    return format!("killed by signal {signal}");
                }
            }
            s.to_string()
        }
    }
}
