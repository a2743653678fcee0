//! EC2: instances, their one instance profile association, and their metadata options.

use std::sync::Arc;

use ring::digest;

use super::{Catalog, Page, encode, keys, retrying};
use crate::{
    domain::{
        Error, ErrorCode, Result, ids,
        ids::arn,
        model::{Association, HttpTokens, Instance, InstanceProfile, InstanceState, MetadataOptions},
        validate,
    },
    store::Txn,
};

/// An instance profile named by ARN or by name (IamInstanceProfileSpecification).
#[derive(Clone, Debug, Default)]
pub struct ProfileRef {
    pub arn: String,
    pub name: String,
}

/// The parameters of RunInstances that rolecall models; the rest are recorded.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub image_id: String,
    pub instance_type: String,
    pub min_count: i32,
    pub max_count: i32,
    pub profile: Option<ProfileRef>,
    pub key_name: String,
    pub security_group_ids: Vec<String>,
    pub subnet_id: String,
    pub user_data: String,
    pub http_tokens: String,
    pub hop_limit: Option<i32>,
    pub http_endpoint: String,
}

/// Which instances (or associations) a describe call asks for.
#[derive(Clone, Debug, Default)]
pub struct InstanceFilter {
    pub instance_ids: Vec<String>,
    pub states: Vec<String>,
    pub profile_arns: Vec<String>,
}

/// SHA-256 of an instance key, hex.
pub(crate) fn instance_key_digest(key: &str) -> String {
    data_encoding::HEXLOWER.encode(digest::digest(&digest::SHA256, key.as_bytes()).as_ref())
}

fn instance_not_found(id: &str) -> Error {
    Error::new(ErrorCode::InvalidInstanceIdNotFound, format!("The instance ID '{id}' does not exist"))
}

fn association_not_found(id: &str) -> Error {
    Error::new(ErrorCode::InvalidAssociationIdNotFound, format!("The association {id} does not exist."))
}

fn parse_http_tokens(value: &str, default: HttpTokens) -> Result<HttpTokens> {
    match value {
        "" => Ok(default),
        "optional" => Ok(HttpTokens::Optional),
        "required" => Ok(HttpTokens::Required),
        other => Err(Error::invalid_parameter(format!(
            "Value ({other}) for parameter HttpTokens is invalid. Valid values: optional, required."
        ))),
    }
}

fn parse_http_endpoint(value: &str, default: bool) -> Result<bool> {
    match value {
        "" => Ok(default),
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        other => Err(Error::invalid_parameter(format!(
            "Value ({other}) for parameter HttpEndpoint is invalid. Valid values: enabled, disabled."
        ))),
    }
}

/// EC2's user data limit: 16 KB before base64 encoding.
const USER_DATA_MAX: usize = 16 * 1024;

fn validate_hop_limit(limit: i32) -> Result<i32> {
    if (1..=64).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid_parameter(format!(
            "Value ({limit}) for parameter HttpPutResponseHopLimit is invalid. Valid values: 1-64."
        )))
    }
}

