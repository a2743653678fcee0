//! The audit trail: one JSON line per credential issuance, AssumeRole, control-plane change
//! and refusal, shaped like a CloudTrail record (eventTime, eventSource, eventName,
//! userIdentity, sourceIPAddress, requestParameters, responseElements, errorCode,
//! errorMessage, eventID). Secrets are never written: request parameters are the API's
//! requests (which carry none: secrets only travel in responses), and responses are
//! summarised by hand (an access key id and an expiration, never a secret or a token).
//!
//! State changes are audited or not made (fail closed, as Vault's audit devices are): the
//! request is written before the change commits ([`AuditLog::commit`], an event of type
//! `RolecallRequest`), and the outcome after it (the `AwsApiCall` event, with the same
//! eventID). Every event is written before the answer goes out, by one writer thread that
//! takes every line waiting and writes them with one write and one flush (group commit), so
//! that callers wait together rather than one lock and one flush per line.

use std::{
    fs::OpenOptions,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{
    domain::principal::{Principal, PrincipalKind},
    domain::{Error, Result, clock::iso8601, ids},
};

/// Where audit events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Off,
    Stdout,
    File(PathBuf),
}

impl Sink {
    /// `""`/`"none"`, `"stdout"`, or a file path (appended to).
    pub fn parse(text: &str) -> Self {
        match text {
            "" | "none" => Self::Off,
            "stdout" | "-" => Self::Stdout,
            path => Self::File(PathBuf::from(path)),
        }
    }
}

/// Refusals of requests that proved no one are recorded at most this many times a second
/// (of the server's clock); past it they are counted, and the count goes with the next one
/// recorded as `additionalEventData.unauthenticatedRefusalsDropped`. Anyone can send them,
/// so they must not be able to fill the disk or drown the events that matter.
pub const UNAUTHENTICATED_PER_SECOND: u32 = 100;

/// The longest line an event may take. An event past it has its requestParameters replaced
/// by a marker with their size and their first KiB, and its longest free-text fields cut.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// What a field cut to fit is cut to.
const CUT_BYTES: usize = 1024;

/// Lines waiting for the writer at most; past it, callers wait for room (they wait for
/// their line to be written in any case).
const BACKLOG: usize = 4096;

/// The most one write takes (a batch stops growing past it).
const BATCH_BYTES: usize = 1 << 20;

/// The audit log. Cloning shares it.
#[derive(Clone)]
pub struct AuditLog {
    out: Option<Arc<Output>>,
    account_id: String,
    region: String,
}

/// The writer thread's queue, and the budget of unauthenticated refusals for the current
/// second.
struct Output {
    lines: mpsc::Sender<Line>,
    budget: Mutex<Budget>,
}

struct Budget {
    second: i64,
    unauthenticated: u32,
    dropped: u64,
}

/// One line for the writer, and who waits to hear that it was written.
struct Line {
    text: String,
    written: oneshot::Sender<bool>,
}

impl Output {
    /// Starts the writer thread on `writer`; it ends when the last [`AuditLog`] is dropped.
    fn start(writer: Box<dyn Write + Send>) -> std::io::Result<Self> {
        let (lines, queue) = mpsc::channel(BACKLOG);
        std::thread::Builder::new()
            .name("rolecall-audit".into())
            .spawn(move || write_batches(queue, writer))?;
        Ok(Self { lines, budget: Mutex::new(Budget { second: i64::MIN, unauthenticated: 0, dropped: 0 }) })
    }
}

/// The writer: every line waiting goes out in one write and one flush, then each of their
/// callers hears whether it was written.
fn write_batches(mut queue: mpsc::Receiver<Line>, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    let mut waiting = Vec::new();
    let mut failing = false;
    while let Some(first) = queue.blocking_recv() {
        // A failed write may have left a line cut short: end it, so the next ones parse.
        if failing {
            batch.push(b'\n');
        }
        let mut next = Some(first);
        while let Some(Line { text, written }) = next {
            batch.extend_from_slice(text.as_bytes());
            waiting.push(written);
            next = if batch.len() < BATCH_BYTES { queue.try_recv().ok() } else { None };
        }
        let ok = match out.write_all(&batch).and_then(|()| out.flush()) {
            Ok(()) => {
                if failing {
                    tracing::warn!("the audit trail is written again");
                }
                failing = false;
                true
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "the audit trail cannot be written: state changes are refused until it can");
                }
                failing = true;
                false
            }
        };
        for written in waiting.drain(..) {
            let _ = written.send(ok);
        }
        batch.clear();
    }
}

