//! Drives a node with many clients at once: each client is its own key and its own QUIC
//! connection, and keeps up to `pipeline` reducer calls in flight. Answers come only once a
//! call's commit is durable, so what is counted is what the node made durable.

use super::histogram::Histogram;
use super::zipf::Rng;
use crate::client::connect_as;
use crate::home::CliError;
use crate::registry::NodeEntry;
use interstice::{NodeIdentity, TrustedPeers};
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{Peer, PeerEndpoint};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest one call may wait for its answer before the bench gives up on the node.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Draws the encoded arguments of call `seq` of client `client`.
pub type DrawArgs = Box<dyn Fn(usize, u64, &mut Rng) -> Vec<u8> + Send + Sync>;

/// What the clients send: one reducer, with arguments drawn per call.
pub struct Workload {
    /// The module.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// The arguments of each call.
    pub args: DrawArgs,
    /// Whether a reducer's failure is the workload's own verdict (a transfer the payer cannot
    /// afford): counted as aborted, not as an error.
    pub aborted: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// When the clients stop sending.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After a warm-up, for this long (calls answered during the warm-up are not counted).
    Elapsed {
        /// Not counted.
        warmup: Duration,
        /// Counted.
        measure: Duration,
    },
    /// After this many calls, all clients together (every one counted).
    Calls(u64),
}

/// How hard to drive the node.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Clients, each its own key and connection.
    pub clients: usize,
    /// Calls each client keeps in flight.
    pub pipeline: usize,
    /// When to stop.
    pub until: Until,
}

/// What the measured part of a run saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// How long the counted part lasted.
    pub seconds: f64,
    /// Calls that committed.
    pub committed: u64,
    /// Calls the reducer refused as the workload expects (nothing changed).
    pub aborted: u64,
    /// Calls the node answered `Busy` (nothing ran).
    pub busy: u64,
    /// Calls that failed otherwise.
    pub failed: u64,
    /// The first such failure, for the report.
    pub first_failure: Option<String>,
    /// Latency of every counted answer (committed, aborted or not), in microseconds.
    pub latency: Histogram,
}

impl Outcome {
    /// Committed calls per second.
    pub fn committed_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.committed as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Counters every client adds to, read by the progress line.
#[derive(Default)]
struct Shared {
    committed: AtomicU64,
    aborted: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    /// Calls handed out so far (`Until::Calls`).
    issued: AtomicU64,
    /// Set when a client failed: the others stop too.
    stop: AtomicBool,
}

/// Clients handshaking at once: well under a node's budget of handshakes in progress
/// (`PeerBudget::handshakes`, 64 by default), which refuses the ones past it.
const HANDSHAKES: usize = 16;
/// Tries of a client whose handshake the node refused for being past that budget.
const CONNECT_ATTEMPTS: u32 = 5;

/// How long closing the clients' connections may wait for the node to hear of it: a node
/// counts an open node's strangers until their connections close, and a close that is never
/// sent holds the place until the node's idle timeout.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Connects `load.clients` clients to `node`, runs `workload` over them, and closes their
/// connections (waiting for the node to be told) whatever happened.
pub async fn run_clients(
    node: &NodeEntry,
    trusted: &TrustedPeers,
    workload: Workload,
    load: Load,
    seed: u64,
) -> Result<Outcome, CliError> {
    let clients = connect_clients(node, trusted, load.clients).await?;
    let (endpoints, peers): (Vec<_>, Vec<_>) = clients.into_iter().unzip();
    let outcome = run(peers, workload, load, seed).await;
    close_all(endpoints).await;
    outcome
}

/// Closes every endpoint, waiting (together) for the closes to be sent.
async fn close_all(endpoints: Vec<PeerEndpoint>) {
    let mut closing = tokio::task::JoinSet::new();
    for endpoint in endpoints {
        closing.spawn(async move { endpoint.close_and_wait(CLOSE_WAIT).await });
    }
    while closing.join_next().await.is_some() {}
}

/// Connects `count` clients to `node`, each with a fresh key.
async fn connect_clients(
    node: &NodeEntry,
    trusted: &TrustedPeers,
    count: usize,
) -> Result<Vec<(PeerEndpoint, Peer)>, CliError> {
    let mut connecting = tokio::task::JoinSet::new();
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    for index in 0..count {
        let (node, trusted, handshakes) = (node.clone(), trusted.clone(), handshakes.clone());
        connecting.spawn(async move {
            let identity = NodeIdentity::generate()
                .map_err(|e| CliError::Other(format!("generating a client key: {e}")))?;
            let _turn = handshakes
                .acquire()
                .await
                .map_err(|e| CliError::Other(format!("client task: {e}")))?;
            let mut attempt = 1;
            loop {
                match connect_as(&identity, trusted.clone(), &node).await {
                    Ok(connection) => return Ok((index, connection)),
                    // The node refuses handshakes past its budget of them in progress.
                    Err(CliError::Unreachable { reason, .. })
                        if reason.contains("not taking connections")
                            && attempt < CONNECT_ATTEMPTS =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        });
    }
    let mut clients = Vec::with_capacity(count);
    let mut failure = None;
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(client)) => clients.push(client),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(CliError::Other(format!("client task: {e}")));
            }
        }
    }
    if failure.is_none() {
        // A node that does not admit a key may still complete the handshake and close the
        // connection at once: give it a moment to say so.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some((_, (_, peer))) = clients.iter().find(|(_, (_, peer))| peer.is_closed()) {
            let why = peer
                .connection()
                .close_reason()
                .map_or_else(|| "closed".to_string(), |r| r.to_string());
            failure = Some(CliError::Other(format!(
                "the node closed a client's connection: {why}"
            )));
        }
    }
    if let Some(e) = failure {
        close_all(
            clients
                .into_iter()
                .map(|(_, (endpoint, _))| endpoint)
                .collect(),
        )
        .await;
        return Err(refused_client(node, e));
    }
    clients.sort_by_key(|(index, _)| *index);
    Ok(clients.into_iter().map(|(_, c)| c).collect())
}