/// The simulated VPC's IPv4 block, from which instances get their private addresses in
/// launch order (as a subnet hands them out), skipping AWS's reserved first four and last.
/// A private network block that is not one rolecall can hand out.
#[derive(Debug, thiserror::Error)]
#[error("{cidr:?} {problem}")]
pub struct CidrError {
    pub cidr: String,
    pub problem: CidrProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum CidrProblem {
    #[error("is not a CIDR block")]
    NotCidr,
    #[error("is not an IPv4 CIDR block")]
    NotIpv4,
    #[error("has no prefix length")]
    NoPrefixLength,
    #[error("has a prefix length outside 8 to 28")]
    PrefixLength,
    #[error("is not on a /{0} boundary")]
    NotOnBoundary(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateNetwork {
    base: u32,
    prefix: u8,
}

impl PrivateNetwork {
    /// `a.b.c.d/n`, with n from 8 to 28 (AWS's VPC sizes allow /16../28; /8 fits fleets
    /// of millions), the address on the block's boundary.
    pub fn parse(cidr: &str) -> std::result::Result<Self, CidrError> {
        let error = |problem| CidrError { cidr: cidr.to_string(), problem };
        let (ip, prefix) = cidr.split_once('/').ok_or_else(|| error(CidrProblem::NotCidr))?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| error(CidrProblem::NotIpv4))?;
        let prefix: u8 = prefix.parse().map_err(|_| error(CidrProblem::NoPrefixLength))?;
        if !(8..=28).contains(&prefix) {
            return Err(error(CidrProblem::PrefixLength));
        }
        let base = u32::from(ip);
        if base & !(u32::MAX << (32 - prefix)) != 0 {
            return Err(error(CidrProblem::NotOnBoundary(prefix)));
        }
        Ok(Self { base, prefix })
    }

    /// The n-th address handed out; None past the end of the block.
    pub fn address(&self, n: u64) -> Option<String> {
        let size = 1u64 << (32 - self.prefix);
        let offset = n.checked_add(4).filter(|o| *o < size - 1)?;
        Some(std::net::Ipv4Addr::from(self.base + offset as u32).to_string())
    }

    pub fn is_loopback(&self) -> bool {
        std::net::Ipv4Addr::from(self.base).is_loopback()
    }
}

impl Default for PrivateNetwork {
    fn default() -> Self {
        Self { base: u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0)), prefix: 8 }
    }
}

/// What every instance of one launch shares.
struct Shape<'a> {
    launch: &'a Launch,
    instance_type: &'a str,
    options: MetadataOptions,
    profile: Option<&'a InstanceProfile>,
}

/// `txn` with a new instance's record, its address and its association written.
fn written(txn: Txn, instance: &Instance) -> Result<Txn> {
    let key = keys::instance(&instance.instance_id);
    let mut txn = txn.require_absent(&key).put(key, encode(instance)?);
    txn = txn.put(keys::address(&instance.private_ip_address), encode(&instance.instance_id)?);
    if let Some(a) = &instance.association {
        txn = txn.put(keys::association(&a.association_id), encode(&instance.instance_id)?);
    }
    Ok(txn)
}

impl Catalog {
    /// The ARN of the role a profile would give an instance, on which EC2 asks the caller
    /// for iam:PassRole; None where the profile does not resolve (the call itself then says
    /// why) or holds no role.
    pub async fn passed_role(&self, spec: &ProfileRef) -> Result<Option<String>> {
        let Ok(profile) = self.resolve_profile(spec).await else { return Ok(None) };
        match profile.roles.first() {
            Some(name) => self.entity_arn(super::iam::EntityKind::Role, name).await,
            None => Ok(None),
        }
    }

