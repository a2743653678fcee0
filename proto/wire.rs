//! The wire contract of `rolecall.v1`: what existing clients rely on, kept as a committed
//! snapshot (`proto/rolecall.v1.wire.txt`, one line per service method, message, field, enum
//! and enum value) and checked against the descriptor set the server serves.
//!
//! A change that breaks existing clients fails the check: a message, enum or method removed;
//! a field removed without reserving its number and name; a field renumbered, renamed,
//! retyped, moved in or out of a oneof, or changed between singular, `optional` and
//! `repeated`; an enum value removed or renumbered; a method's request, response or streaming
//! changed. These are the wire and JSON rules of Buf's `WIRE_JSON` breaking-change category
//! (<https://buf.build/docs/breaking/rules/>). An addition fails too, until the snapshot is
//! rewritten (`UPDATE_WIRE_SNAPSHOT=1 cargo test -p rolecall-api`), so that every change to
//! the API is reviewed as one.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

/// The snapshot, beside the protos.
const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/rolecall.v1.wire.txt");

/// Every element of the contract, by the key it keeps across changes (a field by its message
/// and number, an enum value by its enum and number), with what must not change about it.
fn contract(set: &FileDescriptorSet) -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let stream = |s: bool| if s { "stream " } else { "" };
                lines.insert(
                    format!("rpc {package}.{}.{}", service.name(), method.name()),
                    format!(
                        "({}{}) returns ({}{})",
                        stream(method.client_streaming()),
                        method.input_type().trim_start_matches('.'),
                        stream(method.server_streaming()),
                        method.output_type().trim_start_matches('.'),
                    ),
                );
            }
        }
        for message in &file.message_type {
            describe_message(&format!("{package}.{}", message.name()), message, &mut lines);
        }
        for e in &file.enum_type {
            describe_enum(&format!("{package}.{}", e.name()), e, &mut lines);
        }
    }
    lines
}

fn describe_message(name: &str, message: &DescriptorProto, lines: &mut BTreeMap<String, String>) {
    lines.insert(format!("message {name}"), String::new());
    for field in &message.field {
        let label = match field.label() {
            Label::Repeated => "repeated ",
            _ if field.proto3_optional() => "optional ",
            _ => "",
        };
        let kind = match field.r#type() {
            Type::Message | Type::Enum => field.type_name().trim_start_matches('.').to_string(),
            other => other.as_str_name().trim_start_matches("TYPE_").to_ascii_lowercase(),
        };
        let oneof = field
            .oneof_index
            .filter(|_| !field.proto3_optional())
            .and_then(|i| message.oneof_decl.get(i as usize))
            .map(|o| format!(" oneof {}", o.name()))
            .unwrap_or_default();
        lines.insert(
            format!("field {name} = {}", field.number()),
            format!("{} {label}{kind}{oneof}", field.name()),
        );
    }
    for range in &message.reserved_range {
        // Reserved ranges are end-exclusive in descriptors.
        for number in range.start()..range.end() {
            lines.insert(format!("reserved {name} = {number}"), String::new());
        }
    }
    for reserved in &message.reserved_name {
        lines.insert(format!("reserved {name} {reserved}"), String::new());
    }
    for nested in &message.nested_type {
        describe_message(&format!("{name}.{}", nested.name()), nested, lines);
    }
    for e in &message.enum_type {
        describe_enum(&format!("{name}.{}", e.name()), e, lines);
    }
}

fn describe_enum(name: &str, e: &prost_types::EnumDescriptorProto, lines: &mut BTreeMap<String, String>) {
    lines.insert(format!("enum {name}"), String::new());
    for value in &e.value {
        lines.insert(format!("value {name} = {}", value.number()), value.name().to_string());
    }
}

fn render(lines: &BTreeMap<String, String>) -> String {
    let mut text = String::from(
        "# The wire contract of rolecall.v1 (proto/wire.rs checks it; do not edit by hand:\n\
         # UPDATE_WIRE_SNAPSHOT=1 cargo test -p rolecall-api rewrites it after a reviewed change).\n",
    );
    for (key, value) in lines {
        text.push_str(key);
        if !value.is_empty() {
            text.push_str(": ");
            text.push_str(value);
        }
        text.push('\n');
    }
    text
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// What in `now` breaks a client built against `then`.
fn breaking(then: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut broken = Vec::new();
    for (key, was) in then {
        match now.get(key) {
            Some(is) if is == was => {}
            Some(is) => broken.push(format!("{key} changed: was `{was}`, is `{is}`")),
            None => {
                // A removed field is compatible once its number and name are reserved.
                let reserved = key.strip_prefix("field ").and_then(|rest| {
                    let (message, number) = rest.split_once(" = ")?;
                    let name = was.split(' ').next()?;
                    Some(
                        now.contains_key(&format!("reserved {message} = {number}"))
                            && now.contains_key(&format!("reserved {message} {name}")),
                    )
                });
                if reserved != Some(true) {
                    broken.push(format!("{key} removed (`{was}`)"));
                }
            }
        }
    }
    broken
}

#[test]
fn the_wire_contract_is_kept() {
    let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
    let now = contract(&set);
    if std::env::var_os("UPDATE_WIRE_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT, render(&now)).unwrap();
    }
    let then = parse(&std::fs::read_to_string(SNAPSHOT).unwrap());
    let broken = breaking(&then, &now);
    assert!(broken.is_empty(), "this change breaks existing clients of rolecall.v1:\n{}", broken.join("\n"));
    let added: BTreeSet<&String> = now.keys().filter(|k| !then.contains_key(*k)).collect();
    assert!(
        added.is_empty(),
        "rolecall.v1 grew (compatible): review, then rewrite the snapshot with \
         UPDATE_WIRE_SNAPSHOT=1 cargo test -p rolecall-api:\n{added:#?}"
    );
}

/// The check catches what it is for: each kind of break, against the real snapshot.
#[test]
fn breaking_changes_are_caught_and_reserved_removals_are_not() {
    let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
    let then = contract(&set);
    let field =
        |name: &str| then.keys().find(|k| k.starts_with(&format!("field rolecall.v1.{name} = 1"))).cloned();
    let role_name = field("GetRoleRequest").unwrap();
    let mut now = then.clone();
    now.remove(&role_name);
    assert_eq!(breaking(&then, &now).len(), 1, "a removed field");
    now.insert("reserved rolecall.v1.GetRoleRequest = 1".into(), String::new());
    now.insert("reserved rolecall.v1.GetRoleRequest role_name".into(), String::new());
    assert!(breaking(&then, &now).is_empty(), "a removed field whose number and name are reserved");
    let mut now = then.clone();
    now.insert(role_name.clone(), "role_name int32".into());
    assert_eq!(breaking(&then, &now).len(), 1, "a retyped field");
    let mut now = then.clone();
    let method = then.keys().find(|k| k.starts_with("rpc rolecall.v1.Iam.")).unwrap().clone();
    now.insert(method, "(rolecall.v1.Other) returns (rolecall.v1.Other)".into());
    assert_eq!(breaking(&then, &now).len(), 1, "a method's types changed");
}