/// Where an event stands to the change it records.
#[derive(Clone, Copy)]
enum Phase<'a> {
    /// The whole call, after the fact (reads, refusals, issuance).
    Call,
    /// A state change's request, before it commits.
    Request(&'a str),
    /// A state change's outcome, after it committed or failed.
    Outcome(&'a str),
}

/// A state change's request, written: its outcome goes with [`AuditLog::outcome`].
#[must_use]
pub struct Committed(Option<String>);

/// Who an event is about, as CloudTrail's userIdentity.
#[derive(Clone, Debug)]
pub enum Actor<'a> {
    Principal(&'a Principal),
    /// An unsigned control-plane call (auth.allow_unsigned): the account's operator.
    Operator,
    /// EC2 assuming an instance's role.
    Ec2,
    /// A request whose signature did not prove anyone.
    Unauthenticated {
        access_key_id: Option<String>,
    },
}

/// CloudTrail's eventSource of a service.
pub fn event_source(service: &str) -> &'static str {
    match service {
        "sts" => "sts.amazonaws.com",
        "iam" => "iam.amazonaws.com",
        "ec2" => "ec2.amazonaws.com",
        "s3" => "s3.amazonaws.com",
        _ => "rolecall",
    }
}

/// The access key id a request claims (for logs: never the secret or the token), cut to
/// 128 characters (AWS's key ids have 16 to 128).
pub fn claimed_access_key(req: &crate::domain::sigv4::HttpRequest<'_>) -> Option<String> {
    crate::domain::sigv4::Authorization::parse(req).ok().map(|a| a.access_key_id.chars().take(128).collect())
}

/// Whether an unauthenticated refusal at `now` may be recorded: the count of those dropped
/// since the last one recorded, or None (this one is dropped too).
fn unauthenticated_budget(out: &Output, now: i64) -> Option<u64> {
    let mut budget = out.budget.lock().ok()?;
    if budget.second != now {
        budget.second = now;
        budget.unauthenticated = 0;
    }
    if budget.unauthenticated >= UNAUTHENTICATED_PER_SECOND {
        budget.dropped += 1;
        return None;
    }
    budget.unauthenticated += 1;
    Some(std::mem::take(&mut budget.dropped))
}

/// A new audit file is readable by its owner only: it names who did what from where.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// An event past [`MAX_EVENT_BYTES`], made to fit: requestParameters become a marker with
/// their size and first KiB, and the free-text fields (the explanation of a refusal too) are
/// cut to a KiB.
fn cut_to_fit(mut record: Value) -> String {
    let parameters = record["requestParameters"].to_string();
    record["requestParameters"] = json!({
        "rolecallTruncated": { "bytes": parameters.len(), "prefix": prefix(&parameters) },
    });
    for field in ["/errorMessage", "/eventName", "/additionalEventData/decidedBy"] {
        if let Some(value) = record.pointer_mut(field)
            && let Some(text) = value.as_str()
            && text.len() > CUT_BYTES
        {
            *value = format!("{}…(cut)", prefix(text)).into();
        }
    }
    record.to_string()
}

