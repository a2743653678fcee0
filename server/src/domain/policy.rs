//! IAM policy documents: parsing, validation per policy type with AWS's messages, and
//! matching. The full evaluation engine (conditions, variables, boundaries) builds on
//! this model; here it answers the one question instance credentials need: does a trust
//! policy let a service assume the role?

use serde_json::{Map, Value};

use super::{Error, Result};

pub mod date;
pub mod operator;
mod principals;

pub use principals::Principals;

/// Which grammar a document must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyType {
    /// Permission policies (inline, managed), permissions boundaries, session policies:
    /// no Principal, Resource required.
    Identity,
    /// A role's trust policy: Principal required, no Resource, only sts: actions.
    Trust,
    /// A resource's own policy (an S3 bucket policy): Principal and Resource required.
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns that either names what matches (Action) or what does not (NotAction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    AllBut(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub not_principal: Option<Principals>,
    pub action: Patterns,
    pub resource: Option<Patterns>,
    pub condition: Option<Map<String, Value>>,
    /// For a statement of many actions (AWS's ReadOnlyAccess holds thousands), where each
    /// vendor's are: an action is matched only against its vendor's patterns.
    pub action_index: Option<VendorIndex>,
}

/// A statement's action patterns by vendor (lower-cased), and those whose vendor part has a
/// wildcard (or that are `*`), which every action is matched against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VendorIndex {
    by_vendor: std::collections::HashMap<String, Vec<u32>>,
    any_vendor: Vec<u32>,
}

/// How many action patterns make a statement worth indexing.
const INDEXED_FROM: usize = 16;

impl VendorIndex {
    fn of(patterns: &[String]) -> Option<Self> {
        if patterns.len() < INDEXED_FROM {
            return None;
        }
        let mut index = Self::default();
        for (n, pattern) in patterns.iter().enumerate() {
            let n = u32::try_from(n).ok()?;
            match pattern.split_once(':') {
                Some((vendor, _)) if !vendor.contains(['*', '?']) => {
                    index.by_vendor.entry(vendor.to_ascii_lowercase()).or_default().push(n);
                }
                _ => index.any_vendor.push(n),
            }
        }
        Some(index)
    }

    /// The patterns that may match `action`.
    fn candidates<'a>(&'a self, action: &str) -> impl Iterator<Item = usize> + 'a {
        let vendor = action.split_once(':').map(|(v, _)| v.to_ascii_lowercase()).unwrap_or_default();
        let of_vendor = self.by_vendor.get(&vendor).map(Vec::as_slice).unwrap_or_default();
        of_vendor.iter().chain(&self.any_vendor).map(|&n| n as usize)
    }
}

/// A parsed, validated policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    pub version: String,
    pub statements: Vec<Statement>,
}

/// The two policy language versions AWS accepts.
pub const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

/// The service principal of EC2, which instance profiles assume roles as.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";

// === impl PolicyDocument ===

impl PolicyDocument {
    /// Parses `text` and validates it against the grammar of `kind`, as IAM does when a
    /// document is written.
    pub fn parse(text: &str, kind: PolicyType) -> Result<Self> {
        Self::read(text, kind, Grammar::Written)
    }

    /// Parses a document that was validated when it was written: its structure is checked,
    /// but not the forms of its values that a later, stricter grammar may refuse (a stored
    /// policy keeps its Deny statements whatever was since added to the validator).
    pub fn parse_stored(text: &str, kind: PolicyType) -> Result<Self> {
        Self::read(text, kind, Grammar::Stored)
    }

