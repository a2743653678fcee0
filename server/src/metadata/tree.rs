//! What an instance reads besides its credentials: the meta-data tree, iam/info, the
//! identity document and its signature, user data.

use super::*;

/// iam/info.
#[derive(Clone, Debug)]
pub struct IamInfo {
    pub last_updated: i64,
    pub instance_profile_arn: String,
    pub instance_profile_id: String,
}

impl InstanceMetadata {
    /// iam/info (NotFound without a role).
    pub async fn iam_info(&self, caller: &Caller) -> Result<IamInfo> {
        let instance = self.instance(caller).await?;
        iam_info_of(self.role_of(&instance).await?)
    }

    /// Any path of the meta-data tree: a value, or a directory listing (one entry a line,
    /// sub-directories ending in `/`).
    pub async fn metadata(&self, caller: &Caller, path: &str) -> Result<String> {
        let instance = self.instance(caller).await?;
        let role = self.role_of(&instance).await?;
        let path = path.trim_start_matches('/');
        if path == "iam/info" {
            return Ok(iam_info_json(&iam_info_of(role)?));
        }
        if let Some(name) = path.strip_prefix("iam/security-credentials/")
            && !name.is_empty()
        {
            let doc = self.credentials_for(&instance, role, name.trim_end_matches('/')).await?;
            return Ok(credentials_json(&doc, false));
        }
        // What newer SDKs ask first: the same, with AccountId.
        if let Some(name) = path.strip_prefix("iam/security-credentials-extended/") {
            if name.is_empty() {
                return role.map(|(_, r)| r.role_name.clone()).ok_or_else(not_found);
            }
            let doc = self.credentials_for(&instance, role, name.trim_end_matches('/')).await?;
            return Ok(credentials_json(&doc, true));
        }
        let tree = self.tree(&instance, role.as_ref().map(|(_, r)| r.role_name.as_str()));
        lookup(&tree, path).ok_or_else(not_found)
    }

    /// /latest/dynamic/instance-identity/document.
    pub async fn identity_document(&self, caller: &Caller) -> Result<String> {
        let instance = self.instance(caller).await?;
        let settings = instance.catalog.settings();
        Ok(serde_json::json!({
            "accountId": settings.account_id,
            "architecture": "x86_64",
            "availabilityZone": instance.availability_zone,
            "billingProducts": null,
            "devpayProductCodes": null,
            "marketplaceProductCodes": null,
            "imageId": instance.image_id,
            "instanceId": instance.instance_id,
            "instanceType": instance.instance_type,
            "kernelId": null,
            "pendingTime": iso8601(instance.launch_time),
            "privateIp": instance.private_ip_address,
            "ramdiskId": null,
            "region": settings.region,
            "version": "2017-09-30",
        })
        .to_string())
    }

    /// /latest/dynamic/instance-identity/signature: the document's, base64.
    pub async fn identity_signature(&self, caller: &Caller) -> Result<String> {
        let document = self.identity_document(caller).await?;
        self.identity.sign(document.as_bytes())
    }

    /// The public key that checks identity document signatures (PEM).
    pub fn identity_public_key(&self) -> String {
        self.identity.public_key_pem()
    }

    /// /latest/user-data (NotFound where the instance has none).
    pub async fn user_data(&self, caller: &Caller) -> Result<String> {
        let instance = self.instance(caller).await?;
        if instance.user_data.is_empty() {
            return Err(not_found());
        }
        // RunInstances takes it base64-encoded; IMDS serves it decoded.
        let decoded = data_encoding::BASE64.decode(instance.user_data.as_bytes()).ok();
        Ok(decoded.and_then(|d| String::from_utf8(d).ok()).unwrap_or_else(|| instance.user_data.clone()))
    }

    /// The leaves of an instance's meta-data tree.
    fn tree(&self, instance: &Instance, role_name: Option<&str>) -> BTreeMap<String, String> {
        let settings = self.accounts.default_catalog().settings();
        let hostname = format!("ip-{}.ec2.internal", instance.private_ip_address.replace('.', "-"));
        let mut t = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            t.insert(k.to_string(), v);
        };
        put("ami-id", instance.image_id.clone());
        put("ami-launch-index", "0".into());
        put("hostname", hostname.clone());
        put("instance-id", instance.instance_id.clone());
        put("instance-type", instance.instance_type.clone());
        put("local-hostname", hostname);
        put("local-ipv4", instance.private_ip_address.clone());
        put("placement/availability-zone", instance.availability_zone.clone());
        put("placement/region", settings.region.clone());
        put("reservation-id", instance.reservation_id.clone());
        put("security-groups", instance.security_group_ids.join("\n"));
        if let Some(role) = role_name {
            put("iam/info", String::new());
            put(&format!("iam/security-credentials/{role}"), String::new());
        }
        t
    }
}

fn iam_info_of(role: Option<(&Association, Arc<Role>)>) -> Result<IamInfo> {
    let (association, _) = role.ok_or_else(not_found)?;
    Ok(IamInfo {
        last_updated: association.timestamp,
        instance_profile_arn: association.instance_profile_arn.clone(),
        instance_profile_id: association.instance_profile_id.clone(),
    })
}

/// A leaf's value, or a directory's listing.
fn lookup(tree: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let dir = path.trim_end_matches('/');
    if !path.ends_with('/')
        && let Some(v) = tree.get(dir)
    {
        return Some(v.clone());
    }
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut entries: Vec<String> = tree
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .map(|rest| match rest.split_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => rest.to_string(),
        })
        .collect();
    entries.dedup();
    (!entries.is_empty()).then(|| entries.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lookup_lists_directories_like_imds() {
        let mut t = BTreeMap::new();
        for (k, v) in [
            ("ami-id", "ami-1"),
            ("placement/region", "us-east-1"),
            ("placement/availability-zone", "us-east-1a"),
        ] {
            t.insert(k.to_string(), v.to_string());
        }
        assert_eq!(lookup(&t, "ami-id").as_deref(), Some("ami-1"));
        assert_eq!(lookup(&t, "").as_deref(), Some("ami-id\nplacement/"));
        assert_eq!(lookup(&t, "placement/").as_deref(), Some("availability-zone\nregion"));
        assert_eq!(lookup(&t, "placement").as_deref(), Some("availability-zone\nregion"));
        assert_eq!(lookup(&t, "nothing"), None);
    }
}
