use super::*;
use crate::domain::policy::{PolicyType, operator::is_condition_operator};

fn doc(text: &str) -> Arc<PolicyDocument> {
    Arc::new(PolicyDocument::parse(text, PolicyType::Identity).unwrap())
}

fn trust(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text, PolicyType::Trust).unwrap()
}

/// A one-statement identity policy.
fn allow(action: &str, resource: &str, condition: &str) -> Arc<PolicyDocument> {
    let condition = if condition.is_empty() { String::new() } else { format!(r#","Condition":{condition}"#) };
    doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"{condition}}}]}}"#
    ))
}

fn deny(action: &str, resource: &str) -> Arc<PolicyDocument> {
    doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"{action}","Resource":"{resource}"}}]}}"#
    ))
}

fn ctx(action: &str, resource: &str) -> RequestContext {
    RequestContext::new(action, resource)
}

fn identity(docs: &[Arc<PolicyDocument>], c: &RequestContext) -> Decision {
    decide(&Policies { identity: docs, same_account: true, ..Policies::default() }, c)
}

const USERS: &str = "arn:aws:iam::123456789012:user/alice";

#[test]
fn explicit_deny_beats_allow_beats_implicit_deny() {
    let c = ctx("iam:ListUsers", USERS);
    assert_eq!(identity(&[], &c), Decision::ImplicitDeny);
    assert_eq!(identity(&[allow("iam:List*", "*", "")], &c), Decision::Allow);
    assert_eq!(identity(&[allow("iam:List*", "*", ""), deny("iam:*", "*")], &c), Decision::ExplicitDeny);
    assert_eq!(identity(&[allow("iam:Get*", "*", "")], &c), Decision::ImplicitDeny);
}

#[test]
fn action_names_ignore_case_and_arns_do_not() {
    assert_eq!(identity(&[allow("IAM:listusers", "*", "")], &ctx("iam:ListUsers", USERS)), Decision::Allow);
    let upper = allow("iam:ListUsers", "arn:aws:iam::123456789012:user/Alice", "");
    assert_eq!(identity(&[upper], &ctx("iam:ListUsers", USERS)), Decision::ImplicitDeny);
    let single = allow("iam:ListUser?", "arn:aws:iam::123456789012:user/alic?", "");
    assert_eq!(identity(&[single], &ctx("iam:ListUsers", USERS)), Decision::Allow);
}

#[test]
fn not_action_and_not_resource() {
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::secret*"}]}"#,
    );
    assert_eq!(
        identity(std::slice::from_ref(&d), &ctx("s3:GetObject", "arn:aws:s3:::public/x")),
        Decision::Allow
    );
    assert_eq!(identity(std::slice::from_ref(&d), &ctx("iam:CreateUser", "*")), Decision::ImplicitDeny);
    assert_eq!(identity(&[d], &ctx("s3:GetObject", "arn:aws:s3:::secrets/x")), Decision::ImplicitDeny);
}

#[test]
fn boundaries_and_session_policies_intersect_and_their_denies_count() {
    let admin = [allow("*", "*", "")];
    let c = ctx("iam:CreateUser", USERS);
    let read_only = allow("iam:List*", "*", "");
    let bounded =
        Policies { identity: &admin, boundary: Some(&read_only), same_account: true, ..Policies::default() };
    assert_eq!(decide(&bounded, &c), Decision::ImplicitDeny);
    assert_eq!(decide(&bounded, &ctx("iam:ListRoles", "*")), Decision::Allow);
    // The boundary alone grants nothing.
    let only_boundary = Policies { boundary: Some(&read_only), same_account: true, ..Policies::default() };
    assert_eq!(decide(&only_boundary, &ctx("iam:ListRoles", "*")), Decision::ImplicitDeny);
    let session = [read_only.clone()];
    let scoped = Policies { identity: &admin, session: &session, same_account: true, ..Policies::default() };
    assert_eq!(decide(&scoped, &c), Decision::ImplicitDeny);
    assert_eq!(decide(&scoped, &ctx("iam:ListUsers", "*")), Decision::Allow);
    let denying = [deny("iam:ListUsers", "*")];
    let scoped = Policies { identity: &admin, session: &denying, same_account: true, ..Policies::default() };
    assert_eq!(decide(&scoped, &ctx("iam:ListUsers", "*")), Decision::ExplicitDeny);
}

