//! `rolecall iam ACTION --flag VALUE …`: every Iam RPC, named and flagged as the aws CLI
//! names it (`list-groups-for-user --user-name bob`). Each action's flags are its request's
//! fields, read from the API's descriptor (their help is the proto's comments), and the values
//! are read into the request by the Query API's own decoder, so that the command line and a
//! Query request mean the same thing by the same words.
//!
//! As in the aws CLI: a value `file://PATH` is the file's text; a list takes several values
//! (`--action-names s3:ListBucket s3:GetObject`); a list of structures takes `Key=a,Value=b`
//! or JSON per member; a boolean is a bare flag (`--only-attached`); and a list call is
//! followed to its last page unless `--max-items` or `--marker` is given.

use std::{collections::HashMap, sync::OnceLock};

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches, Subcommand, parser::ValueSource};
use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use rolecall_api::{self as pb, iam_client::IamClient};
use rolecall_server::http::{
    form::Params,
    query::{QueryInput, request_of},
};
use serde_json::Value;

use super::{ClientArgs, environment_credentials, failure, signing};

/// One IAM call as the command line gave it: the action and its Query parameters.
pub struct IamCommand {
    action: &'static str,
    params: Vec<(String, String)>,
}

/// How a request field is given on the command line.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// One value.
    Scalar,
    /// A bare flag: true when present.
    Flag,
    /// Values, each a member.
    List,
    /// Members given as `Key=a,Value=b` or JSON.
    Structures,
}

/// A request field: its name in AWS's PascalCase, its flag, its kind, its help, and for a
/// list of structures the structure's message.
struct Field {
    name: String,
    flag: String,
    value_name: String,
    kind: Kind,
    help: String,
    element: String,
}

macro_rules! action_names {
    ($($name:ident => $method:ident($req:ident) -> $answer:ident;)*) => {
        /// Every Iam action, with its request message's name.
        const ACTIONS: &[(&str, &str)] = &[$((stringify!($name), stringify!($req))),*];
    };
}
rolecall_api::iam_rpcs!(action_names);

/// "ListGroupsForUser" → "list-groups-for-user"; "policy_arn" → "policy-arn".
fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(if c == '_' { '-' } else { c.to_ascii_lowercase() });
    }
    out
}

/// "policy_arn" → "PolicyArn", as the messages are (de)serialized.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The `rolecall.v1` messages by name, with their fields' comments by (message, field) index.
struct Descriptors {
    messages: HashMap<String, DescriptorProto>,
    comments: HashMap<(String, usize), String>,
}

fn descriptors() -> &'static Descriptors {
    static DESCRIPTORS: OnceLock<Descriptors> = OnceLock::new();
    DESCRIPTORS.get_or_init(|| {
        let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap_or_default();
        let mut messages = HashMap::new();
        let mut comments = HashMap::new();
        for file in set.file.into_iter().filter(|f| f.package() == "rolecall.v1") {
            for location in file.source_code_info.iter().flat_map(|info| &info.location) {
                // [4, message, 2, field]: a top-level message's field.
                if let [4, message, 2, field] = location.path[..] {
                    let (Some(m), Some(text)) =
                        (file.message_type.get(message as usize), &location.leading_comments)
                    else {
                        continue;
                    };
                    let help = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    comments.insert((m.name().to_string(), field as usize), help);
                }
            }
            for m in file.message_type {
                messages.insert(m.name().to_string(), m);
            }
        }
        Descriptors { messages, comments }
    })
}