    /// Parses a customer managed policy (CreatePolicy, CreatePolicyVersion): an identity
    /// policy that must also be of version 2012-10-17. IAM says so after a syntax error and
    /// before any other ("Policy document must be version 2012-10-17 or greater." for a
    /// document without Version or of 2008-10-17, in the cases getmoto/moto pull 2269
    /// checked against IAM); inline policies may still be of 2008-10-17.
    pub fn parse_managed(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|_| syntax_error())?;
        let parsed = Self::from_value(&value, PolicyType::Identity, Grammar::Written);
        let syntax = matches!(&parsed, Err(e) if e.message == syntax_error().message);
        if !syntax && value.get("Version").and_then(Value::as_str) != Some(VERSIONS[0]) {
            return Err(Error::malformed_policy("Policy document must be version 2012-10-17 or greater."));
        }
        parsed
    }

    fn read(text: &str, kind: PolicyType, grammar: Grammar) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|_| syntax_error())?;
        Self::from_value(&value, kind, grammar)
    }

    fn from_value(value: &Value, kind: PolicyType, grammar: Grammar) -> Result<Self> {
        let Value::Object(top) = value else { return Err(syntax_error()) };
        let mut version = None;
        let mut statements = None;
        for (key, value) in top {
            match key.as_str() {
                "Version" => version = Some(value.as_str().ok_or_else(syntax_error)?),
                "Id" => {
                    value.as_str().ok_or_else(syntax_error)?;
                }
                "Statement" => statements = Some(value),
                _ => return Err(syntax_error()),
            }
        }
        let version = version.unwrap_or("2008-10-17");
        if !VERSIONS.contains(&version) {
            return Err(Error::malformed_policy("The policy failed legacy parsing"));
        }
        let statements = match statements {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            _ => return Err(syntax_error()),
        };
        let statements =
            statements.into_iter().map(|s| Statement::parse(s, kind, grammar)).collect::<Result<Vec<_>>>()?;
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::malformed_policy("Statement IDs (SID) in a single policy must be unique."));
        }
        Ok(Self { version: version.to_string(), statements })
    }

    /// Whether its strings may hold policy variables (`${aws:username}`): version 2012-10-17.
    pub fn reads_variables(&self) -> bool {
        self.version == "2012-10-17"
    }
}

/// The condition keys of `documents`, each once, in their order (GetContextKeysFor…).
pub fn context_keys<'a>(documents: impl IntoIterator<Item = &'a PolicyDocument>) -> Vec<String> {
    distinct_keys(documents.into_iter().flat_map(|d| &d.statements).flat_map(Statement::condition_keys))
}

/// `keys` each once (condition keys compare without case), as first written.
pub fn distinct_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut distinct: Vec<String> = Vec::new();
    for key in keys {
        if !distinct.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            distinct.push(key.to_string());
        }
    }
    distinct
}

/// A place in a document's text: line and column from 1, the column in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where each statement of `text` (a document [`PolicyDocument::parse`] accepts) begins
/// (its `{`) and ends (its `}`), in the order of its statements; serde_json gives each
/// statement's own text, whose place in `text` says where it is.
pub fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(rename = "Statement", borrow)]
        statement: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(Raw { statement: Some(raw) }) = serde_json::from_str::<Raw<'_>>(text) else { return Vec::new() };
    let items: Vec<&serde_json::value::RawValue> = match serde_json::from_str(raw.get()) {
        Ok(list) => list,
        Err(_) => vec![raw],
    };
    let base = text.as_ptr() as usize;
    let at = |offset: usize| {
        let before = text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        Position { line, column }
    };
    items
        .iter()
        .map(|item| {
            let start = (item.get().as_ptr() as usize).saturating_sub(base);
            (at(start), at(start + item.get().len().saturating_sub(1)))
        })
        .collect()
}

/// The inline policy "Revoke active sessions" puts on a role, as AWS names it.
pub const REVOKE_OLDER_SESSIONS: &str = "AWSRevokeOlderSessions";

/// AWS's AWSRevokeOlderSessions document: every action denied to sessions whose token was
/// issued before `before` (aws:TokenIssueTime).
pub fn revoke_older_sessions(before: i64) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{}"}}}}}}]}}"#,
        super::clock::iso8601(before)
    )
}

/// The revocation time of an AWSRevokeOlderSessions document (None: not one).
pub fn revoked_before(document: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(document).ok()?;
    let statement = match &value["Statement"] {
        Value::Array(list) => list.first()?.clone(),
        other => other.clone(),
    };
    let at = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str()?;
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The size AWS counts against policy quotas: characters other than whitespace.
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

pub(crate) fn syntax_error() -> Error {
    Error::malformed_policy("Syntax errors in policy.")
}

// === impl Statement ===

/// How much of the grammar a parse holds a document to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grammar {
    /// All of it: a document being written.
    Written,
    /// Its structure: a document read back from the store.
    Stored,
}

impl Statement {
    /// Whether an action (`service:Name`, case-insensitive) matches its Action (NotAction),
    /// through its vendor index when it has one.
    pub fn matches_action(&self, action: &str) -> bool {
        let Some(index) = &self.action_index else { return self.action.matches_action(action) };
        let patterns = self.action.patterns();
        let any = index.candidates(action).any(|n| wildcard_match(&patterns[n], action, true));
        match self.action {
            Patterns::Only(_) => any,
            Patterns::AllBut(_) => !any,
        }
    }