#[test]
fn resource_policies_are_a_union_in_one_account_and_an_intersection_across() {
    let t = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#,
    );
    let alice = Caller::Aws { arn: USERS.into(), account: "123456789012".into(), role_arn: None };
    let c = ctx("sts:AssumeRole", "arn:aws:iam::123456789012:role/R").with_caller(alice.clone());
    let same = Policies { resource: Some(&t), same_account: true, ..Policies::default() };
    assert_eq!(decide(&same, &c), Decision::Allow);
    let across = Policies { resource: Some(&t), same_account: false, ..Policies::default() };
    assert_eq!(decide(&across, &c), Decision::ImplicitDeny);
    let ids = [allow("sts:AssumeRole", "*", "")];
    let both = Policies { identity: &ids, resource: Some(&t), same_account: false, ..Policies::default() };
    assert_eq!(decide(&both, &c), Decision::Allow);
    // Someone else is not named.
    let bob = Caller::Aws {
        arn: "arn:aws:iam::123456789012:user/bob".into(),
        account: "123456789012".into(),
        role_arn: None,
    };
    let c = ctx("sts:AssumeRole", "arn:aws:iam::123456789012:role/R").with_caller(bob);
    assert_eq!(decide(&same, &c), Decision::ImplicitDeny);
}

#[test]
fn principals_by_account_root_role_and_service() {
    let t = trust(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::123456789012:role/Ops"]},"Action":"sts:AssumeRole"},
        {"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    );
    let verdict_for = |caller: Caller| verdict(&t, &ctx("sts:AssumeRole", "*").with_caller(caller));
    let other_account = Caller::Aws {
        arn: "arn:aws:iam::111122223333:user/x".into(),
        account: "111122223333".into(),
        role_arn: None,
    };
    assert_eq!(verdict_for(other_account), Some(Effect::Allow));
    let ops_session = Caller::Aws {
        arn: "arn:aws:sts::123456789012:assumed-role/Ops/s1".into(),
        account: "123456789012".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/Ops".into()),
    };
    assert_eq!(verdict_for(ops_session), Some(Effect::Allow));
    assert_eq!(verdict_for(Caller::Service("ec2.amazonaws.com".into())), Some(Effect::Allow));
    assert_eq!(verdict_for(Caller::Service("lambda.amazonaws.com".into())), None);
    // IAM no longer accepts NotPrincipal in a trust policy, but one stored before still counts.
    let not = PolicyDocument::parse_stored(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#,
        PolicyType::Trust,
    )
    .unwrap();
    let alice = Caller::Aws { arn: USERS.into(), account: "123456789012".into(), role_arn: None };
    assert_eq!(verdict(&not, &ctx("sts:AssumeRole", "*").with_caller(alice)), None);
    assert_eq!(
        verdict(&not, &ctx("sts:AssumeRole", "*").with_caller(Caller::Service("x.amazonaws.com".into()))),
        Some(Effect::Deny)
    );
}

/// Whether `condition` (a Condition block) holds for `c`.
fn holds(condition: &str, c: &RequestContext) -> bool {
    identity(&[allow("s3:GetObject", "*", condition)], c) == Decision::Allow
}

fn with(keys: &[(&str, &[&str])]) -> RequestContext {
    let mut c = ctx("s3:GetObject", "arn:aws:s3:::b/k");
    for (k, v) in keys {
        c.set_all(k, v.iter().map(|s| s.to_string()).collect());
    }
    c
}

#[test]
fn string_operators() {
    let c = with(&[("aws:username", &["alice"])]);
    assert!(holds(r#"{"StringEquals":{"aws:username":["bob","alice"]}}"#, &c));
    assert!(!holds(r#"{"StringEquals":{"aws:username":"Alice"}}"#, &c));
    assert!(holds(r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#, &c));
    assert!(holds(r#"{"StringLike":{"aws:username":"a*e"}}"#, &c));
    assert!(!holds(r#"{"StringNotLike":{"aws:username":["a*","b*"]}}"#, &c));
    assert!(holds(r#"{"StringNotEquals":{"aws:username":["bob","carol"]}}"#, &c));
    assert!(holds(r#"{"StringNotEqualsIgnoreCase":{"aws:username":"BOB"}}"#, &c));
    // Condition key names are case-insensitive.
    assert!(holds(r#"{"StringEquals":{"AWS:UserName":"alice"}}"#, &c));
}

#[test]
fn absent_keys_if_exists_and_null() {
    let c = with(&[]);
    assert!(!holds(r#"{"StringEquals":{"aws:username":"alice"}}"#, &c));
    assert!(holds(r#"{"StringEqualsIfExists":{"aws:username":"alice"}}"#, &c));
    assert!(
        holds(r#"{"StringNotEquals":{"aws:username":"alice"}}"#, &c),
        "negated operators hold for absent keys"
    );
    assert!(holds(r#"{"Null":{"aws:username":"true"}}"#, &c));
    assert!(!holds(r#"{"Null":{"aws:username":"false"}}"#, &c));
    let present = with(&[("aws:username", &["alice"])]);
    assert!(holds(r#"{"Null":{"aws:username":"false"}}"#, &present));
    assert!(!holds(r#"{"StringEqualsIfExists":{"aws:username":"bob"}}"#, &present));
}

#[test]
fn numeric_date_bool_binary_operators() {
    let c = with(&[
        ("s3:max-keys", &["10"]),
        ("aws:CurrentTime", &["2026-11-22T12:00:00Z"]),
        ("aws:EpochTime", &["1795348800"]),
        ("aws:SecureTransport", &["true"]),
        ("s3:blob", &["QmluYXJ5"]),
    ]);
    assert!(holds(r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#, &c));
    assert!(!holds(r#"{"NumericLessThan":{"s3:max-keys":10}}"#, &c));
    assert!(holds(r#"{"NumericGreaterThan":{"s3:max-keys":"9.5"}}"#, &c));
    assert!(holds(r#"{"NumericNotEquals":{"s3:max-keys":["1","2"]}}"#, &c));
    assert!(!holds(r#"{"NumericEquals":{"s3:max-keys":"ten"}}"#, &c), "a malformed number matches nothing");
    assert!(holds(r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#, &c));
    assert!(holds(r#"{"DateLessThan":{"aws:CurrentTime":"2027-01-01"}}"#, &c));
    assert!(holds(r#"{"DateEquals":{"aws:EpochTime":"2026-11-22T12:00:00Z"}}"#, &c));
    assert!(holds(r#"{"DateNotEquals":{"aws:CurrentTime":"1795348801"}}"#, &c));
    assert!(holds(r#"{"Bool":{"aws:SecureTransport":"true"}}"#, &c));
    assert!(holds(r#"{"Bool":{"aws:SecureTransport":true}}"#, &c));
    assert!(!holds(r#"{"Bool":{"aws:SecureTransport":"false"}}"#, &c));
    assert!(holds(r#"{"BinaryEquals":{"s3:blob":"QmluYXJ5"}}"#, &c));
}

#[test]
fn ip_address_operators() {
    let c = with(&[("aws:SourceIp", &["203.0.113.7"])]);
    assert!(holds(r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, &c));
    assert!(!holds(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#, &c));
    assert!(holds(r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, &c));
    assert!(holds(r#"{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}"#, &c));
    let v6 = with(&[("aws:SourceIp", &["2001:db8::1"])]);
    assert!(holds(r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, &v6));
    assert!(!holds(r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, &v6));
}

#[test]
fn arn_operators_match_segment_by_segment() {
    let c = with(&[("aws:SourceArn", &["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"])]);
    assert!(holds(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:ec2:*:123456789012:instance/*"}}"#, &c));
    assert!(holds(
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"}}"#,
        &c
    ));
    assert!(!holds(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:ec2:*:111122223333:instance/*"}}"#, &c));
    assert!(holds(r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:s3:::*"}}"#, &c));
    // A wildcard does not cross a segment.
    assert!(!holds(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:ec2:us-east-1*instance/*"}}"#, &c));
}

#[test]
fn set_operators() {
    let tags = with(&[("aws:TagKeys", &["team", "env"])]);
    assert!(holds(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env","owner"]}}"#, &tags));
    assert!(!holds(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}"#, &tags));
    assert!(holds(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}"#, &tags));
    assert!(!holds(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner"]}}"#, &tags));
    assert!(holds(r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team"]}}"#, &tags));
    assert!(!holds(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team"]}}"#, &tags));
    let none = with(&[]);
    assert!(holds(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}"#, &none), "vacuously true");
    assert!(!holds(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}"#, &none));
    // Operators AND; keys AND; values OR.
    let both = r#"{"StringEquals":{"aws:TagKeys":"env"},"ForAnyValue:StringLike":{"aws:TagKeys":"t*"}}"#;
    assert!(holds(both, &tags));
    let and_keys = r#"{"StringEquals":{"aws:TagKeys":"env","aws:username":"alice"}}"#;
    assert!(!holds(and_keys, &tags));
}

#[test]
fn policy_variables_in_resources_and_conditions() {
    let own_folder = allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*", "");
    let mut c = ctx("s3:GetObject", "arn:aws:s3:::home/alice/notes");
    c.set("aws:username", "alice");
    assert_eq!(identity(std::slice::from_ref(&own_folder), &c), Decision::Allow);
    c.set("aws:username", "bob");
    assert_eq!(identity(std::slice::from_ref(&own_folder), &c), Decision::ImplicitDeny);
    // Unresolved: matches nothing (not even a literal "${aws:username}").
    let mut anon = ctx("s3:GetObject", "arn:aws:s3:::home/${aws:username}/x");
    anon.set("other", "x");
    assert_eq!(identity(&[own_folder], &anon), Decision::ImplicitDeny);
    // A default, and the escapes.
    let d = allow("s3:GetObject", "arn:aws:s3:::home/${aws:username, 'guest'}/${*}", "");
    assert_eq!(identity(&[d], &ctx("s3:GetObject", "arn:aws:s3:::home/guest/*")), Decision::Allow);
    // In condition values, from a principal tag.
    let mut t = with(&[("aws:PrincipalTag/team", &["blue"]), ("s3:prefix", &["blue/reports"])]);
    assert!(holds(r#"{"StringLike":{"s3:prefix":"${aws:PrincipalTag/team}/*"}}"#, &t));
    t.set("aws:PrincipalTag/team", "red");
    assert!(!holds(r#"{"StringLike":{"s3:prefix":"${aws:PrincipalTag/team}/*"}}"#, &t));
    // Version 2008-10-17 documents take variables literally.
    let old = doc(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username}"}]}"#,
    );
    let mut c = ctx("s3:GetObject", "arn:aws:s3:::${aws:username}");
    c.set("aws:username", "alice");
    assert_eq!(identity(&[old], &c), Decision::Allow);
}

#[test]
fn revoke_older_sessions_denies_by_token_issue_time() {
    // What "Revoke active sessions" attaches.
    let revoke = doc(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*",
        "Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T12:00:00Z"}}}]}"#);
    let admin = allow("*", "*", "");
    let mut old = ctx("s3:ListBucket", "*");
    old.set("aws:TokenIssueTime", "2026-11-22T11:00:00Z");
    assert_eq!(identity(&[admin.clone(), revoke.clone()], &old), Decision::ExplicitDeny);
    let mut fresh = ctx("s3:ListBucket", "*");
    fresh.set("aws:TokenIssueTime", "2026-11-22T12:00:01Z");
    assert_eq!(identity(&[admin.clone(), revoke.clone()], &fresh), Decision::Allow);
    // Long-term keys have no token issue time: the deny does not apply.
    assert_eq!(identity(&[admin, revoke], &ctx("s3:ListBucket", "*")), Decision::Allow);
}

#[test]
fn operators_are_recognised_exactly() {
    for good in [
        "StringEquals",
        "ForAnyValue:StringLikeIfExists",
        "NotIpAddress",
        "ArnNotEquals",
        "Null",
        "BinaryEquals",
    ] {
        assert!(is_condition_operator(good), "{good}");
    }
    for bad in
        ["StringEqualz", "NullIfExists", "ForAllValues:Null", "stringequals", "ForSomeValues:StringLike"]
    {
        assert!(!is_condition_operator(bad), "{bad}");
    }
}

/// Issue 14: the invariants an attacker would attack in identity-policy evaluation.
mod props {
    use proptest::prelude::*;

    use super::*;

    const ACTIONS: [&str; 6] = ["iam:ListUsers", "iam:List*", "iam:*", "s3:GetObject", "*", "ec2:Describe*"];
    const RESOURCES: [&str; 4] =
        ["*", USERS, "arn:aws:iam::123456789012:user/*", "arn:aws:iam::123456789012:role/*"];
    const ASKED: [(&str, &str); 4] = [
        ("iam:ListUsers", USERS),
        ("iam:CreateUser", USERS),
        ("iam:GetRole", "arn:aws:iam::123456789012:role/R"),
        ("ec2:DescribeInstances", "*"),
    ];

    /// (allow?, action, resource) of one statement.
    type Stmt = (bool, usize, usize);

    fn statements() -> impl Strategy<Value = Vec<Vec<Stmt>>> {
        let stmt = (any::<bool>(), 0..ACTIONS.len(), 0..RESOURCES.len());
        proptest::collection::vec(proptest::collection::vec(stmt, 1..4), 0..4)
    }

    fn docs(policies: &[Vec<Stmt>]) -> Vec<Arc<PolicyDocument>> {
        policies
            .iter()
            .map(|stmts| {
                let body: Vec<String> = stmts
                    .iter()
                    .map(|(allow, a, r)| {
                        let effect = if *allow { "Allow" } else { "Deny" };
                        format!(
                            r#"{{"Effect":"{effect}","Action":"{}","Resource":"{}"}}"#,
                            ACTIONS[*a], RESOURCES[*r]
                        )
                    })
                    .collect();
                doc(&format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, body.join(",")))
            })
            .collect()
    }

    fn decision(policies: &[Vec<Stmt>], asked: usize) -> Decision {
        let (action, resource) = ASKED[asked];
        identity(&docs(policies), &ctx(action, resource))
    }

    /// Whether a statement matches the request, worked out apart from the engine.
    fn matches((_, a, r): &Stmt, asked: usize) -> bool {
        let (action, resource) = ASKED[asked];
        let action_ok = match ACTIONS[*a] {
            "*" => true,
            "iam:*" => action.starts_with("iam:"),
            "iam:List*" => action.starts_with("iam:List"),
            "ec2:Describe*" => action.starts_with("ec2:Describe"),
            exact => exact == action,
        };
        let resource_ok = match RESOURCES[*r] {
            "*" => true,
            pattern if pattern.ends_with("/*") => resource.starts_with(&pattern[..pattern.len() - 1]),
            exact => exact == resource,
        };
        action_ok && resource_ok
    }

    proptest! {
        #[test]
        fn an_explicit_deny_that_matches_always_wins_and_an_allow_is_needed(
            policies in statements(),
            asked in 0..ASKED.len(),
        ) {
            let all: Vec<&Stmt> = policies.iter().flatten().collect();
            let expected = if all.iter().any(|s| !s.0 && matches(s, asked)) {
                Decision::ExplicitDeny
            } else if all.iter().any(|s| s.0 && matches(s, asked)) {
                Decision::Allow
            } else {
                Decision::ImplicitDeny
            };
            prop_assert_eq!(decision(&policies, asked), expected);
        }

        #[test]
        fn removing_an_allow_or_adding_a_deny_never_grants(
            policies in statements(),
            asked in 0..ASKED.len(),
            which in any::<prop::sample::Index>(),
            added in (0..ACTIONS.len(), 0..RESOURCES.len()),
        ) {
            let before = decision(&policies, asked);
            // Without one Allow statement (a policy left empty is dropped).
            let allows: Vec<(usize, usize)> = policies
                .iter()
                .enumerate()
                .flat_map(|(p, stmts)| stmts.iter().enumerate().filter(|(_, s)| s.0).map(move |(i, _)| (p, i)))
                .collect();
            if !allows.is_empty() {
                let (p, i) = allows[which.index(allows.len())];
                let mut fewer = policies.clone();
                fewer[p].remove(i);
                fewer.retain(|stmts| !stmts.is_empty());
                let after = decision(&fewer, asked);
                prop_assert!(before == Decision::Allow || after != Decision::Allow, "{before:?} -> {after:?}");
            }
            // With one more Deny policy.
            let mut more = policies.clone();
            more.push(vec![(false, added.0, added.1)]);
            let after = decision(&more, asked);
            prop_assert!(before == Decision::Allow || after != Decision::Allow, "{before:?} -> {after:?}");
        }

        #[test]
        fn the_order_of_statements_and_policies_does_not_matter(
            policies in statements(),
            asked in 0..ASKED.len(),
        ) {
            let mut reordered: Vec<Vec<Stmt>> =
                policies.iter().map(|stmts| stmts.iter().rev().copied().collect()).collect();
            reordered.reverse();
            prop_assert_eq!(decision(&policies, asked), decision(&reordered, asked));
        }
    }

    /// Every kind of policy that bears on a request, as statements: identity policies, a
    /// permissions boundary, session policies, a resource policy (its statements name the
    /// caller as Principal), and whether the resource is in the caller's account.
    #[derive(Clone, Debug)]
    struct Set {
        identity: Vec<Vec<Stmt>>,
        boundary: Option<Vec<Stmt>>,
        session: Vec<Vec<Stmt>>,
        resource: Option<Vec<Stmt>>,
        same_account: bool,
    }

    const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/R/s";

    fn sets() -> impl Strategy<Value = Set> {
        let stmt = (any::<bool>(), 0..ACTIONS.len(), 0..RESOURCES.len());
        let policy = proptest::collection::vec(stmt, 1..3);
        (
            proptest::collection::vec(policy.clone(), 0..3),
            proptest::option::of(policy.clone()),
            proptest::collection::vec(policy.clone(), 0..2),
            proptest::option::of(policy),
            any::<bool>(),
        )
            .prop_map(|(identity, boundary, session, resource, same_account)| Set {
                identity,
                boundary,
                session,
                resource,
                same_account,
            })
    }

    fn resource_doc(stmts: &[Stmt]) -> PolicyDocument {
        let body: Vec<String> = stmts
            .iter()
            .map(|(allow, a, r)| {
                let effect = if *allow { "Allow" } else { "Deny" };
                format!(
                    r#"{{"Effect":"{effect}","Principal":{{"AWS":"{CALLER}"}},"Action":"{}","Resource":"{}"}}"#,
                    ACTIONS[*a], RESOURCES[*r]
                )
            })
            .collect();
        let text = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, body.join(","));
        PolicyDocument::parse(&text, PolicyType::Resource).unwrap()
    }

    fn decide_set(set: &Set, asked: usize) -> Decision {
        let (action, resource) = ASKED[asked];
        let caller = Caller::Aws {
            arn: CALLER.into(),
            account: "123456789012".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/R".into()),
        };
        let identity = docs(&set.identity);
        let boundary = set.boundary.as_ref().map(|b| docs(std::slice::from_ref(b)).remove(0));
        let session = docs(&set.session);
        let resource_policy = set.resource.as_deref().map(resource_doc);
        let policies = Policies {
            identity: &identity,
            boundary: boundary.as_deref(),
            session: &session,
            resource: resource_policy.as_ref(),
            same_account: set.same_account,
        };
        decide(&policies, &ctx(action, resource).with_caller(caller))
    }

    /// Every statement of the set, with a way back to it: (place, policy, statement).
    fn places(set: &Set) -> Vec<(usize, usize, usize)> {
        let mut all = Vec::new();
        let lists: [Vec<&Vec<Stmt>>; 4] = [
            set.identity.iter().collect(),
            set.boundary.iter().collect(),
            set.session.iter().collect(),
            set.resource.iter().collect(),
        ];
        for (place, policies) in lists.iter().enumerate() {
            for (p, stmts) in policies.iter().enumerate() {
                all.extend((0..stmts.len()).map(|i| (place, p, i)));
            }
        }
        all
    }

    /// The policy that holds the statement at `(place, p, _)`.
    fn policy_at(set: &mut Set, (place, p, _): (usize, usize, usize)) -> &mut Vec<Stmt> {
        match place {
            0 => &mut set.identity[p],
            1 => set.boundary.as_mut().unwrap(),
            2 => &mut set.session[p],
            _ => set.resource.as_mut().unwrap(),
        }
    }

    proptest! {
        /// Issue 14, over every kind of policy: a Deny that matches, wherever it is, wins.
        #[test]
        fn a_matching_deny_in_any_policy_wins(set in sets(), asked in 0..ASKED.len()) {
            let every = set.identity.iter().chain(&set.boundary).chain(&set.session).chain(&set.resource);
            let denied = every.flatten().any(|s| !s.0 && matches(s, asked));
            let decision = decide_set(&set, asked);
            prop_assert_eq!(decision == Decision::ExplicitDeny, denied, "{:?}", decision);
        }

        /// Removing an Allow statement, or adding a Deny statement, in any policy never
        /// turns a refused request into an allowed one.
        #[test]
        fn fewer_allows_or_more_denies_anywhere_never_grant(
            set in sets(),
            asked in 0..ASKED.len(),
            which in any::<prop::sample::Index>(),
            added in (0..ACTIONS.len(), 0..RESOURCES.len()),
        ) {
            let before = decide_set(&set, asked);
            let all = places(&set);
            if !all.is_empty() {
                let at = all[which.index(all.len())];
                // Turning a statement into a Deny adds a Deny and may remove an Allow.
                let mut denied = set.clone();
                policy_at(&mut denied, at)[at.2].0 = false;
                let after = decide_set(&denied, asked);
                prop_assert!(before == Decision::Allow || after != Decision::Allow, "{before:?} -> {after:?}");
                // Adding a Deny beside it.
                let mut more = set.clone();
                policy_at(&mut more, at).push((false, added.0, added.1));
                let after = decide_set(&more, asked);
                prop_assert!(before == Decision::Allow || after != Decision::Allow, "{before:?} -> {after:?}");
            }
        }

        /// The decision does not depend on the order of statements or of policies.
        #[test]
        fn the_order_within_every_kind_of_policy_does_not_matter(set in sets(), asked in 0..ASKED.len()) {
            let mut reordered = set.clone();
            let rev = |stmts: &mut Vec<Stmt>| stmts.reverse();
            reordered.identity.iter_mut().for_each(rev);
            reordered.identity.reverse();
            reordered.boundary.iter_mut().for_each(rev);
            reordered.session.iter_mut().for_each(rev);
            reordered.session.reverse();
            reordered.resource.iter_mut().for_each(rev);
            prop_assert_eq!(decide_set(&set, asked), decide_set(&reordered, asked));
        }
    }
}

/// Issue 17: whom a same-account resource policy names decides what its Allow is worth.
/// Cases from the IAM User Guide: "Policy evaluation for requests within a single account"
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html),
/// "Permissions boundaries for IAM entities"
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html: "Permissions
/// boundaries do not define the maximum permissions that a resource-based policy can grant",
/// in the PutUserPermissionsBoundary reference; grants to a role ARN are limited by the
/// role's boundary, to a role session's ARN they are not) and "Session policies"
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session: a
/// grant to the user's or role's ARN is limited by the session policy, a grant to the
/// session's own ARN is added after it).
mod grantees {
    use super::*;

    const ACCOUNT: &str = "123456789012";
    const BUCKET: &str = "arn:aws:s3:::reports/q1.csv";
    const ROLE: &str = "arn:aws:iam::123456789012:role/Ops";
    const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/Ops/s1";

    fn bucket_policy(principal: &str) -> PolicyDocument {
        PolicyDocument::parse(
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"{BUCKET}"}}]}}"#
            ),
            PolicyType::Resource,
        )
        .unwrap()
    }

    fn user() -> Caller {
        Caller::Aws { arn: USERS.into(), account: ACCOUNT.into(), role_arn: None }
    }

    fn session() -> Caller {
        Caller::Aws { arn: SESSION.into(), account: ACCOUNT.into(), role_arn: Some(ROLE.into()) }
    }

    /// The decision for `caller` reading the object, with `identity` policies, an optional
    /// boundary and session policies, under a bucket policy naming `principal`.
    fn read(
        caller: Caller,
        principal: &str,
        identity: &[Arc<PolicyDocument>],
        boundary: Option<&PolicyDocument>,
        session: &[Arc<PolicyDocument>],
    ) -> Decision {
        let resource = bucket_policy(principal);
        let policies =
            Policies { identity, boundary, session, resource: Some(&resource), same_account: true };
        decide(&policies, &ctx("s3:GetObject", BUCKET).with_caller(caller))
    }

    #[test]
    fn naming_the_account_grants_nothing_by_itself() {
        let reads = [allow("s3:GetObject", "*", "")];
        for account in
            [format!(r#"{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}}"#), format!(r#"{{"AWS":"{ACCOUNT}"}}"#)]
        {
            assert_eq!(read(user(), &account, &[], None, &[]), Decision::ImplicitDeny, "{account}");
            assert_eq!(read(session(), &account, &[], None, &[]), Decision::ImplicitDeny, "{account}");
            // It hands the decision to the identity policies.
            assert_eq!(read(user(), &account, &reads, None, &[]), Decision::Allow, "{account}");
        }
    }

    #[test]
    fn a_grant_to_a_users_arn_is_not_limited_by_its_boundary() {
        let nothing = allow("sts:GetCallerIdentity", "*", "");
        let named = format!(r#"{{"AWS":"{USERS}"}}"#);
        assert_eq!(read(user(), &named, &[], None, &[]), Decision::Allow);
        assert_eq!(read(user(), &named, &[], Some(&nothing), &[]), Decision::Allow);
        // Everyone is the caller too.
        assert_eq!(read(user(), r#""*""#, &[], Some(&nothing), &[]), Decision::Allow);
    }

    #[test]
    fn a_grant_to_a_roles_arn_is_limited_by_its_boundary_and_session_policies() {
        let nothing = allow("sts:GetCallerIdentity", "*", "");
        let reads = allow("s3:GetObject", "*", "");
        let named = format!(r#"{{"AWS":"{ROLE}"}}"#);
        assert_eq!(read(session(), &named, &[], None, &[]), Decision::Allow);
        assert_eq!(read(session(), &named, &[], Some(&nothing), &[]), Decision::ImplicitDeny);
        assert_eq!(read(session(), &named, &[], Some(&reads), &[]), Decision::Allow);
        assert_eq!(
            read(session(), &named, &[], None, std::slice::from_ref(&nothing)),
            Decision::ImplicitDeny
        );
        assert_eq!(read(session(), &named, &[], None, &[reads]), Decision::Allow);
    }

    #[test]
    fn a_grant_to_a_sessions_own_arn_is_limited_by_neither() {
        let nothing = allow("sts:GetCallerIdentity", "*", "");
        let named = format!(r#"{{"AWS":"{SESSION}"}}"#);
        assert_eq!(
            read(session(), &named, &[], Some(&nothing), std::slice::from_ref(&nothing)),
            Decision::Allow
        );
        // An explicit deny anywhere still wins.
        let denies = deny("s3:*", "*");
        assert_eq!(read(session(), &named, &[], None, &[denies]), Decision::ExplicitDeny);
    }

    #[test]
    fn across_accounts_naming_the_account_is_the_resource_sides_allow() {
        let resource = bucket_policy(&format!(r#"{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}}"#));
        let reads = [allow("s3:GetObject", "*", "")];
        let c = ctx("s3:GetObject", BUCKET).with_caller(user());
        let across = |identity| Policies {
            identity,
            resource: Some(&resource),
            same_account: false,
            ..Policies::default()
        };
        assert_eq!(decide(&across(&reads), &c), Decision::Allow);
        assert_eq!(decide(&across(&[]), &c), Decision::ImplicitDeny);
    }

    #[test]
    fn a_deny_with_not_principal_denies_every_bounded_principal() {
        let policy = PolicyDocument::parse(
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{BUCKET}"}},
                {{"Effect":"Deny","NotPrincipal":{{"AWS":"{USERS}"}},"Action":"s3:GetObject","Resource":"{BUCKET}"}}]}}"#
            ),
            PolicyType::Resource,
        )
        .unwrap();
        let everything = allow("*", "*", "");
        let c = ctx("s3:GetObject", BUCKET).with_caller(user());
        let unbounded = Policies { resource: Some(&policy), same_account: true, ..Policies::default() };
        assert_eq!(decide(&unbounded, &c), Decision::Allow, "alice is excepted");
        let bounded = Policies { boundary: Some(&everything), ..unbounded };
        assert_eq!(decide(&bounded, &c), Decision::ExplicitDeny, "whatever the NotPrincipal list names");
    }
}

/// Issue 17: a decision says why: the statement that decided, or the kind of policy none of
/// which allowed (what AWS's AccessDenied message names).
#[test]
fn a_decision_says_which_statement_or_which_kind_of_policy_decided() {
    let c = ctx("iam:CreateUser", USERS);
    let two = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"},{"Effect":"Deny","Action":"iam:Create*","Resource":"*"}]}"#,
    );
    let identity = [allow("s3:*", "*", ""), two.clone()];
    let explained = explain(&Policies { identity: &identity, same_account: true, ..Policies::default() }, &c);
    assert_eq!(explained.decision, Decision::ExplicitDeny);
    assert_eq!(explained.by, Some(StatementRef { kind: PolicyKind::Identity, policy: 1, statement: 1 }));
    let allowed = explain(
        &Policies { identity: &identity, same_account: true, ..Policies::default() },
        &ctx("iam:ListUsers", "*"),
    );
    assert_eq!(allowed.by, Some(StatementRef { kind: PolicyKind::Identity, policy: 1, statement: 0 }));
    let lacking = |p: &Policies<'_>| {
        let e = explain(p, &c);
        assert_eq!(e.decision, Decision::ImplicitDeny);
        e.lacking
    };
    let admin = [allow("*", "*", "")];
    let list = allow("iam:List*", "*", "");
    assert_eq!(lacking(&Policies { same_account: true, ..Policies::default() }), Some(PolicyKind::Identity));
    let bounded =
        Policies { identity: &admin, boundary: Some(&list), same_account: true, ..Policies::default() };
    assert_eq!(lacking(&bounded), Some(PolicyKind::Boundary));
    let sessions = [list.clone()];
    let scoped = Policies { identity: &admin, session: &sessions, same_account: true, ..Policies::default() };
    assert_eq!(lacking(&scoped), Some(PolicyKind::Session));
    let t = trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#,
    );
    let alice = Caller::Aws { arn: USERS.into(), account: "123456789012".into(), role_arn: None };
    let across =
        Policies { identity: &admin, resource: Some(&t), same_account: false, ..Policies::default() };
    assert_eq!(explain(&across, &c.clone().with_caller(alice)).lacking, Some(PolicyKind::Resource));
}
