//! The goose side: each goose user is the agent of a slice of the fleet. Every gRPC call is
//! recorded into goose (`record_custom_request_duration`, microseconds) and into an
//! hdrhistogram for exact percentiles.
//!
//! - Closed loop: a user sends its next request as soon as the last one answered.
//! - Open loop: a user has a schedule of intended send times at its share of the target
//!   rate; latency is measured from the intended time, and a slot is never skipped when the
//!   server is slow (a late request is sent at once and charged its lateness).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use goose::prelude::*;
use hdrhistogram::Histogram;
use rolecall_api::{
    self as pb, instance_metadata_client::InstanceMetadataClient, loadtest::baseline_client::BaselineClient,
};
use tonic::transport::Channel;

use crate::fleet::{Member, ROLES};

/// What a pass does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// The baseline server, same messages, same harness.
    Baseline,
    /// Steady state: credentials cached on the server.
    Fetch,
    /// Every fetch issues new credentials.
    Refresh,
    /// The whole fleet crosses its rotation point within one second.
    Storm,
    /// Roles replaced on running instances while the fleet fetches.
    Churn,
    /// The HTTP baseline: bare hyper answering IMDSv2's requests with the same bytes.
    #[serde(rename = "imds-baseline")]
    ImdsBaseline,
    /// IMDSv2 over HTTP as the AWS SDKs use it (credentials cached on the server).
    Imds,
}

impl Scenario {
    /// Whether the pass speaks HTTP to the metadata service rather than gRPC.
    pub fn is_http(self) -> bool {
        matches!(self, Scenario::ImdsBaseline | Scenario::Imds)
    }

    /// Whether this is a baseline (a bare server of the load tester's own).
    pub fn is_baseline(self) -> bool {
        matches!(self, Scenario::Baseline | Scenario::ImdsBaseline)
    }