/// The first [`CUT_BYTES`] of `text`, at a character boundary.
fn prefix(text: &str) -> &str {
    let mut end = text.len().min(CUT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One event.
pub struct Event<'a> {
    pub source: &'static str,
    pub name: &'a str,
    pub actor: Actor<'a>,
    pub source_ip: Option<String>,
    pub read_only: bool,
    pub request: Value,
    pub response: Value,
    pub error: Option<&'a Error>,
    /// The id the caller was answered with (`requestID`), where a door gave one.
    pub request_id: Option<String>,
}

impl AuditLog {
    /// Opens the sink (a file is created if absent, and appended to), and starts its writer.
    pub fn open(sink: &Sink, account_id: &str, region: &str) -> std::io::Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match sink {
            Sink::Off => None,
            Sink::Stdout => Some(Box::new(std::io::stdout())),
            Sink::File(path) => Some(Box::new(private_file().create(true).append(true).open(path)?)),
        };
        Ok(Self {
            out: out.map(Output::start).transpose()?.map(Arc::new),
            account_id: account_id.into(),
            region: region.into(),
        })
    }

    pub fn off() -> Self {
        Self { out: None, account_id: String::new(), region: String::new() }
    }

    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Records an event at `now`, before the answer goes out; an event that cannot be
    /// written is reported in the log, and the call it records stands (it changed nothing,
    /// or already did). A request that proved no one is recorded without its parameters,
    /// and only within [`UNAUTHENTICATED_PER_SECOND`].
    pub async fn record(&self, now: i64, event: Event<'_>) {
        self.write(now, event, Phase::Call).await;
    }

    /// Records a state change's request before it commits: unless this is written, the
    /// change must not be made (the error says so).
    pub async fn commit(&self, now: i64, event: Event<'_>) -> Result<Committed> {
        if !self.enabled() {
            return Ok(Committed(None));
        }
        let id = ids::uuid();
        match self.write(now, event, Phase::Request(&id)).await {
            true => Ok(Committed(Some(id))),
            false => {
                Err(Error::service_failure("the audit trail cannot be written, so the change was not made"))
            }
        }
    }

    /// Records the outcome of a change whose request was [`commit`](Self::commit)ted.
    pub async fn outcome(&self, now: i64, event: Event<'_>, committed: Committed) {
        if let Some(id) = &committed.0 {
            self.write(now, event, Phase::Outcome(id)).await;
        }
    }

    /// Writes one event as a line, and waits to hear whether it was written.
    async fn write(&self, now: i64, event: Event<'_>, phase: Phase<'_>) -> bool {
        let Some(out) = &self.out else { return true };
        let unauthenticated = matches!(event.actor, Actor::Unauthenticated { .. });
        let dropped = match unauthenticated {
            true => match unauthenticated_budget(out, now) {
                Some(dropped) => dropped,
                None => return true,
            },
            false => 0,
        };
        let request = if unauthenticated { Value::Null } else { event.request };
        let (id, kind) = match phase {
            Phase::Call => (ids::uuid(), "AwsApiCall"),
            Phase::Request(id) => (id.to_string(), "RolecallRequest"),
            Phase::Outcome(id) => (id.to_string(), "AwsApiCall"),
        };
        let mut record = json!({
            "eventVersion": "1.08",
            "eventTime": iso8601(now),
            "eventSource": event.source,
            "eventName": event.name,
            "awsRegion": self.region,
            "sourceIPAddress": event.source_ip.unwrap_or_else(|| "AWS Internal".into()),
            "userIdentity": self.identity(&event.actor),
            "requestParameters": request,
            "responseElements": event.response,
            "eventID": id,
            "requestID": event.request_id,
            "readOnly": event.read_only,
            "eventType": kind,
            "recipientAccountId": self.account_id,
        });
        if let Some(e) = event.error {
            record["errorCode"] = e.code.as_str().into();
            record["errorMessage"] = e.message.clone().into();
            // For a refusal of authorization: the policy and statement that decided.
            if let Some(why) = &e.explanation {
                record["additionalEventData"] = json!({ "decidedBy": why.as_ref() });
            }
        }
        if dropped > 0 {
            record["additionalEventData"]["unauthenticatedRefusalsDropped"] = dropped.into();
        }
        let mut text = record.to_string();
        if text.len() > MAX_EVENT_BYTES {
            text = cut_to_fit(record);
        }
        text.push('\n');
        let (written, heard) = oneshot::channel();
        if out.lines.send(Line { text, written }).await.is_err() {
            return false;
        }
        heard.await.unwrap_or(false)
    }

    fn identity(&self, actor: &Actor<'_>) -> Value {
        match actor {
            Actor::Principal(p) => {
                let (kind, extra) = match &p.kind {
                    PrincipalKind::User { user_name } => ("IAMUser", json!({ "userName": user_name })),
                    PrincipalKind::Root => ("Root", json!({})),
                    PrincipalKind::AssumedRole { role_arn, issued_at, .. } => (
                        "AssumedRole",
                        json!({ "sessionContext": {
                            "sessionIssuer": { "type": "Role", "arn": role_arn },
                            "attributes": { "creationDate": iso8601(*issued_at) },
                        }}),
                    ),
                };
                let mut v = json!({
                    "type": kind,
                    "principalId": p.user_id,
                    "arn": p.arn,
                    "accountId": p.account_id,
                    "accessKeyId": p.access_key_id,
                });
                if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                    m.extend(e);
                }
                v
            }
            Actor::Operator => json!({
                "type": "Root",
                "arn": format!("arn:aws:iam::{}:root", self.account_id),
                "accountId": self.account_id,
                "invokedBy": "rolecall operator (unsigned call)",
            }),
            Actor::Ec2 => json!({ "type": "AWSService", "invokedBy": "ec2.amazonaws.com" }),
            Actor::Unauthenticated { access_key_id } => json!({
                "type": "Unknown",
                "accessKeyId": access_key_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log into a shared buffer.
    fn log() -> (AuditLog, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Arc::new(Mutex::new(Vec::new()));
        (logging_to(Box::new(Shared(buffer.clone()))), buffer)
    }

    fn logging_to(writer: Box<dyn Write + Send>) -> AuditLog {
        AuditLog {
            out: Some(Arc::new(Output::start(writer).unwrap())),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    fn lines(buffer: &Mutex<Vec<u8>>) -> Vec<Value> {
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn event(actor: Actor<'_>, request: Value) -> Event<'_> {
        Event {
            source: "iam.amazonaws.com",
            name: "CreateUser",
            actor,
            source_ip: None,
            read_only: false,
            request,
            response: Value::Null,
            error: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn unauthenticated_refusals_are_bounded_per_second_and_the_dropped_are_counted() {
        let (log, buffer) = log();
        let nobody = || Actor::Unauthenticated { access_key_id: None };
        for _ in 0..150 {
            log.record(1_000, event(nobody(), json!({ "UserName": "x" }))).await;
        }
        // The operator's events are never dropped.
        log.record(1_000, event(Actor::Operator, json!({ "UserName": "kept" }))).await;
        log.record(1_001, event(nobody(), Value::Null)).await;
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 102);
        assert!(lines[..100].iter().all(|l| l["requestParameters"].is_null()));
        assert_eq!(lines[100]["requestParameters"]["UserName"], "kept");
        assert_eq!(lines[101]["additionalEventData"]["unauthenticatedRefusalsDropped"], 50);
    }

    #[tokio::test]
    async fn an_event_past_the_limit_is_cut_with_a_marker() {
        let (log, buffer) = log();
        let large = "é".repeat(MAX_EVENT_BYTES);
        let error = Error::new(crate::domain::ErrorCode::ValidationError, large.clone());
        let mut e = event(Actor::Operator, json!({ "PolicyDocument": large }));
        e.error = Some(&error);
        log.record(1_000, e).await;
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(text.len() <= MAX_EVENT_BYTES, "{} bytes", text.len());
        let line: Value = serde_json::from_str(&text).unwrap();
        let marker = &line["requestParameters"]["rolecallTruncated"];
        assert!(marker["bytes"].as_u64().unwrap() > MAX_EVENT_BYTES as u64, "{marker}");
        assert!(marker["prefix"].as_str().unwrap().starts_with("{\"PolicyDocument\":\"éé"));
        assert!(line["errorMessage"].as_str().unwrap().ends_with("…(cut)"));
    }

    #[tokio::test]
    async fn a_change_is_committed_only_once_its_request_is_written() {
        let (log, buffer) = log();
        let committed = log.commit(1_000, event(Actor::Operator, json!({ "UserName": "a" }))).await.unwrap();
        let failed = Error::new(crate::domain::ErrorCode::EntityAlreadyExists, "exists");
        let mut outcome = event(Actor::Operator, json!({ "UserName": "a" }));
        outcome.error = Some(&failed);
        log.outcome(1_000, outcome, committed).await;
        let lines = lines(&buffer);
        assert_eq!(lines[0]["eventType"], "RolecallRequest");
        assert!(lines[0]["errorCode"].is_null());
        assert_eq!(lines[1]["eventType"], "AwsApiCall");
        assert_eq!(lines[1]["errorCode"], "EntityAlreadyExists");
        assert_eq!(lines[0]["eventID"], lines[1]["eventID"]);

        // An output that takes nothing: no commit, and nothing else is held up by it.
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let full = logging_to(Box::new(Full));
        let refused = full.commit(1_000, event(Actor::Operator, Value::Null)).await;
        assert_eq!(refused.err().map(|e| e.code), Some(crate::domain::ErrorCode::ServiceFailure));
        full.record(1_000, event(Actor::Operator, Value::Null)).await;
    }

    #[tokio::test]
    async fn callers_waiting_together_share_writes() {
        #[derive(Clone, Default)]
        struct Counting(Arc<Mutex<(usize, usize)>>);
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.0 += 1;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.1 += 1;
                Ok(())
            }
        }
        let counting = Counting::default();
        let log = logging_to(Box::new(counting.clone()));
        let calls: Vec<_> = (0..1000)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.commit(1_000, event(Actor::Operator, json!({ "n": n }))).await.is_ok()
                })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap());
        }
        let (writes, flushes) = *counting.0.lock().unwrap();
        assert!(flushes < 1000, "{flushes} flushes for 1000 lines waited on together");
        assert_eq!(writes, flushes, "one write per batch");
    }
}