    /// The condition keys it reads (`aws:SourceIp`, `ec2:ResourceTag/team`), as written.
    pub fn condition_keys(&self) -> impl Iterator<Item = &str> {
        let blocks = self.condition.iter().flat_map(|c| c.values());
        blocks.filter_map(Value::as_object).flat_map(|keys| keys.keys()).map(String::as_str)
    }

    fn parse(value: &Value, kind: PolicyType, grammar: Grammar) -> Result<Self> {
        let Value::Object(fields) = value else { return Err(syntax_error()) };
        let mut sid = None;
        let mut effect = None;
        let (mut principal, mut not_principal) = (None, None);
        let (mut action, mut not_action) = (None, None);
        let (mut resource, mut not_resource) = (None, None);
        let mut condition = None;
        for (key, value) in fields {
            match key.as_str() {
                "Sid" => sid = Some(value.as_str().ok_or_else(syntax_error)?.to_string()),
                "Effect" => effect = Some(value.as_str().ok_or_else(syntax_error)?),
                "Principal" => principal = Some(Principals::parse(value, kind, grammar)?),
                "NotPrincipal" => not_principal = Some(Principals::parse(value, kind, grammar)?),
                "Action" => action = Some(string_list(value)?),
                "NotAction" => not_action = Some(string_list(value)?),
                "Resource" => resource = Some(string_list(value)?),
                "NotResource" => not_resource = Some(string_list(value)?),
                "Condition" => condition = Some(parse_condition(value, grammar)?),
                _ => return Err(syntax_error()),
            }
        }
        let effect = match effect {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(other) => return Err(Error::malformed_policy(format!("Invalid effect: {other}"))),
            None => return Err(syntax_error()),
        };
        // IAM's documents (identity and trust policies): "The Sid element supports ASCII
        // uppercase letters (A-Z), lowercase letters (a-z), and numbers (0-9)" (Sid, IAM User
        // Guide); S3 reads a bucket policy's Sid as any string.
        if let Some(sid) = &sid
            && grammar == Grammar::Written
            && kind != PolicyType::Resource
            && !sid.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(Error::malformed_policy(
                "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
            ));
        }
        let action = match (action, not_action) {
            (Some(a), None) => Patterns::Only(a),
            (None, Some(na)) => Patterns::AllBut(na),
            (None, None) => return Err(Error::malformed_policy("Policy statement must contain actions.")),
            (Some(_), Some(_)) => return Err(syntax_error()),
        };
        for a in action.patterns() {
            validate_action(a, kind)?;
        }
        if principal.is_some() && not_principal.is_some() {
            return Err(syntax_error());
        }
        let resource = match (resource, not_resource) {
            (Some(r), None) => Some(Patterns::Only(r)),
            (None, Some(nr)) => Some(Patterns::AllBut(nr)),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(syntax_error()),
        };
        match kind {
            PolicyType::Identity => {
                if principal.is_some() || not_principal.is_some() {
                    return Err(Error::malformed_policy("Policy document should not specify a principal."));
                }
                let Some(resource) = &resource else {
                    return Err(Error::malformed_policy("Policy statement must contain resources."));
                };
                if grammar == Grammar::Written {
                    for r in resource.patterns() {
                        validate_resource(r)?;
                    }
                }
            }
            PolicyType::Trust => {
                // IAM refuses NotPrincipal in a trust policy (NotPrincipal, IAM User Guide:
                // "You cannot use the NotPrincipal element in an IAM identity-based policy
                // nor in an IAM role trust policy"); a stored one is still read.
                if not_principal.is_some() && grammar == Grammar::Written {
                    return Err(Error::malformed_policy("Has prohibited field NotPrincipal"));
                }
                if principal.is_none() && not_principal.is_none() {
                    return Err(Error::malformed_policy("Missing required field Principal"));
                }
                if resource.is_some() {
                    return Err(Error::malformed_policy("Has prohibited field Resource"));
                }
            }
            PolicyType::Resource => {
                if principal.is_none() && not_principal.is_none() {
                    return Err(Error::malformed_policy("Missing required field Principal"));
                }
                if resource.is_none() {
                    return Err(Error::malformed_policy("Missing required field Resource"));
                }
            }
        }
        let action_index = VendorIndex::of(action.patterns());
        Ok(Self { sid, effect, principal, not_principal, action, resource, condition, action_index })
    }
}

