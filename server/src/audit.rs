//! The audit trail: one JSON line per credential issuance, AssumeRole, control-plane change
//! and refusal, shaped like a CloudTrail record (eventTime, eventSource, eventName,
//! userIdentity, sourceIPAddress, requestParameters, responseElements, errorCode,
//! errorMessage, eventID). Secrets are never written: request parameters are the API's
//! requests (which carry none: secrets only travel in responses), and responses are
//! summarised by hand (an access key id and an expiration, never a secret or a token).

use std::{
    fs::OpenOptions,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

use crate::{
    domain::{Error, clock::iso8601, ids},
    sts::{Principal, PrincipalKind},
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

/// The audit log. Cloning shares it.
#[derive(Clone)]
pub struct AuditLog {
    out: Option<Arc<Mutex<Output>>>,
    account_id: String,
    region: String,
}

/// The sink, and the budget of unauthenticated refusals for the current second.
struct Output {
    writer: Box<dyn Write + Send>,
    second: i64,
    unauthenticated: u32,
    dropped: u64,
}

impl Output {
    fn new(writer: Box<dyn Write + Send>) -> Self {
        Self { writer, second: i64::MIN, unauthenticated: 0, dropped: 0 }
    }
}

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

/// A new audit file is readable by its owner only: it names who did what from where.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// An event past [`MAX_EVENT_BYTES`], made to fit: requestParameters become a marker with
/// their size and first KiB, and the free-text fields are cut to a KiB.
fn cut_to_fit(mut record: Value) -> String {
    let parameters = record["requestParameters"].to_string();
    record["requestParameters"] = json!({
        "rolecallTruncated": { "bytes": parameters.len(), "prefix": prefix(&parameters) },
    });
    for field in ["errorMessage", "eventName"] {
        if let Some(text) = record[field].as_str()
            && text.len() > CUT_BYTES
        {
            record[field] = format!("{}…(cut)", prefix(text)).into();
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
}

impl AuditLog {
    /// Opens the sink (a file is created if absent, and appended to).
    pub fn open(sink: &Sink, account_id: &str, region: &str) -> std::io::Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match sink {
            Sink::Off => None,
            Sink::Stdout => Some(Box::new(std::io::stdout())),
            Sink::File(path) => Some(Box::new(private_file().create(true).append(true).open(path)?)),
        };
        Ok(Self {
            out: out.map(|o| Arc::new(Mutex::new(Output::new(o)))),
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

    /// Writes one event as a line, at `now`. A request that proved no one is recorded
    /// without its parameters, and only within [`UNAUTHENTICATED_PER_SECOND`].
    pub fn record(&self, now: i64, event: Event<'_>) {
        let Some(out) = &self.out else { return };
        let unauthenticated = matches!(event.actor, Actor::Unauthenticated { .. });
        let dropped = match unauthenticated {
            true => match self.unauthenticated_budget(out, now) {
                Some(dropped) => dropped,
                None => return,
            },
            false => 0,
        };
        let request = if unauthenticated { Value::Null } else { event.request };
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
            "eventID": ids::uuid(),
            "readOnly": event.read_only,
            "eventType": "AwsApiCall",
            "recipientAccountId": self.account_id,
        });
        if let Some(e) = event.error {
            record["errorCode"] = e.code.as_str().into();
            record["errorMessage"] = e.message.clone().into();
        }
        if dropped > 0 {
            record["additionalEventData"] = json!({ "unauthenticatedRefusalsDropped": dropped });
        }
        let mut line = record.to_string();
        if line.len() > MAX_EVENT_BYTES {
            line = cut_to_fit(record);
        }
        line.push('\n');
        if let Ok(mut out) = out.lock() {
            // An audit line that cannot be written is reported, not silently dropped.
            if let Err(e) = out.writer.write_all(line.as_bytes()).and_then(|()| out.writer.flush()) {
                tracing::error!(error = %e, "audit log write failed");
            }
        }
    }

    /// Whether an unauthenticated refusal at `now` may be recorded: the count of those
    /// dropped since the last one recorded, or None (this one is dropped too).
    fn unauthenticated_budget(&self, out: &Mutex<Output>, now: i64) -> Option<u64> {
        let mut out = out.lock().ok()?;
        if out.second != now {
            out.second = now;
            out.unauthenticated = 0;
        }
        if out.unauthenticated >= UNAUTHENTICATED_PER_SECOND {
            out.dropped += 1;
            return None;
        }
        out.unauthenticated += 1;
        Some(std::mem::take(&mut out.dropped))
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
        let output = Output::new(Box::new(Shared(buffer.clone())));
        let log = AuditLog {
            out: Some(Arc::new(Mutex::new(output))),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        };
        (log, buffer)
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
        }
    }

    #[test]
    fn unauthenticated_refusals_are_bounded_per_second_and_the_dropped_are_counted() {
        let (log, buffer) = log();
        let nobody = || Actor::Unauthenticated { access_key_id: None };
        for _ in 0..150 {
            log.record(1_000, event(nobody(), json!({ "UserName": "x" })));
        }
        // The operator's events are never dropped.
        log.record(1_000, event(Actor::Operator, json!({ "UserName": "kept" })));
        log.record(1_001, event(nobody(), Value::Null));
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 102);
        assert!(lines[..100].iter().all(|l| l["requestParameters"].is_null()));
        assert_eq!(lines[100]["requestParameters"]["UserName"], "kept");
        assert_eq!(lines[101]["additionalEventData"]["unauthenticatedRefusalsDropped"], 50);
    }

    #[test]
    fn an_event_past_the_limit_is_cut_with_a_marker() {
        let (log, buffer) = log();
        let large = "é".repeat(MAX_EVENT_BYTES);
        let error = Error::new(crate::domain::ErrorCode::ValidationError, large.clone());
        let mut e = event(Actor::Operator, json!({ "PolicyDocument": large }));
        e.error = Some(&error);
        log.record(1_000, e);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(text.len() <= MAX_EVENT_BYTES, "{} bytes", text.len());
        let line: Value = serde_json::from_str(&text).unwrap();
        let marker = &line["requestParameters"]["rolecallTruncated"];
        assert!(marker["bytes"].as_u64().unwrap() > MAX_EVENT_BYTES as u64, "{marker}");
        assert!(marker["prefix"].as_str().unwrap().starts_with("{\"PolicyDocument\":\"éé"));
        assert!(line["errorMessage"].as_str().unwrap().ends_with("…(cut)"));
    }
}
