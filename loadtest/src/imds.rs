//! The HTTP side of the harness: a goose user acting as the AWS SDKs' IMDSv2 credential
//! provider for each instance of its slice. For an instance it has no token for, it PUTs
//! one (TTL 6 hours, reused until then); then, for each refresh, it GETs the role name and
//! then that role's credentials, as botocore and aws-sdk-rust do. Each goose transaction is
//! one of those requests, so a closed loop sends the next as soon as one answers and an open
//! loop schedules every request.
//!
//! Requests go through goose's own HTTP client, with a fixed name per kind of request: the
//! path carries the instance id (path-prefix identity), and goose names a request by its
//! path unless told otherwise, which would make one metric per instance.

use std::{sync::atomic::Ordering, time::Instant};

use goose::prelude::*;

use crate::{
    fleet::ROLES,
    harness::{Agent, missing},
};

/// The token TTL the SDKs ask for (21,600 s, the maximum IMDS allows).
const TOKEN_TTL: &str = "21600";

/// Where an agent is in the SDK's sequence, with each member's token.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    tokens: Vec<Option<String>>,
    /// The current member's role name was fetched: its credentials come next.
    listed: bool,
}

impl Session {
    pub(crate) fn new(members: usize) -> Self {
        Self { tokens: vec![None; members], listed: false }
    }
}

/// The three requests, by their fixed goose names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Token,
    RoleName,
    Credentials,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Token => "PUT /latest/api/token",
            Step::RoleName => "GET /latest/meta-data/iam/security-credentials/",
            Step::Credentials => "GET /latest/meta-data/iam/security-credentials/{role}",
        }
    }

    fn path(self, instance_id: &str) -> String {
        match self {
            Step::Token => format!("/{instance_id}/latest/api/token"),
            Step::RoleName => format!("/{instance_id}/latest/meta-data/iam/security-credentials/"),
            Step::Credentials => {
                format!("/{instance_id}/latest/meta-data/iam/security-credentials/{}", ROLES[0])
            }
        }
    }

    /// Whether `body` is the answer this step expects.
    fn answered(self, body: &str) -> bool {
        match self {
            Step::Token => !body.is_empty(),
            Step::RoleName => body == ROLES[0],
            Step::Credentials => {
                body.starts_with("{\"Code\":\"Success\"") && body.contains("\"AccessKeyId\":\"ASIA")
            }
        }
    }
}

/// Sends the agent's next request, intended at `intended`, and records it.
pub(crate) async fn step(user: &mut GooseUser, intended: Instant) -> TransactionResult {
    let agent = user.get_session_data::<Agent>().ok_or_else(|| missing("no agent"))?;
    let index = agent.next;
    let member = agent.members.get(index).ok_or_else(|| missing("no member"))?;
    let token = agent.imds.tokens.get(index).cloned().flatten();
    let step = match (&token, agent.imds.listed) {
        (None, _) => Step::Token,
        (Some(_), false) => Step::RoleName,
        (Some(_), true) => Step::Credentials,
    };
    let path = step.path(&member.instance_id);
    let run = agent.run.clone();
    let builder = match (step, token) {
        (Step::Token, _) => user
            .get_request_builder(&GooseMethod::Put, &path)?
            .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL),
        (_, Some(token)) => {
            user.get_request_builder(&GooseMethod::Get, &path)?.header("x-aws-ec2-metadata-token", token)
        }
        (_, None) => return Err(missing("a GET without a token")),
    };
    let method = if step == Step::Token { GooseMethod::Put } else { GooseMethod::Get };
    let request = GooseRequest::builder()
        .method(method)
        .path(path.as_str())
        .name(step.name())
        .set_request_builder(builder)
        .build();
    let mut answer = user.request(request).await?;
    // The body is read in full, as a client must to reuse the connection.
    let body = match answer.response {
        Ok(response) if response.status().is_success() => response.text().await.ok(),
        _ => None,
    };
    let done = Instant::now();
    let ok = body.as_deref().is_some_and(|b| step.answered(b));
    if !ok {
        // The request was sent and answered: goose saw a 2xx, but the body is wrong.
        if answer.request.success {
            let detail = format!("{}: unexpected answer", step.name());
            // It answers Err(RequestFailed) once the failure is recorded: that is the point.
            let _ = user.set_failure(&detail, &mut answer.request, None, None);
        }
        run.errors.fetch_add(1, Ordering::Relaxed);
    }
    run.requests.fetch_add(1, Ordering::Relaxed);
    match step {
        Step::Token => run.token_puts.fetch_add(1, Ordering::Relaxed),
        Step::RoleName => run.role_gets.fetch_add(1, Ordering::Relaxed),
        Step::Credentials => 0,
    };
    run.busy_between(intended, done);

    let agent = user.get_session_data_mut::<Agent>().ok_or_else(|| missing("no agent"))?;
    let micros = done.saturating_duration_since(intended).as_micros() as u64;
    let _ = agent.latencies.record(micros.max(1));
    let members = agent.members.len();
    let session = &mut agent.imds;
    match (step, ok) {
        (Step::Token, true) => session.tokens[index] = body,
        (Step::RoleName, true) => session.listed = true,
        // A refusal of a GET may mean the token expired: the SDKs fetch a new one.
        (Step::RoleName | Step::Credentials, false) => {
            session.tokens[index] = None;
            session.listed = false;
        }
        (Step::Credentials, true) | (Step::Token, false) => {}
    }
    if step == Step::Credentials {
        session.listed = false;
        agent.next = (index + 1) % members.max(1);
    }
    Ok(())
}