/// The fields of the request message `request`.
fn fields(request: &str) -> Vec<Field> {
    let d = descriptors();
    let Some(message) = d.messages.get(request) else { return vec![] };
    message
        .field
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let repeated = f.label() == Label::Repeated;
            let kind = match (repeated, f.r#type()) {
                (true, Type::Message) => Kind::Structures,
                (true, _) => Kind::List,
                (false, Type::Bool) => Kind::Flag,
                _ => Kind::Scalar,
            };
            Field {
                value_name: f.name().to_ascii_uppercase(),
                name: pascal(f.name()),
                flag: kebab(f.name()),
                kind,
                help: d.comments.get(&(request.to_string(), i)).cloned().unwrap_or_default(),
                element: f.type_name().rsplit('.').next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn command(action: &str, request: &str) -> Command {
    let args = fields(request).into_iter().map(|f| {
        let arg = Arg::new(f.name).long(f.flag).value_name(f.value_name).help(f.help);
        match f.kind {
            Kind::Scalar => arg.num_args(1).allow_hyphen_values(true),
            Kind::Flag => arg.action(ArgAction::SetTrue),
            Kind::List | Kind::Structures => arg.num_args(1..).action(ArgAction::Append),
        }
    });
    let name = kebab(action);
    Command::new(name.clone()).about(format!("{action}, as `aws iam {name}`")).args(args)
}

/// A value as the aws CLI reads it: `file://PATH` is the file's text.
fn value(text: &str) -> Result<String, clap::Error> {
    match text.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::Io, format!("{path}: {e}\n"))),
        None => Ok(text.to_string()),
    }
}

/// JSON as Query parameters under `prefix`: objects by field, arrays by `member.N`.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => fields.iter().for_each(|(k, v)| flatten(&format!("{prefix}.{k}"), v, out)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| flatten(&format!("{prefix}.member.{}", i + 1), v, out))
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The members of a list of structures of message `element`: each `Key=a,Value=b`, a JSON
/// object, or a JSON array of them. In the short form, as in the aws CLI's, a list member takes
/// several values (`ContextKeyValues=a,b`).
fn structures(name: &str, element: &str, texts: &[String]) -> Result<Vec<(String, String)>, clap::Error> {
    let invalid = |text: &str, why: &str| {
        clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("--{}: {why}: {text}\n", kebab(name)))
    };
    let lists: Vec<String> =
        fields(element).into_iter().filter(|f| f.kind != Kind::Scalar).map(|f| f.name).collect();
    let mut members: Vec<Value> = vec![];
    for text in texts {
        if text.trim_start().starts_with(['{', '[']) {
            match serde_json::from_str(text).map_err(|e| invalid(text, &e.to_string()))? {
                Value::Array(items) => members.extend(items),
                object => members.push(object),
            }
            continue;
        }
        let mut pairs: Vec<(String, Vec<String>)> = vec![];
        for piece in text.split(',') {
            match (piece.split_once('='), pairs.last_mut()) {
                (Some((k, v)), _) => pairs.push((k.to_string(), vec![v.to_string()])),
                (None, Some((_, values))) => values.push(piece.to_string()),
                (None, None) => return Err(invalid(text, "expected Key=Value,…")),
            }
        }
        let object = pairs.into_iter().map(|(k, values)| {
            let v = if lists.contains(&k) {
                Value::Array(values.into_iter().map(Value::String).collect())
            } else {
                Value::String(values.join(","))
            };
            (k, v)
        });
        members.push(Value::Object(object.collect()));
    }
    let mut out = vec![];
    flatten(name, &Value::Array(members), &mut out);
    Ok(out)
}

impl FromArgMatches for IamCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let missing = || clap::Error::new(clap::error::ErrorKind::MissingSubcommand);
        let (name, sub) = matches.subcommand().ok_or_else(missing)?;
        let &(action, request) = ACTIONS.iter().find(|(a, _)| kebab(a) == name).ok_or_else(missing)?;
        let mut params = vec![];
        for f in fields(request) {
            if sub.value_source(&f.name) != Some(ValueSource::CommandLine) {
                continue;
            }
            if f.kind == Kind::Flag {
                params.push((f.name, "true".to_string()));
                continue;
            }
            let texts = sub
                .get_many::<String>(&f.name)
                .into_iter()
                .flatten()
                .map(|t| value(t))
                .collect::<Result<Vec<_>, _>>()?;
            match f.kind {
                Kind::Structures => params.extend(structures(&f.name, &f.element, &texts)?),
                Kind::List => params.extend(
                    texts.into_iter().enumerate().map(|(i, t)| (format!("{}.member.{}", f.name, i + 1), t)),
                ),
                _ => params.extend(texts.into_iter().map(|t| (f.name.clone(), t))),
            }
        }
        Ok(Self { action, params })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for IamCommand {
    fn augment_subcommands(cmd: Command) -> Command {
        cmd.subcommands(ACTIONS.iter().map(|(action, request)| command(action, request)))
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        ACTIONS.iter().any(|(a, _)| kebab(a) == name)
    }
}

