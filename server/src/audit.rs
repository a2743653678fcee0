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

/// The audit log. Cloning shares it.
#[derive(Clone)]
pub struct AuditLog {
    out: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
    account_id: String,
    region: String,
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

/// The access key id a request claims (for logs: never the secret or the token).
pub fn claimed_access_key(req: &crate::domain::sigv4::HttpRequest<'_>) -> Option<String> {
    crate::domain::sigv4::Authorization::parse(req).ok().map(|a| a.access_key_id)
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
            Sink::File(path) => Some(Box::new(OpenOptions::new().create(true).append(true).open(path)?)),
        };
        Ok(Self {
            out: out.map(|o| Arc::new(Mutex::new(o))),
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

    /// Writes one event as a line, at `now`.
    pub fn record(&self, now: i64, event: Event<'_>) {
        let Some(out) = &self.out else { return };
        let mut record = json!({
            "eventVersion": "1.08",
            "eventTime": iso8601(now),
            "eventSource": event.source,
            "eventName": event.name,
            "awsRegion": self.region,
            "sourceIPAddress": event.source_ip.unwrap_or_else(|| "AWS Internal".into()),
            "userIdentity": self.identity(&event.actor),
            "requestParameters": event.request,
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
        let mut line = record.to_string();
        line.push('\n');
        if let Ok(mut out) = out.lock() {
            // An audit line that cannot be written is reported, not silently dropped.
            if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                tracing::error!(error = %e, "audit log write failed");
            }
        }
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