    /// The name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Fetch => "fetch",
            Scenario::Refresh => "refresh",
            Scenario::Storm => "storm",
            Scenario::Churn => "churn",
            Scenario::ImdsBaseline => "imds-baseline",
            Scenario::Imds => "imds",
        }
    }

    pub const ALL: [Scenario; 7] = [
        Scenario::Baseline,
        Scenario::Fetch,
        Scenario::Refresh,
        Scenario::Storm,
        Scenario::Churn,
        Scenario::ImdsBaseline,
        Scenario::Imds,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Load {
    Closed,
    Open { rate: f64 },
}

/// What one execution of goose shares with its users.
pub struct Run {
    pub scenario: Scenario,
    pub load: Load,
    slices: Vec<Vec<Member>>,
    channels: Vec<Channel>,
    /// Latencies in microseconds, merged from every user at its end.
    pub latencies: Mutex<Histogram<u64>>,
    /// Storm only: requests sent before the storm window (which opens where the server starts
    /// prefetching, ahead of the rotation point), and within it.
    pub steady: Mutex<Histogram<u64>>,
    pub storm: Mutex<Histogram<u64>>,
    storm_window: Option<(Instant, Instant)>,
    churn: Option<Arc<ChurnBook>>,
    pub requests: AtomicU64,
    /// Requests sent on each channel (so to each replica).
    by_channel: Vec<AtomicU64>,
    pub errors: AtomicU64,
    /// Storm: instances whose credentials changed within the storm window / before it.
    pub rotated: AtomicU64,
    pub rotated_early: AtomicU64,
    /// Churn: fetches sent after a Replace answered that still saw the old role.
    pub violations: AtomicU64,
    /// Churn: role listed, then replaced before its credentials were fetched (not a fault).
    pub raced: AtomicU64,
    /// Churn: ListSecurityCredentials calls (counted in `requests`, not in the histogram).
    pub lists: AtomicU64,
    /// HTTP passes: token PUTs and role-name GETs (counted in `requests` and the histogram).
    pub token_puts: AtomicU64,
    pub role_gets: AtomicU64,
    first_send_ns: AtomicU64,
    last_done_ns: AtomicU64,
    epoch: Instant,
}

/// Per instance: the role its last answered Replace gave it, and how many Replaces were
/// started and answered. A fetch sent after Replace k answered must see k's role, unless
/// Replace k+1 had started by the time the fetch answered (then the newer role is right too).
pub struct ChurnBook {
    role: Vec<AtomicU8>,
    started: Vec<AtomicU64>,
    answered: Vec<AtomicU64>,
    pub replacements: AtomicU64,
}

static CURRENT: Mutex<Option<Arc<Run>>> = Mutex::new(None);

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant figures: constant bounds that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn merge(into: &Mutex<Histogram<u64>>, from: &Histogram<u64>) {
    if let Ok(mut h) = into.lock() {
        let _ = h.add(from);
    }
}

/// How many users a pass of `members` instances runs: no more than there are instances.
fn users_for(users: usize, members: usize) -> usize {
    users.max(1).min(members.max(1))
}

/// The channel that serves fleet member `n` in a pass: members are dealt to the users in
/// turn, and user `u` keeps channel `u % channels`. The warm-up routes each member the same
/// way, so that every replica caches the instances it will serve.
pub fn channel_of(n: usize, users: usize, members: usize, channels: usize) -> usize {
    (n % users_for(users, members)) % channels.max(1)
}

// === impl Run ===

impl Run {
    pub fn new(
        scenario: Scenario,
        load: Load,
        members: Vec<Member>,
        users: usize,
        channels: Vec<Channel>,
        storm_window: Option<(Instant, Instant)>,
        churn: Option<Arc<ChurnBook>>,
    ) -> Arc<Self> {
        let users = users_for(users, members.len());
        let mut slices: Vec<Vec<Member>> = (0..users).map(|_| Vec::new()).collect();
        for (n, m) in members.into_iter().enumerate() {
            slices[n % users].push(m);
        }
        let by_channel = (0..channels.len()).map(|_| AtomicU64::new(0)).collect();
        Arc::new(Self {
            scenario,
            load,
            slices,
            channels,
            latencies: Mutex::new(histogram()),
            steady: Mutex::new(histogram()),
            storm: Mutex::new(histogram()),
            storm_window,
            churn,
            requests: AtomicU64::new(0),
            by_channel,
            errors: AtomicU64::new(0),
            rotated: AtomicU64::new(0),
            rotated_early: AtomicU64::new(0),
            violations: AtomicU64::new(0),
            raced: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            token_puts: AtomicU64::new(0),
            role_gets: AtomicU64::new(0),
            first_send_ns: AtomicU64::new(u64::MAX),
            last_done_ns: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// The goose users this run needs (one per slice).
    pub fn users(&self) -> usize {
        self.slices.len()
    }

    /// Requests sent on each channel so far.
    pub fn requests_by_channel(&self) -> Vec<u64> {
        self.by_channel.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Makes this the run goose users attach to.
    pub fn install(self: &Arc<Self>) {
        if let Ok(mut current) = CURRENT.lock() {
            *current = Some(self.clone());
        }
    }

    /// Churn's bookkeeping, if this is a churn run.
    pub fn churn_book(&self) -> Option<Arc<ChurnBook>> {
        self.churn.clone()
    }

    /// Seconds between the first request sent and the last answered.
    pub fn busy_seconds(&self) -> f64 {
        let first = self.first_send_ns.load(Ordering::Relaxed);
        let last = self.last_done_ns.load(Ordering::Relaxed);
        if first == u64::MAX || last <= first { 0.0 } else { (last - first) as f64 / 1e9 }
    }

    fn since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// A request intended at `intended` answered at `done`: the busy window covers it.
    pub(crate) fn busy_between(&self, intended: Instant, done: Instant) {
        self.first_send_ns.fetch_min(self.since_epoch(intended), Ordering::Relaxed);
        self.last_done_ns.fetch_max(self.since_epoch(done), Ordering::Relaxed);
    }
}

// === impl ChurnBook ===

impl ChurnBook {
    pub fn new(instances: usize) -> Arc<Self> {
        Arc::new(Self {
            role: (0..instances).map(|_| AtomicU8::new(0)).collect(),
            started: (0..instances).map(|_| AtomicU64::new(0)).collect(),
            answered: (0..instances).map(|_| AtomicU64::new(0)).collect(),
            replacements: AtomicU64::new(0),
        })
    }

    /// A Replace of instance `index` is about to be sent.
    pub fn replacing(&self, index: usize) {
        self.started[index].fetch_add(1, Ordering::AcqRel);
    }

    /// The Replace of instance `index` answered: it now has role `role`.
    pub fn replaced(&self, index: usize, role: u8) {
        self.role[index].store(role, Ordering::Release);
        self.answered[index].fetch_add(1, Ordering::AcqRel);
        self.replacements.fetch_add(1, Ordering::Relaxed);
    }

    pub fn current_role(&self, index: usize) -> u8 {
        self.role[index].load(Ordering::Acquire)
    }

    /// Before a fetch is sent: (Replaces answered so far, the role they left).
    fn before_fetch(&self, index: usize) -> (u64, u8) {
        let answered = self.answered[index].load(Ordering::Acquire);
        (answered, self.role[index].load(Ordering::Acquire))
    }

    /// After the fetch answered with `seen`: whether it missed a Replace that had answered
    /// before it was sent (and no newer Replace had started since).
    fn missed(&self, index: usize, before: (u64, u8), seen: u8) -> bool {
        let (answered, role) = before;
        answered > 0 && seen != role && self.started[index].load(Ordering::Acquire) == answered
    }
}

/// The gRPC client a user speaks with.
#[derive(Clone)]
enum Client {
    Rolecall(InstanceMetadataClient<Channel>),
    Baseline(BaselineClient<Channel>),
}

/// Each goose user's own state.
#[derive(Clone)]
pub(crate) struct Agent {
    pub(crate) run: Arc<Run>,
    pub(crate) members: Vec<Member>,
    rotated: Vec<bool>,
    pub(crate) next: usize,
    /// Which of the run's channels this agent sends on.
    channel: usize,
    client: Client,
    pub(crate) latencies: Histogram<u64>,
    steady: Histogram<u64>,
    storm: Histogram<u64>,
    /// Open loop: the next intended send time and the interval between sends.
    next_send: Option<Instant>,
    interval: Duration,
    /// HTTP passes: each member's IMDSv2 token and where its agent is in the SDK's sequence.
    pub(crate) imds: crate::imds::Session,
}

/// The goose scenario of a run: claim a slice, fetch in a loop, hand the figures back.
pub fn scenario(name: &str) -> Scenario_ {
    goose::prelude::Scenario::new(name)
        .register_transaction(transaction!(claim_slice).set_on_start())
        .register_transaction(transaction!(agent_loop))
        .register_transaction(transaction!(hand_back).set_on_stop())
}

/// goose's scenario type (named apart from our `Scenario`).
pub type Scenario_ = goose::prelude::Scenario;

/// A transaction's failure for want of `what`.
pub(crate) fn missing(what: &str) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(what.to_string()))
}

async fn claim_slice(user: &mut GooseUser) -> TransactionResult {
    let run = CURRENT.lock().ok().and_then(|c| c.clone()).ok_or_else(|| missing("no run installed"))?;
    let slot = user.weighted_users_index % run.slices.len().max(1);
    let members = run.slices.get(slot).cloned().unwrap_or_default();
    let channel_index = slot % run.channels.len();
    let channel = run.channels[channel_index].clone();
    let client = match run.scenario {
        Scenario::Baseline => Client::Baseline(BaselineClient::new(channel)),
        _ => Client::Rolecall(InstanceMetadataClient::new(channel)),
    };
    let (next_send, interval) = match run.load {
        Load::Closed => (None, Duration::ZERO),
        // This user's share of the rate, with its first slot staggered across users.
        Load::Open { rate } => {
            let interval = Duration::from_secs_f64(run.slices.len() as f64 / rate.max(0.001));
            let offset = interval.mul_f64(slot as f64 / run.slices.len() as f64);
            (Some(Instant::now() + offset), interval)
        }
    };
    let rotated = vec![false; members.len()];
    let imds = crate::imds::Session::new(members.len());
    user.set_session_data(Agent {
        run,
        members,
        rotated,
        next: 0,
        channel: channel_index,
        client,
        latencies: histogram(),
        steady: histogram(),
        storm: histogram(),
        next_send,
        interval,
        imds,
    });
    Ok(())
}

/// One request of the agent's loop (two in churn: list the role, then fetch it).
async fn agent_loop(user: &mut GooseUser) -> TransactionResult {
    let agent = user.get_session_data_mut::<Agent>().ok_or_else(|| missing("no agent"))?;
    if agent.members.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    // The intended send time: now (closed loop) or the schedule's next slot (open loop).
    let intended = match agent.next_send {
        Some(at) => {
            agent.next_send = Some(at + agent.interval);
            tokio::time::sleep_until(at.into()).await;
            at
        }
        None => Instant::now(),
    };
    if agent.run.scenario.is_http() {
        return crate::imds::step(user, intended).await;
    }
    let index = agent.next;
    agent.next = (agent.next + 1) % agent.members.len();
    let member = agent.members[index].clone();
    let run = agent.run.clone();
    let mut client = agent.client.clone();
    let mut expected_role = ROLES[0].to_string();
    let mut outcomes: Vec<(&'static str, Result<(), tonic::Status>, Duration)> = Vec::new();

    if run.scenario == Scenario::Churn
        && let (Client::Rolecall(imds), Some(book)) = (&mut client, &run.churn)
    {
        let before = book.before_fetch(member.index);
        let sent = Instant::now();
        let listed = imds
            .list_security_credentials(pb::ListSecurityCredentialsRequest {
                caller: Some(pb::InstanceCaller::token(member.token.clone())),
            })
            .await;
        let took = sent.elapsed();
        run.lists.fetch_add(1, Ordering::Relaxed);
        match listed {
            Ok(r) => {
                let role = r.into_inner().role_names.into_iter().next().unwrap_or_default();
                let seen = u8::from(role == ROLES[1]);
                if book.missed(member.index, before, seen) {
                    run.violations.fetch_add(1, Ordering::Relaxed);
                }
                expected_role = role;
                outcomes.push(("ListSecurityCredentials", Ok(()), took));
            }
            Err(s) => outcomes.push(("ListSecurityCredentials", Err(s), took)),
        }
    }

    let request = pb::GetSecurityCredentialsRequest {
        caller: Some(pb::InstanceCaller::token(member.token.clone())),
        role_name: expected_role,
    };
    let sent = Instant::now();
    let answer = match &mut client {
        Client::Rolecall(imds) => imds.get_security_credentials(request).await,
        Client::Baseline(b) => b.get_security_credentials(request).await,
    };
    let done = Instant::now();
    let latency = done.saturating_duration_since(intended);
    let result = match answer {
        Ok(r) => {
            let creds = r.into_inner();
            if run.scenario == Scenario::Storm
                && let Some((window_opens, _)) = run.storm_window
                && !member.warm_key.is_empty()
                && creds.access_key_id != member.warm_key
            {
                // By answer time: a request sent just before the window opens may be
                // served just after, rightly with new credentials.
                if done >= window_opens {
                    agent.rotated[index] = true;
                } else {
                    run.rotated_early.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }
        Err(s) if run.scenario == Scenario::Churn && s.code() == tonic::Code::NotFound => {
            // Replaced between the listing and the fetch: the agent lists again next time.
            run.raced.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(s) => Err(s),
    };
    outcomes.push(("GetSecurityCredentials", result, latency));

    let micros = latency.as_micros() as u64;
    let _ = agent.latencies.record(micros.max(1));
    if let Some((window_opens, end)) = run.storm_window {
        if sent < window_opens {
            let _ = agent.steady.record(micros.max(1));
        } else if sent < end {
            let _ = agent.storm.record(micros.max(1));
        }
    }
    run.busy_between(intended, done);

    let channel = agent.channel;
    for (name, result, took) in outcomes {
        run.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = run.by_channel.get(channel) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) => user.record_custom_request_duration("gRPC", name, took, true, Some(0), None).await?,
            Err(status) => {
                run.errors.fetch_add(1, Ordering::Relaxed);
                let code = status.code() as u16;
                user.record_custom_request_duration(
                    "gRPC",
                    name,
                    took,
                    false,
                    Some(code),
                    Some(status.message()),
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn hand_back(user: &mut GooseUser) -> TransactionResult {
    if let Some(agent) = user.get_session_data::<Agent>() {
        merge(&agent.run.latencies, &agent.latencies);
        merge(&agent.run.steady, &agent.steady);
        merge(&agent.run.storm, &agent.storm);
        let rotated = agent.rotated.iter().filter(|r| **r).count() as u64;
        agent.run.rotated.fetch_add(rotated, Ordering::Relaxed);
    }
    Ok(())
}