fn refused_client(node: &NodeEntry, error: CliError) -> CliError {
    CliError::Refused(format!(
        "a bench client could not connect to `{}`: {error}\n  each client has a key of its own, \
         which the node admits only when it is open to strangers \
         (`interstice node start {} --open`) and has room for as many strangers as there are \
         clients (`--clients`)",
        node.name, node.name
    ))
}

/// Runs `workload` over `clients` until `load.until`, printing a progress line to stderr
/// every second, and returns what the counted part saw.
async fn run(
    clients: Vec<Peer>,
    workload: Workload,
    load: Load,
    seed: u64,
) -> Result<Outcome, CliError> {
    let shared = Arc::new(Shared::default());
    let workload = Arc::new(workload);
    let started = Instant::now();
    let (counted_from, counted_until) = match load.until {
        Until::Elapsed { warmup, measure } => (started + warmup, Some(started + warmup + measure)),
        Until::Calls(_) => (started, None),
    };
    let window = Window {
        from: counted_from,
        until: counted_until,
    };
    let mut drivers = tokio::task::JoinSet::new();
    for (index, peer) in clients.into_iter().enumerate() {
        let (workload, shared) = (workload.clone(), shared.clone());
        drivers.spawn(drive(
            peer,
            index,
            workload,
            shared,
            load,
            window,
            Rng::new(seed ^ (index as u64).wrapping_mul(interstice_abi::mix::SPLITMIX_GAMMA)),
        ));
    }
    let progress = tokio::spawn(progress(shared.clone(), load.until, started));
    let mut latency = Histogram::default();
    let mut failure = None;
    let mut counted = Counted::default();
    while let Some(joined) = drivers.join_next().await {
        match joined {
            Ok(Ok(driven)) => {
                latency.merge(&driven.latency);
                counted.add(&driven.counted);
                if counted.first_failure.is_none() {
                    counted.first_failure = driven.counted.first_failure;
                }
            }
            Ok(Err(e)) => {
                shared.stop.store(true, Ordering::Release);
                failure.get_or_insert(e);
            }
            Err(e) => {
                shared.stop.store(true, Ordering::Release);
                failure.get_or_insert(CliError::Other(format!("client task: {e}")));
            }
        }
    }
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let ended = counted.last_answer.unwrap_or_else(Instant::now);
    let seconds = match counted_until {
        Some(until) => until.saturating_duration_since(counted_from),
        None => ended.saturating_duration_since(counted_from),
    }
    .as_secs_f64();
    Ok(Outcome {
        seconds,
        committed: counted.committed,
        aborted: counted.aborted,
        busy: counted.busy,
        failed: counted.failed,
        first_failure: counted.first_failure,
        latency,
    })
}

/// When answers count.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Instant,
    until: Option<Instant>,
}

impl Window {
    fn counts(&self, at: Instant) -> bool {
        at >= self.from && self.until.is_none_or(|until| at <= until)
    }
}