/// One page of `action`'s answer, as JSON.
async fn page<T: QueryInput, A: serde::Serialize>(
    action: &str,
    params: &[(String, String)],
    call: impl AsyncFnOnce(T) -> Result<tonic::Response<A>, tonic::Status>,
) -> Result<Value, String> {
    let request: T = request_of(&Params::from_pairs(params.to_vec())).map_err(|e| {
        format!("An error occurred ({}) when calling the {action} operation: {}", e.code, e.message)
    })?;
    let answer = call(request).await.map_err(|s| failure(action, s))?.into_inner();
    serde_json::to_value(answer).map_err(|e| e.to_string())
}

/// Signed with the aws CLI's environment credentials where they are set; unsigned (the
/// operator's calls, where the server allows them) where they are not.
pub async fn iam(args: ClientArgs<IamCommand>) -> Result<(), String> {
    let credentials = environment_credentials().ok();
    let mut c = IamClient::new(signing(&args.endpoint, credentials, "iam").await?);
    let IamCommand { action, mut params } = args.command;
    // The aws CLI follows a list to its last page unless told where to stop or start.
    let follow = !params.iter().any(|(k, _)| k == "MaxItems" || k == "Marker");
    let mut answer = Value::Null;
    loop {
        macro_rules! call {
            ($($name:ident => $method:ident($req:ident) -> $answer:ident;)*) => {
                match action {
                    $(stringify!($name) => page(action, &params, async |r: pb::$req| c.$method(r).await).await?,)*
                    other => return Err(format!("no such IAM action: {other}")),
                }
            };
        }
        let next = rolecall_api::iam_rpcs!(call);
        let marker =
            next["Marker"].as_str().filter(|m| follow && next["IsTruncated"] == true && !m.is_empty());
        let marker = marker.map(str::to_string);
        merge(&mut answer, next);
        match marker {
            // A marker must move on: the same one again would loop forever.
            Some(m) if params.iter().any(|(k, v)| k == "Marker" && *v == m) => {
                return Err(format!("{action}: the server answered the same Marker twice"));
            }
            Some(m) => {
                params.retain(|(k, _)| k != "Marker");
                params.push(("Marker".to_string(), m));
            }
            None => break,
        }
    }
    if let Value::Object(fields) = &mut answer
        && follow
    {
        fields.remove("Marker");
        fields.remove("IsTruncated");
    }
    drop_absent(&mut answer);
    let text = serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?;
    if text != "{}" {
        println!("{text}");
    }
    Ok(())
}

/// A later page into the pages before it: its lists appended, its other fields taken.
fn merge(into: &mut Value, page: Value) {
    match (into, page) {
        (Value::Object(all), Value::Object(fields)) => {
            for (k, v) in fields {
                match (all.get_mut(&k), v) {
                    (Some(Value::Array(items)), Value::Array(more)) => items.extend(more),
                    (_, v) => {
                        all.insert(k, v);
                    }
                }
            }
        }
        (into, page) => *into = page,
    }
}

/// Absent members left out, as the aws CLI prints them and as the Query API leaves them out
/// (an unset message is JSON's null; an unset string, proto3's "").
fn drop_absent(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null() && v.as_str() != Some(""));
            fields.values_mut().for_each(drop_absent);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_absent),
        _ => {}
    }
}