    /// Resolves a profile by ARN or name.
    async fn resolve_profile(&self, spec: &ProfileRef) -> Result<Arc<InstanceProfile>> {
        let (name, by_arn) = match (spec.arn.is_empty(), spec.name.is_empty()) {
            (false, _) => {
                let name = arn::instance_profile_name(&spec.arn).ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "Value ({}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN",
                        spec.arn
                    ))
                })?;
                (name.to_string(), true)
            }
            (true, false) => (spec.name.clone(), false),
            (true, true) => {
                return Err(Error::new(
                    ErrorCode::MissingParameter,
                    "The request must contain the parameter iamInstanceProfile.name or iamInstanceProfile.arn",
                ));
            }
        };
        let profile = self.find_instance_profile(&name).await?.filter(|p| !by_arn || p.arn == spec.arn);
        profile.ok_or_else(|| {
            let (field, value) = if by_arn { ("arn", &spec.arn) } else { ("name", &spec.name) };
            Error::invalid_parameter(format!(
                "Value ({value}) for parameter iamInstanceProfile.{field} is invalid. Invalid IAM Instance Profile {field}"
            ))
        })
    }

    fn new_association(&self, profile: &InstanceProfile) -> Association {
        Association {
            association_id: ids::association_id(),
            instance_profile_name: profile.instance_profile_name.clone(),
            instance_profile_arn: profile.arn.clone(),
            instance_profile_id: profile.instance_profile_id.clone(),
            timestamp: self.now(),
        }
    }

    /// Launches instances; each comes back with its instance key (shown only here).
    pub async fn run_instances(&self, launch: Launch) -> Result<(String, Vec<(Instance, String)>)> {
        if launch.image_id.is_empty() {
            return Err(Error::new(
                ErrorCode::MissingParameter,
                "The request must contain the parameter ImageId",
            ));
        }
        let min = if launch.min_count == 0 { 1 } else { launch.min_count };
        let max = if launch.max_count == 0 { min } else { launch.max_count };
        if min < 1 || max < min {
            return Err(Error::invalid_parameter(format!(
                "Value ({min}) for parameter MinCount is invalid. MinCount must be between 1 and MaxCount ({max})."
            )));
        }
        // EC2's limit is on the raw user data, before the base64 the API carries it in.
        let raw_user_data = data_encoding::BASE64
            .decode(launch.user_data.as_bytes())
            .map_or(launch.user_data.len(), |raw| raw.len());
        if raw_user_data > USER_DATA_MAX {
            return Err(Error::invalid_parameter(format!(
                "User data is limited to {USER_DATA_MAX} bytes (got {raw_user_data})"
            )));
        }
        let limit = self.settings.limits.run_instances_max;
        let count = (max as usize).min(limit);
        if count < min as usize {
            return Err(Error::invalid_parameter(format!(
                "Value ({min}) for parameter MinCount is invalid. This server launches at most {limit} instances per call."
            )));
        }
        let default_tokens = if self.settings.default_http_tokens_required {
            HttpTokens::Required
        } else {
            HttpTokens::Optional
        };
        let options = MetadataOptions {
            http_tokens: parse_http_tokens(&launch.http_tokens, default_tokens)?,
            http_put_response_hop_limit: validate_hop_limit(
                launch.hop_limit.unwrap_or(self.settings.default_hop_limit),
            )?,
            http_endpoint_enabled: parse_http_endpoint(&launch.http_endpoint, true)?,
        };
        let profile = match &launch.profile {
            Some(spec) => Some(self.resolve_profile(spec).await?),
            None => None,
        };
        let instance_type = if launch.instance_type.is_empty() {
            "m1.small".to_string()
        } else {
            launch.instance_type.clone()
        };
        let reservation_id = ids::reservation_id();
        let az = format!("{}a", self.settings.region);
        // Writes per instance: the record, its address, its association.
        let per_commit = (self.store.max_writes_per_commit().saturating_sub(1) / 3).max(1);
        if count > per_commit {
            return self
                .run_instances_in_chunks(launch, count, per_commit, options, profile, instance_type)
                .await;
        }
        retrying(|| async {
            let next = self.load::<u64>(keys::NEXT_ADDRESS).await?;
            let (first, mut txn) = match next {
                Some((n, rev)) => (n, Txn::new().require_revision(keys::NEXT_ADDRESS, rev)),
                None => (0, Txn::new().require_absent(keys::NEXT_ADDRESS)),
            };
            txn = txn.put(keys::NEXT_ADDRESS, encode(&(first + count as u64))?);
            let vpc = self.settings.private_network;
            if vpc.address(first + count as u64 - 1).is_none() {
                return Err(Error::new(
                    ErrorCode::InsufficientFreeAddressesInSubnet,
                    format!("There are not enough free addresses in the private network to satisfy the requested number of instances ({count})."),
                ));
            }
            let now = self.now();
            let mut launched = Vec::with_capacity(count);
            for n in 0..count as u64 {
                let shape = Shape { launch: &launch, instance_type: &instance_type, options, profile: profile.as_deref() };
                let address = vpc.address(first + n).unwrap_or_default();
                let (instance, instance_key) = self.new_instance(&shape, address, &reservation_id, &az, now);
                txn = written(txn, &instance)?;
                launched.push((instance, instance_key));
            }
            self.commit(txn).await?;
            Ok((reservation_id.clone(), launched))
        })
        .await
    }

    /// One new instance of a launch, with its instance key.
    fn new_instance(
        &self,
        shape: &Shape<'_>,
        address: String,
        reservation_id: &str,
        az: &str,
        now: i64,
    ) -> (Instance, String) {
        let instance_key = ids::instance_key();
        let launch = shape.launch;
        let instance = Instance {
            instance_id: ids::instance_id(),
            image_id: launch.image_id.clone(),
            instance_type: shape.instance_type.to_string(),
            state: InstanceState::Running,
            launch_time: now,
            private_ip_address: address,
            availability_zone: az.to_string(),
            reservation_id: reservation_id.to_string(),
            key_name: launch.key_name.clone(),
            security_group_ids: launch.security_group_ids.clone(),
            subnet_id: launch.subnet_id.clone(),
            user_data: launch.user_data.clone(),
            metadata_options: shape.options,
            instance_key_sha256: instance_key_digest(&instance_key),
            association: shape.profile.map(|p| self.new_association(p)),
        };
        (instance, instance_key)
    }

    /// A launch larger than one commit may carry (etcd's 128 operations): the addresses are
    /// reserved in one commit, then the instances written in commits of `per_commit`. Each
    /// commit is atomic; a crash between them leaves the launch's first chunks (the
    /// addresses of the rest stay reserved, unused).
    async fn run_instances_in_chunks(
        &self,
        launch: Launch,
        count: usize,
        per_commit: usize,
        options: MetadataOptions,
        profile: Option<Arc<InstanceProfile>>,
        instance_type: String,
    ) -> Result<(String, Vec<(Instance, String)>)> {
        let vpc = self.settings.private_network;
        let first = retrying(|| async {
            let next = self.load::<u64>(keys::NEXT_ADDRESS).await?;
            let (first, txn) = match next {
                Some((n, rev)) => (n, Txn::new().require_revision(keys::NEXT_ADDRESS, rev)),
                None => (0, Txn::new().require_absent(keys::NEXT_ADDRESS)),
            };
            if vpc.address(first + count as u64 - 1).is_none() {
                return Err(Error::new(
                    ErrorCode::InsufficientFreeAddressesInSubnet,
                    format!("There are not enough free addresses in the private network to satisfy the requested number of instances ({count})."),
                ));
            }
            self.commit(txn.put(keys::NEXT_ADDRESS, encode(&(first + count as u64))?)).await?;
            Ok(first)
        })
        .await?;
        let reservation_id = ids::reservation_id();
        let az = format!("{}a", self.settings.region);
        let now = self.now();
        let mut launched = Vec::with_capacity(count);
        for start in (0..count).step_by(per_commit) {
            let mut txn = Txn::new();
            let mut chunk = Vec::with_capacity(per_commit);
            for n in start..(start + per_commit).min(count) {
                let shape = Shape {
                    launch: &launch,
                    instance_type: &instance_type,
                    options,
                    profile: profile.as_deref(),
                };
                let address = vpc.address(first + n as u64).unwrap_or_default();
                let (instance, instance_key) = self.new_instance(&shape, address, &reservation_id, &az, now);
                txn = written(txn, &instance)?;
                chunk.push((instance, instance_key));
            }
            self.commit(txn).await?;
            launched.extend(chunk);
        }
        Ok((reservation_id, launched))
    }

    async fn instance_record(&self, id: &str) -> Result<(Instance, u64)> {
        if !ids::is_instance_id(id) {
            return Err(Error::new(ErrorCode::InvalidInstanceIdMalformed, format!("Invalid id: \"{id}\"")));
        }
        self.load::<Instance>(&keys::instance(id)).await?.ok_or_else(|| instance_not_found(id))
    }

    /// The running instance with this private address.
    pub async fn instance_at(&self, address: &str) -> Result<Option<String>> {
        Ok(self.load::<String>(&keys::address(address)).await?.map(|(id, _)| id))
    }

    /// The instance with this id (None where it does not exist).
    pub async fn find_instance(&self, id: &str) -> Result<Option<Arc<Instance>>> {
        self.load_shared::<Instance>(&keys::instance(id)).await
    }

    pub async fn describe_instances(
        &self,
        filter: &InstanceFilter,
        next_token: &str,
        max_results: Option<i32>,
    ) -> Result<Page<Instance>> {
        let max = validate::max_results(max_results)?;
        let matches = |i: &Instance| {
            (filter.instance_ids.is_empty() || filter.instance_ids.contains(&i.instance_id))
                && (filter.states.is_empty() || filter.states.iter().any(|s| s == i.state.code_and_name().1))
                && (filter.profile_arns.is_empty()
                    || i.association
                        .as_ref()
                        .is_some_and(|a| filter.profile_arns.contains(&a.instance_profile_arn)))
        };
        if !filter.instance_ids.is_empty() && next_token.is_empty() {
            // Named instances must all exist, as in EC2.
            for id in &filter.instance_ids {
                self.instance_record(id).await?;
            }
        }
        self.page_records(keys::INSTANCES, next_token, max, matches).await
    }

    /// Terminates instances: (instance id, previous state, current state) for each.
    pub async fn terminate_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, InstanceState, InstanceState)>> {
        if ids.is_empty() {
            return Err(Error::new(
                ErrorCode::MissingParameter,
                "The request must contain the parameter InstanceId",
            ));
        }
        retrying(|| async {
            let mut txn = Txn::new();
            let mut changes = Vec::with_capacity(ids.len());
            for id in ids {
                let (mut instance, rev) = self.instance_record(id).await?;
                let previous = instance.state;
                if instance.state != InstanceState::Terminated {
                    txn = txn.delete(keys::address(&instance.private_ip_address));
                }
                instance.state = InstanceState::Terminated;
                if let Some(a) = instance.association.take() {
                    txn = txn.delete(keys::association(&a.association_id));
                }
                let key = keys::instance(id);
                txn = txn.require_revision(&key, rev).put(key, encode(&instance)?);
                changes.push((id.clone(), previous, InstanceState::Terminated));
            }
            self.commit(txn).await?;
            Ok(changes)
        })
        .await
    }

    pub async fn associate_iam_instance_profile(
        &self,
        instance_id: &str,
        spec: &ProfileRef,
    ) -> Result<(Instance, Association)> {
        let profile = self.resolve_profile(spec).await?;
        retrying(|| async {
            let (mut instance, rev) = self.instance_record(instance_id).await?;
            if matches!(instance.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
                return Err(Error::new(
                    ErrorCode::IncorrectState,
                    format!("The instance '{instance_id}' is not in a valid state for this operation."),
                ));
            }
            if instance.association.is_some() {
                return Err(Error::new(
                    ErrorCode::IncorrectState,
                    format!("There is an existing association for instance {instance_id}"),
                ));
            }
            let association = self.new_association(&profile);
            instance.association = Some(association.clone());
            let key = keys::instance(instance_id);
            let txn = Txn::new()
                .require_revision(&key, rev)
                .put(key, encode(&instance)?)
                .put(keys::association(&association.association_id), encode(&instance.instance_id)?);
            self.commit(txn).await?;
            Ok((instance, association))
        })
        .await
    }

    async fn instance_of_association(&self, association_id: &str) -> Result<(Instance, u64)> {
        let (instance_id, _) = self
            .load::<String>(&keys::association(association_id))
            .await?
            .ok_or_else(|| association_not_found(association_id))?;
        let (instance, rev) = self
            .load::<Instance>(&keys::instance(&instance_id))
            .await?
            .ok_or_else(|| association_not_found(association_id))?;
        if instance.association.as_ref().is_none_or(|a| a.association_id != association_id) {
            return Err(association_not_found(association_id));
        }
        Ok((instance, rev))
    }

    /// Swaps the profile of a running instance: a new association replaces the old at once.
    pub async fn replace_iam_instance_profile_association(
        &self,
        association_id: &str,
        spec: &ProfileRef,
    ) -> Result<(Instance, Association)> {
        let profile = self.resolve_profile(spec).await?;
        retrying(|| async {
            let (mut instance, rev) = self.instance_of_association(association_id).await?;
            let association = self.new_association(&profile);
            instance.association = Some(association.clone());
            let key = keys::instance(&instance.instance_id);
            let txn = Txn::new()
                .require_revision(&key, rev)
                .put(key, encode(&instance)?)
                .delete(keys::association(association_id))
                .put(keys::association(&association.association_id), encode(&instance.instance_id)?);
            self.commit(txn).await?;
            Ok((instance, association))
        })
        .await
    }

    pub async fn disassociate_iam_instance_profile(
        &self,
        association_id: &str,
    ) -> Result<(Instance, Association)> {
        retrying(|| async {
            let (mut instance, rev) = self.instance_of_association(association_id).await?;
            let Some(association) = instance.association.take() else {
                return Err(association_not_found(association_id));
            };
            let key = keys::instance(&instance.instance_id);
            let txn = Txn::new()
                .require_revision(&key, rev)
                .put(key, encode(&instance)?)
                .delete(keys::association(association_id));
            self.commit(txn).await?;
            Ok((instance, association))
        })
        .await
    }

    /// Current associations: (instance id, association).
    pub async fn describe_iam_instance_profile_associations(
        &self,
        association_ids: &[String],
        instance_ids: &[String],
        next_token: &str,
        max_results: Option<i32>,
    ) -> Result<Page<(String, Association)>> {
        let max = validate::max_results(max_results)?;
        if !association_ids.is_empty() {
            let mut found = Vec::new();
            for id in association_ids {
                let (instance, _) = self.instance_of_association(id).await?;
                if let Some(a) = instance.association {
                    found.push((instance.instance_id, a));
                }
            }
            return super::pages::page_vec(found, next_token, max);
        }
        let page = self
            .page_records(keys::INSTANCES, next_token, max, |i: &Instance| {
                i.association.is_some() && (instance_ids.is_empty() || instance_ids.contains(&i.instance_id))
            })
            .await?;
        let items =
            page.items.into_iter().filter_map(|i| i.association.map(|a| (i.instance_id, a))).collect();
        Ok(Page { items, next_marker: page.next_marker })
    }

    pub async fn modify_instance_metadata_options(
        &self,
        instance_id: &str,
        http_tokens: &str,
        hop_limit: Option<i32>,
        http_endpoint: &str,
    ) -> Result<MetadataOptions> {
        let hop_limit = hop_limit.map(validate_hop_limit).transpose()?;
        retrying(|| async {
            let (mut instance, rev) = self.instance_record(instance_id).await?;
            let mut options = instance.metadata_options;
            options.http_tokens = parse_http_tokens(http_tokens, options.http_tokens)?;
            options.http_endpoint_enabled =
                parse_http_endpoint(http_endpoint, options.http_endpoint_enabled)?;
            if let Some(h) = hop_limit {
                options.http_put_response_hop_limit = h;
            }
            instance.metadata_options = options;
            let key = keys::instance(instance_id);
            self.rewrite(&key, rev, &instance).await?;
            Ok(options)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_unique_and_skip_reserved() {
        let vpc = PrivateNetwork::default();
        assert_eq!(vpc.address(0).unwrap(), "10.0.0.4");
        assert_eq!(vpc.address(252).unwrap(), "10.0.1.0");
        assert_ne!(vpc.address(100_000), vpc.address(100_001));
        let small = PrivateNetwork::parse("172.31.16.0/28").unwrap();
        assert_eq!(small.address(10).unwrap(), "172.31.16.14");
        assert_eq!(small.address(11), None, "the last address is the broadcast");
        assert!(PrivateNetwork::parse("10.0.0.1/8").is_err());
        assert!(PrivateNetwork::parse("10.0.0.0/30").is_err());
        assert!(PrivateNetwork::parse("10.0.0.0").is_err());
        assert!(PrivateNetwork::parse("127.16.0.0/12").unwrap().is_loopback());
    }
}