/// What one client counted inside the window.
#[derive(Debug, Default)]
struct Counted {
    committed: u64,
    aborted: u64,
    busy: u64,
    failed: u64,
    first_failure: Option<String>,
    last_answer: Option<Instant>,
}

impl Counted {
    fn add(&mut self, other: &Counted) {
        self.committed += other.committed;
        self.aborted += other.aborted;
        self.busy += other.busy;
        self.failed += other.failed;
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

struct Driven {
    counted: Counted,
    latency: Histogram,
}

/// One client: keeps `load.pipeline` calls in flight until told to stop, then waits for the
/// answers still due.
async fn drive(
    peer: Peer,
    client: usize,
    workload: Arc<Workload>,
    shared: Arc<Shared>,
    load: Load,
    window: Window,
    mut rng: Rng,
) -> Result<Driven, CliError> {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut counted = Counted::default();
    let mut latency = Histogram::default();
    let mut seq = 0u64;
    let may_send = |shared: &Shared| {
        if shared.stop.load(Ordering::Acquire) {
            return false;
        }
        match load.until {
            Until::Elapsed { .. } => window.until.is_none_or(|until| Instant::now() < until),
            Until::Calls(total) => shared.issued.fetch_add(1, Ordering::AcqRel) < total,
        }
    };
    let mut sending = true;
    loop {
        while sending && in_flight.len() < load.pipeline.max(1) {
            if !may_send(&shared) {
                sending = false;
                break;
            }
            seq += 1;
            let message = Message::CallReducer {
                request: seq,
                module: workload.module.clone(),
                reducer: workload.reducer.clone(),
                args: (workload.args)(client, seq, &mut rng),
            };
            let peer = peer.clone();
            in_flight.spawn(async move {
                let sent = Instant::now();
                let answer = tokio::time::timeout(CALL_TIMEOUT, peer.request(&message)).await;
                (sent, answer)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (sent, answer) = joined.map_err(|e| CliError::Other(format!("call task: {e}")))?;
        let answered = Instant::now();
        let outcome = match answer {
            Err(_) => {
                return Err(CliError::Other(format!(
                    "the node did not answer a call within {CALL_TIMEOUT:?}"
                )));
            }
            Ok(Err(e)) => {
                return Err(CliError::Other(format!(
                    "a client's connection failed: {e}"
                )));
            }
            Ok(Ok(Message::CallResult { outcome, .. })) => outcome,
            Ok(Ok(other)) => {
                return Err(CliError::Other(format!(
                    "unexpected answer to a call: {}",
                    crate::text::printable(&format!("{other:?}"))
                )));
            }
        };
        let counts = window.counts(answered);
        let tally = |counter: &AtomicU64| counter.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                tally(&shared.committed);
                counted.committed += u64::from(counts);
            }
            Err(RemoteError::Failed(why)) if (workload.aborted)(&why) => {
                tally(&shared.aborted);
                counted.aborted += u64::from(counts);
            }
            Err(RemoteError::Busy(_)) => {
                tally(&shared.busy);
                counted.busy += u64::from(counts);
            }
            Err(e) => {
                tally(&shared.failed);
                counted.failed += u64::from(counts);
                if counted.first_failure.is_none() {
                    counted.first_failure = Some(crate::calls::remote(e).to_string());
                }
            }
        }
        if counts {
            latency.record(answered.duration_since(sent).as_micros() as u64);
            counted.last_answer = Some(answered);
        }
    }
    Ok(Driven { counted, latency })
}

/// Prints, every second, where the run stands and the rate over the last second.
async fn progress(shared: Arc<Shared>, until: Until, started: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut last = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let committed = shared.committed.load(Ordering::Relaxed);
        let aborted = shared.aborted.load(Ordering::Relaxed);
        let busy = shared.busy.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        let answered = committed + aborted + busy + failed;
        let elapsed = started.elapsed();
        let phase = match until {
            Until::Elapsed { warmup, .. } if elapsed < warmup => {
                format!(
                    "warming up {:.0}/{:.0} s",
                    elapsed.as_secs_f64(),
                    warmup.as_secs_f64()
                )
            }
            Until::Elapsed { warmup, measure } => format!(
                "measuring {:.0}/{:.0} s",
                (elapsed - warmup).as_secs_f64().min(measure.as_secs_f64()),
                measure.as_secs_f64()
            ),
            Until::Calls(total) => format!("{answered}/{total} calls"),
        };
        let line = format!(
            "  {phase}: {} calls/s; committed {committed}, aborted {aborted}, busy {busy}, failed {failed}",
            answered - last
        );
        last = answered;
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}
