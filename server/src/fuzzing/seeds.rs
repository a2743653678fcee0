//! Real inputs to start each fuzz target from: the SigV4 suite's requests, every policy
//! document in the tests and AWS's managed policies, valid tokens under the fixed ring,
//! Query bodies the aws CLI sends, a real export file, the paths of the metadata tree.
//! `scripts/fuzz --seed` writes them into each target's corpus.

use std::{
    io,
    path::{Path, PathBuf},
};

use crate::domain::{credentials::TemporaryCredentials, managed, sigv4::sha256_hex};

/// Each target's name and its seed inputs.
pub type Seeds = Vec<(&'static str, Vec<Vec<u8>>)>;

/// Each target's seeds, read from the repository at `root` where they come from files.
pub fn all(root: &Path) -> io::Result<Seeds> {
    Ok(vec![
        ("policy_document", policies(root)?),
        ("sigv4_request", sigv4_suite(root)?),
        ("session_token", session_tokens()),
        ("imds_token", super::seed_imds_tokens().iter().map(|t| t.clone().into_bytes()).collect()),
        ("query_params", query_bodies()),
        ("grpc_framing", framings()),
        ("export_file", vec![export()]),
        ("imds_path", imds_paths()),
    ])
}

/// Writes the seeds into `corpus/<target>/`, each file named by its content's SHA-256 (so
/// writing again adds nothing); how many files each target has then.
pub fn write(root: &Path, corpus: &Path) -> io::Result<Vec<(&'static str, usize)>> {
    let mut written = Vec::new();
    for (target, inputs) in all(root)? {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for input in &inputs {
            std::fs::write(dir.join(sha256_hex(input)), input)?;
        }
        written.push((target, std::fs::read_dir(&dir)?.count()));
    }
    Ok(written)
}

/// Every AWS managed policy rolecall ships, and every policy document written as a raw
/// string in the server's and the black-box tests' sources.
fn policies(root: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut found: Vec<Vec<u8>> = managed::all().iter().map(|p| p.document.as_bytes().to_vec()).collect();
    for file in sources(&[root.join("server/src"), root.join("tests/blackbox")])? {
        let text = std::fs::read_to_string(&file)?;
        for literal in text.split("r#\"").skip(1).filter_map(|rest| rest.split_once("\"#").map(|(l, _)| l)) {
            let is_policy = serde_json::from_str::<serde_json::Value>(literal)
                .is_ok_and(|v| v.get("Statement").is_some());
            if is_policy {
                found.push(literal.as_bytes().to_vec());
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The `.rs` files under `dirs`, sorted.
pub(crate) fn sources(dirs: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The SigV4 suite's requests: unsigned, signed in the header, presigned.
fn sigv4_suite(root: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut requests = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join("tests/conformance/sigv4/v4"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    cases.sort();
    for case in cases.iter().filter(|c| c.is_dir()) {
        for name in ["request.txt", "header-signed-request.txt", "query-signed-request.txt"] {
            if let Ok(bytes) = std::fs::read(case.join(name)) {
                requests.push(bytes);
            }
        }
    }
    Ok(requests)
}

fn session_tokens() -> Vec<Vec<u8>> {
    super::seed_claims()
        .into_iter()
        .filter_map(|claims| TemporaryCredentials::seal(super::fixed_ring(), claims).ok())
        .map(|creds| creds.session_token.0.into_bytes())
        .collect()
}

/// Query and EC2 requests as the aws CLI sends them (query string, newline, body).
fn query_bodies() -> Vec<Vec<u8>> {
    let role = "Action=CreateRole&Version=2010-05-08&RoleName=Web&Path=%2Fapp%2F&MaxSessionDuration=7200\
                &AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D\
                &Tags.member.1.Key=team&Tags.member.1.Value=web&Tags.member.2.Key=env&Tags.member.2.Value=prod";
    [
        format!("\n{role}"),
        "\nAction=ListRoles&Version=2010-05-08&PathPrefix=%2F&MaxItems=10&Marker=abc".into(),
        "\nAction=UntagRole&Version=2010-05-08&RoleName=Web&TagKeys.member.1=team&TagKeys.member.2=env".into(),
        "\nAction=UpdateRole&Version=2010-05-08&RoleName=Web&Description=d&MaxSessionDuration=3600".into(),
        "\nAction=UpdateAccessKey&Version=2010-05-08&AccessKeyId=AKIAEXAMPLE&Status=Inactive".into(),
        "\nAction=SimulatePrincipalPolicy&Version=2010-05-08\
         &PolicySourceArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FWeb\
         &ActionNames.member.1=s3%3AListBucket&ActionNames.member.2=iam%3ACreateRole\
         &ResourceArns.member.1=arn%3Aaws%3As3%3A%3A%3Abucket\
         &ContextEntries.member.1.ContextKeyName=aws%3ASourceIp&ContextEntries.member.1.ContextKeyType=ip\
         &ContextEntries.member.1.ContextKeyValues.member.1=10.0.0.1"
            .into(),
        "Action=DescribeInstances&Version=2016-11-15\n\
         InstanceId.1=i-0123456789abcdef0&Filter.1.Name=instance-state-name&Filter.1.Value.1=running\
         &Filter.2.Name=iam-instance-profile.arn&Filter.2.Value.1=arn%3Aaws%3Aiam%3A%3A1%3Ainstance-profile%2FWeb"
            .into(),
        "\nAction=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=2\
         &IamInstanceProfile.Name=Web&SecurityGroupId.1=sg-1&MetadataOptions.HttpTokens=required\
         &MetadataOptions.HttpPutResponseHopLimit=2&UserData=ZWNobyBoaQ%3D%3D"
            .into(),
        "\nAction=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FWeb\
         &RoleSessionName=s&DurationSeconds=900&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess"
            .into(),
        "\nAction=ListRoles&Tags.member.1001.Key=k".into(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// gRPC bodies (after the byte that sets the chunk size): one frame, two, a short one, a
/// compressed one, none.
fn framings() -> Vec<Vec<u8>> {
    let frame = |flag: u8, declared: u32, body: &[u8]| {
        let mut bytes = vec![3, flag];
        bytes.extend_from_slice(&declared.to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    };
    let mut two = frame(0, 3, b"abc");
    two.extend_from_within(1..);
    vec![frame(0, 3, b"abc"), frame(0, 0, b""), two, frame(0, 9, b"abc"), frame(1, 3, b"abc"), vec![0]]
}

/// A real export of a small store, under the fixed master key.
fn export() -> Vec<u8> {
    super::runtime().block_on(async {
        let store = super::seed_store().await;
        let mut file = Vec::new();
        let _ = crate::store::transfer::export(&store, &mut file).await;
        file
    })
}

/// Every path of the metadata tree and the credential paths, for each caller.
fn imds_paths() -> Vec<Vec<u8>> {
    let paths = [
        "",
        "/",
        "ami-id",
        "instance-id",
        "placement/",
        "placement/availability-zone",
        "iam/",
        "iam/info",
        "iam/security-credentials/",
        "iam/security-credentials/Web",
        "iam/security-credentials/Web/",
        "iam/security-credentials-extended/",
        "iam/security-credentials-extended/Web",
        "Web",
        "../../latest/meta-data/iam/security-credentials/Web",
        "iam/security-credentials/../../../i-0fedcba9876543210/iam/info",
    ];
    (0u8..8).flat_map(|caller| paths.iter().map(move |p| [&[caller][..], p.as_bytes()].concat())).collect()
}
