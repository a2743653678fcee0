//! The credential report (GenerateCredentialReport, GetCredentialReport): every user and
//! the root user, with the state, age and last use of their keys, as AWS's CSV, so that an
//! operator finds the key that is old, unused or still active (IAM User Guide, "Generate
//! credential reports for your AWS account":
//! docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html). rolecall
//! has no passwords, MFA devices or signing certificates: those columns say so ("false",
//! "N/A"), as they do for a user without them.

use super::*;

/// AWS generates a new report at most every 4 hours, and lets one be read for 4 hours.
const VALID_SECONDS: i64 = 4 * 3600;

/// AWS's columns, in its order.
const COLUMNS: [&str; 22] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// A generated report: when, and its CSV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialReport {
    pub generated_at: i64,
    pub csv: String,
}

/// The report's time format: ISO 8601 with an explicit offset (`2024-01-02T03:04:05+00:00`).
fn when(at: i64) -> String {
    let iso = crate::domain::clock::iso8601(at);
    match iso.strip_suffix('Z') {
        Some(rest) => format!("{rest}+00:00"),
        None => iso,
    }
}

/// A key's last-use columns (date, region, service), "N/A" for a key never used.
fn last_use(used: Option<KeyUse>) -> [String; 3] {
    match used {
        Some(u) => [when(u.at), u.region, u.service],
        None => ["N/A", "N/A", "N/A"].map(str::to_string),
    }
}

/// A CSV field: quoted when it holds a comma or a quote (IAM names may hold commas).
fn field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"']) {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

impl Catalog {
    /// GenerateCredentialReport: a new report unless one under 4 hours old exists; true
    /// when it made one (STARTED), false when the last one stands (COMPLETE).
    pub async fn generate_credential_report(&self) -> Result<bool> {
        let now = self.now();
        if let Some((report, _)) = self.load::<CredentialReport>(keys::CREDENTIAL_REPORT).await?
            && now - report.generated_at < VALID_SECONDS
        {
            return Ok(false);
        }
        let report = CredentialReport { generated_at: now, csv: self.credential_report_csv().await? };
        self.commit(Txn::new().put(keys::CREDENTIAL_REPORT, encode(&report)?)).await?;
        Ok(true)
    }

    /// GetCredentialReport: the last report, if there is one under 4 hours old.
    pub async fn credential_report(&self) -> Result<CredentialReport> {
        let Some((report, _)) = self.load::<CredentialReport>(keys::CREDENTIAL_REPORT).await? else {
            return Err(Error::new(
                crate::domain::ErrorCode::ReportNotPresent,
                "Credential report not present. Call GenerateCredentialReport first.",
            ));
        };
        if self.now() - report.generated_at >= VALID_SECONDS {
            return Err(Error::new(
                crate::domain::ErrorCode::ReportExpired,
                "The credential report is expired. Call GenerateCredentialReport for a new one.",
            ));
        }
        Ok(report)
    }

    async fn credential_report_csv(&self) -> Result<String> {
        let account = &self.settings.account_id;
        let na = || "N/A".to_string();
        let mut rows = vec![COLUMNS.join(",")];
        let root = [
            "<root_account>".to_string(),
            format!("arn:aws:iam::{account}:root"),
            na(),
            "not_supported".into(),
            na(),
            "not_supported".into(),
            "not_supported".into(),
            "false".into(),
        ];
        let no_key = ["false", "N/A", "N/A", "N/A", "N/A"].map(str::to_string);
        let no_certs = ["false", "N/A", "false", "N/A"];
        // The root user's configured key: active, of unknown age, and its last use.
        let root_key = match self.root_access_key_id.get() {
            Some(id) => {
                let mut key = vec!["true".to_string(), na()];
                key.extend(last_use(self.key_last_used(id).await?));
                key
            }
            None => no_key.to_vec(),
        };
        let root_row =
            root.into_iter().chain(root_key).chain(no_key.clone()).chain(no_certs.map(str::to_string));
        rows.push(root_row.collect::<Vec<_>>().join(","));
        for (user, _) in self.records::<User>(keys::USERS).await? {
            let mut row = vec![user.user_name.clone(), user.arn.clone(), when(user.create_date)];
            row.extend(["false", "N/A", "N/A", "N/A", "false"].map(str::to_string));
            for n in 0..2 {
                match user.access_keys.get(n) {
                    Some(key) => {
                        row.push((key.status == AccessKeyStatus::Active).to_string());
                        row.push(when(key.create_date));
                        row.extend(last_use(self.key_last_used(&key.access_key_id).await?));
                    }
                    None => row.extend(no_key.clone()),
                }
            }
            row.extend(no_certs.map(str::to_string));
            rows.push(row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        }
        Ok(rows.join("\n") + "\n")
    }
}