/// The partition rolecall's accounts are in: a Resource ARN's partition must match it.
pub(crate) const PARTITION: &str = "aws";

/// The paths an IAM resource's ARN may name after its account (IAM's list, in its order).
const IAM_RESOURCE_TYPES: [&str; 13] = [
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

/// A Resource (NotResource) of an IAM policy, read as IAM reads it, with its messages
/// (MalformedPolicyDocument). IAM's answers for each shape are those getmoto/moto pull 2269
/// checked against IAM (tests/test_iam/test_iam_policies.py): anything without a colon is
/// "not in ARN format"; the second part is the partition, whatever the first is; an ARN of
/// two parts names no service; IAM's ARNs name no region, nor do S3's buckets and objects
/// (a region without an account); an IAM ARN names one of
/// IAM's resource types; an ARN of fewer than six parts that holds "::", or whose service is
/// empty, fails IAM's legacy parsing. Shorter ARNs without "::" (`arn:aws:logs`) are taken.
/// A partition may be a wildcard (`arn:*:…`, rolecall's reading: IAM's refusal is unverified).
fn validate_resource(resource: &str) -> Result<()> {
    if resource == "*" {
        return Ok(());
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let [_, partition, rest @ ..] = parts.as_slice() else {
        return Err(Error::malformed_policy(format!(r#"Resource {resource} must be in ARN format or "*"."#)));
    };
    if !wildcard_match(partition, PARTITION, false) {
        let part = |n: usize| match rest.get(n) {
            Some(p) if !p.is_empty() || rest.len() > 1 || n > 0 => *p,
            _ => "*",
        };
        let last = if rest.len() > 3 { rest[3..].join(":") } else { "*".to_string() };
        return Err(Error::malformed_policy(format!(
            r#"Partition "{partition}" is not valid for resource "arn:{partition}:{}:{}:{}:{last}"."#,
            part(0),
            part(1),
            part(2)
        )));
    }
    let legacy = || Error::malformed_policy("The policy failed legacy parsing");
    let Some(&service) = rest.first() else {
        return Err(Error::malformed_policy(
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ));
    };
    if service.is_empty() || (parts.len() < 6 && resource.contains("::")) {
        return Err(legacy());
    }
    let region = rest.get(1).copied().unwrap_or_default();
    let account = rest.get(2).copied().unwrap_or_default();
    if service == "iam" && (!region.is_empty() || rest.len() == 1) {
        return Err(Error::malformed_policy(format!(
            "IAM resource {resource} cannot contain region information."
        )));
    }
    // A bucket's or object's ARN names neither region nor account; S3's access points and
    // access grants name both (`arn:aws:s3:*:*:accesspoint/*`, in AWS's own managed policies).
    if service == "s3" && (rest.len() == 1 || (!region.is_empty() && account.is_empty())) {
        return Err(Error::malformed_policy(format!(
            "Resource {resource} can not contain region information."
        )));
    }
    if service == "iam" {
        let path = rest.get(3).copied().unwrap_or_default();
        if !IAM_RESOURCE_TYPES.iter().any(|t| path.starts_with(t)) && path != "root" && !path.starts_with('*')
        {
            return Err(Error::malformed_policy(format!(
                r#"IAM resource path must either be "*" or start with {}."#,
                IAM_RESOURCE_TYPES.join(", ")
            )));
        }
    }
    Ok(())
}

/// An action is `*` or `vendor:name`: IAM refuses a second colon, a missing vendor, and a
/// vendor of other characters than letters, digits, `-` and `.`; it takes any name
/// (getmoto/moto pull 2269's cases: "iam: asdf safdsf af " is accepted). A trust policy
/// holds only sts: actions.
fn validate_action(action: &str, kind: PolicyType) -> Result<()> {
    if action == "*" {
        return Ok(());
    }
    // Refused by either grammar (a name holds no colon); this is IAM's word for it.
    if action.matches(':').count() > 1 {
        return Err(Error::malformed_policy("Actions/Condition can contain only one colon."));
    }
    let Some((vendor, _name)) = action.split_once(':') else {
        return Err(Error::malformed_policy(
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ));
    };
    if vendor != "*" && !vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(Error::malformed_policy(format!("Vendor {vendor} is not valid")));
    }
    if kind == PolicyType::Trust && !vendor.eq_ignore_ascii_case("sts") {
        return Err(Error::malformed_policy(format!(
            "AssumeRole policy may only specify STS AssumeRole actions. Action {action} is not allowed."
        )));
    }
    Ok(())
}

/// A string or a non-empty array of strings.
pub(crate) fn string_list(value: &Value) -> Result<Vec<String>> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => {
            list.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(syntax_error)).collect()
        }
        _ => Err(syntax_error()),
    }
}

/// A Condition block: `{ Operator: { Key: value-or-values } }`, with IAM's answers
/// (getmoto/moto pull 2269 checked each against IAM): an empty block, an operator with no
/// keys and a key with an empty list of values are accepted; an operator IAM does not know
/// is a syntax error unless it holds no keys; values are strings (or JSON scalars) or lists
/// of them; a Date operator's values must be dates ("The policy failed legacy parsing").
fn parse_condition(value: &Value, grammar: Grammar) -> Result<Map<String, Value>> {
    let Value::Object(operators) = value else { return Err(syntax_error()) };
    for (name, keys) in operators {
        let Value::Object(keys) = keys else { return Err(syntax_error()) };
        let operator = operator::Operator::parse(name);
        if operator.is_none() && !keys.is_empty() {
            return Err(syntax_error());
        }
        for values in keys.values() {
            let values = match values {
                Value::Array(list) => list.iter().collect(),
                one => vec![one],
            };
            if !values.iter().all(|v| v.is_string() || v.is_boolean() || v.is_number()) {
                return Err(syntax_error());
            }
            let dates = operator.is_some_and(|o| o.base.is_date());
            if dates
                && grammar == Grammar::Written
                && !values.iter().all(|v| date::parse(&scalar_text(v)).is_some())
            {
                return Err(Error::malformed_policy("The policy failed legacy parsing"));
            }
        }
    }
    Ok(operators.clone())
}

/// A condition value as the text it compares as (`true`, `10`, or the string itself).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// === impl Patterns ===

impl Patterns {
    pub fn patterns(&self) -> &[String] {
        match self {
            Self::Only(p) | Self::AllBut(p) => p,
        }
    }

    /// Whether an action (`service:Name`) matches: action names are case-insensitive.
    pub fn matches_action(&self, action: &str) -> bool {
        let any = self.patterns().iter().any(|p| wildcard_match(p, action, true));
        match self {
            Self::Only(_) => any,
            Self::AllBut(_) => !any,
        }
    }

    /// Whether a resource ARN matches: ARNs are case-sensitive.
    pub fn matches_resource(&self, arn: &str) -> bool {
        let any = self.patterns().iter().any(|p| wildcard_match(p, arn, false));
        match self {
            Self::Only(_) => any,
            Self::AllBut(_) => !any,
        }
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    // ASCII (every action, nearly every ARN): bytes are characters, and nothing is copied.
    if pattern.is_ascii() && value.is_ascii() {
        return matched(pattern.as_bytes(), value.as_bytes(), ignore_case);
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    matched(&p, &v, ignore_case)
}

/// The wildcard match over characters of any kind (bytes of ASCII, or chars).
fn matched<C: Copy + PartialEq + Wild>(p: &[C], v: &[C], ignore_case: bool) -> bool {
    let eq = |a: C, b: C| if ignore_case { a.same_ignoring_case(b) } else { a == b };
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi].any_one() || (!p[pi].any_run() && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi].any_run() {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| c.any_run())
}

/// A character of a wildcard pattern: `*`, `?`, or itself.
trait Wild {
    fn any_run(self) -> bool;
    fn any_one(self) -> bool;
    fn same_ignoring_case(self, other: Self) -> bool;
}

impl Wild for u8 {
    fn any_run(self) -> bool {
        self == b'*'
    }
    fn any_one(self) -> bool {
        self == b'?'
    }
    fn same_ignoring_case(self, other: Self) -> bool {
        self.eq_ignore_ascii_case(&other)
    }
}

impl Wild for char {
    fn any_run(self) -> bool {
        self == '*'
    }
    fn any_one(self) -> bool {
        self == '?'
    }
    fn same_ignoring_case(self, other: Self) -> bool {
        self.eq_ignore_ascii_case(&other)
    }
}

#[cfg(test)]
mod tests;
