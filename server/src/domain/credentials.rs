//! Temporary credentials: an `ASIA…` key id, a secret, and a session token that seals
//! (AES-256-GCM, under the key ring) everything needed to verify them later with no lookup.
//! The secret access key travels inside the sealed token, so only the server can recover it.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use ring::digest;

use super::{Error, Result, ids, keyring::KeyRing, model::Secret};

/// The first byte of every session token: its format version (2: binary claims).
const TOKEN_VERSION: u8 = 2;
const TOKEN_AAD: &[u8] = b"rolecall/session-token/v2";

/// What a session token carries (sealed: nobody but the server reads it).
#[derive(Clone)]
pub struct SessionClaims {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub account_id: String,
    pub role_arn: String,
    /// The role's unique id: a role deleted and re-created under the same name has another.
    pub role_id: String,
    pub session_name: String,
    pub instance_id: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// AssumeRole's session policies: they intersect with the role's.
    pub session: SessionScope,
}

/// What an AssumeRole caller passed to narrow or label its session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionScope {
    /// The inline session policy (empty: none).
    pub policy: String,
    /// Managed session policies, by ARN.
    pub policy_arns: Vec<String>,
    /// Session tags (aws:PrincipalTag, over the role's own tags).
    pub tags: Vec<(String, String)>,
}

impl SessionScope {
    /// Whether session policies limit the session.
    pub fn limits(&self) -> bool {
        !self.policy.is_empty() || !self.policy_arns.is_empty()
    }
}

/// Credentials as handed to an instance.
#[derive(Clone)]
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// When issued credentials are replaced, as AWS does: a lifetime (6 h), a rotation point
/// (1 h after issue, less a per-instance jitter) and a floor of time left (15 min, botocore's
/// advisory window) below which credentials are never handed out. Credentials fetched in the
/// last `prefetch_secs` before their rotation point are replaced in the background (kiam
/// prefetches 5 min ahead), so a fleet whose rotation points coincide does not queue its
/// fetches behind issuance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    pub lifetime_secs: i64,
    /// Simulation only: 0 makes every fetch issue new credentials.
    pub rotate_after_secs: i64,
    pub jitter_secs: i64,
    pub min_remaining_secs: i64,
    /// How long before its rotation point a fetched credential is replaced in the
    /// background; 0 turns prefetching off.
    pub prefetch_secs: i64,
    /// Simulation only: rotation points fall on multiples of `rotate_after_secs` (no
    /// jitter), so a whole fleet crosses one at the same second (a rotation storm).
    pub synchronized: bool,
}

impl Default for RotationSchedule {
    fn default() -> Self {
        Self {
            lifetime_secs: 6 * 3600,
            rotate_after_secs: 3600,
            jitter_secs: 600,
            min_remaining_secs: 15 * 60,
            prefetch_secs: 5 * 60,
            synchronized: false,
        }
    }
}

// === impl RotationSchedule ===

impl RotationSchedule {
    /// Checks the schedule is one an SDK can live with. `simulation` allows lifetimes below
    /// the SDKs' refresh windows (for refresh load tests), which real clients would refresh
    /// on every call.
    pub fn validate(&self, simulation: bool) -> Result<()> {
        if self.lifetime_secs <= 0
            || self.rotate_after_secs < 0
            || self.jitter_secs < 0
            || self.min_remaining_secs < 0
            || self.prefetch_secs < 0
        {
            return Err(Error::invalid_parameter("credential lifetimes must be positive"));
        }
        if !simulation && (self.rotate_after_secs == 0 || self.synchronized) {
            return Err(Error::invalid_parameter(
                "rotate_after_secs = 0 and synchronized rotation need the simulation setting short_credentials",
            ));
        }
        if self.synchronized && self.rotate_after_secs == 0 {
            return Err(Error::invalid_parameter("synchronized rotation needs rotate_after_secs > 0"));
        }
        if self.rotate_after_secs > 0
            && self.prefetch_secs > 0
            && self.prefetch_secs + self.jitter_secs >= self.rotate_after_secs
        {
            return Err(Error::invalid_parameter(format!(
                "prefetch_secs ({}) plus rotation_jitter_secs ({}) must be below rotate_after_secs ({}); \
                 lower prefetch_secs, or set it to 0 to turn prefetching off",
                self.prefetch_secs, self.jitter_secs, self.rotate_after_secs
            )));
        }
        if self.rotate_after_secs > self.lifetime_secs {
            return Err(Error::invalid_parameter("credentials must rotate before they expire"));
        }
        if !simulation {
            if self.lifetime_secs < 900 {
                return Err(Error::invalid_parameter(
                    "credential lifetime below 900 s (AWS's minimum) needs the simulation setting short_credentials",
                ));
            }
            if self.lifetime_secs - self.rotate_after_secs < self.min_remaining_secs {
                return Err(Error::invalid_parameter(format!(
                    "credentials must rotate with at least {} s left (botocore's refresh window); \
                     shorter needs the simulation setting short_credentials",
                    self.min_remaining_secs
                )));
            }
        }
        Ok(())
    }

    /// A stable per-instance offset in [0, jitter): a fleet launched together does not
    /// rotate together.
    pub fn jitter_for(&self, instance_id: &str) -> i64 {
        if self.jitter_secs == 0 {
            return 0;
        }
        let d = digest::digest(&digest::SHA256, instance_id.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d.as_ref()[..8]);
        (u64::from_be_bytes(b) % self.jitter_secs as u64) as i64
    }

    /// When credentials issued at `issued_at` for this instance stop being handed out.
    pub fn rotate_at(&self, issued_at: i64, expires_at: i64, instance_id: &str) -> i64 {
        let planned = if self.synchronized {
            let next = (issued_at / self.rotate_after_secs + 1) * self.rotate_after_secs;
            // Prefetched just before a rotation point: good until the one after it.
            if next - issued_at <= self.prefetch_secs { next + self.rotate_after_secs } else { next }
        } else {
            issued_at + self.rotate_after_secs - self.jitter_for(instance_id)
        };
        planned.min(expires_at - self.min_remaining_secs).max(issued_at)
    }

    /// From when a credential rotating at `rotate_at` is replaced in the background, if it is
    /// fetched (never, when prefetching is off or every fetch issues anyway).
    pub fn prefetch_from(&self, rotate_at: i64) -> i64 {
        if self.prefetch_secs == 0 || self.rotate_after_secs == 0 {
            return i64::MAX;
        }
        rotate_at - self.prefetch_secs
    }
}

// === impl TemporaryCredentials ===

impl TemporaryCredentials {
    /// Mints credentials for `claims` (whose key id and secret it fills in) and seals them.
    pub fn issue(ring: &KeyRing, mut claims: SessionClaims) -> Result<Self> {
        let (access_key_id, secret_access_key) = ids::temporary_key_pair();
        claims.access_key_id = access_key_id;
        claims.secret_access_key = Secret(secret_access_key);
        Self::seal(ring, claims)
    }

    /// Seals `claims` as they are, with the key id and secret they carry.
    pub fn seal(ring: &KeyRing, claims: SessionClaims) -> Result<Self> {
        let plain = encode_claims(&claims)?;
        let (key_id, sealed) = ring.seal(TOKEN_AAD, &plain)?;
        let mut token = Vec::with_capacity(5 + sealed.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&key_id.to_be_bytes());
        token.extend_from_slice(&sealed);
        Ok(Self {
            access_key_id: claims.access_key_id,
            secret_access_key: claims.secret_access_key,
            session_token: Secret(BASE64URL_NOPAD.encode(&token)),
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
        })
    }
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a session token was refused (AWS's codes: InvalidClientTokenId, ExpiredToken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a token we made, tampered with, or sealed by a key no longer held.
    Invalid,
    Expired,
}

/// Opens a session token and checks it is unexpired at `now`.
pub fn open_session_token(
    ring: &KeyRing,
    token: &str,
    now: i64,
) -> Result<Result<SessionClaims, TokenRejection>> {
    let Ok(raw) = BASE64URL_NOPAD.decode(token.as_bytes()) else { return Ok(Err(TokenRejection::Invalid)) };
    if raw.len() < 5 || raw[0] != TOKEN_VERSION {
        return Ok(Err(TokenRejection::Invalid));
    }
    let key_id = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let Some(plain) = ring.open(TOKEN_AAD, key_id, &raw[5..])? else {
        return Ok(Err(TokenRejection::Invalid));
    };
    let Some(claims) = decode_claims(&plain) else { return Ok(Err(TokenRejection::Invalid)) };
    if now >= claims.expires_at {
        return Ok(Err(TokenRejection::Expired));
    }
    Ok(Ok(claims))
}

/// The claims as sealed: two timestamps, then length-prefixed (u16) strings. Compact, so
/// that tokens stay short on the wire and in the cache: nothing derivable is stored. The
/// account comes from the role ARN, the principal ARN from the account, the role's name and
/// the session name, and the session name is stored only where it is not the instance id.
/// An AssumeRole session's policies and tags follow only where there are any: the inline
/// policy, then a count (u8) of policy ARNs and the ARNs, then a count of tags and the
/// key/value pairs.
fn encode_claims(c: &SessionClaims) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(&c.issued_at.to_be_bytes());
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    let instance = c.instance_id.as_deref().unwrap_or("");
    let session = if c.session_name == instance { "" } else { c.session_name.as_str() };
    for field in [
        c.access_key_id.as_str(),
        c.secret_access_key.0.as_str(),
        c.role_arn.as_str(),
        c.role_id.as_str(),
        instance,
        session,
    ] {
        push_string(&mut out, field)?;
    }
    let s = &c.session;
    if s.limits() || !s.tags.is_empty() {
        push_string(&mut out, &s.policy)?;
        out.push(
            u8::try_from(s.policy_arns.len()).map_err(|_| Error::service_failure("too many policy ARNs"))?,
        );
        for arn in &s.policy_arns {
            push_string(&mut out, arn)?;
        }
        out.push(u8::try_from(s.tags.len()).map_err(|_| Error::service_failure("too many session tags"))?);
        for (k, v) in &s.tags {
            push_string(&mut out, k)?;
            push_string(&mut out, v)?;
        }
    }
    Ok(out)
}

/// Reads sealed claims front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        String::from_utf8(self.take(usize::from(len))?.to_vec()).ok()
    }
}

fn push_string(out: &mut Vec<u8>, field: &str) -> Result<()> {
    let len = u16::try_from(field.len()).map_err(|_| Error::service_failure("claim too long to seal"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_bytes());
    Ok(())
}

fn decode_claims(bytes: &[u8]) -> Option<SessionClaims> {
    let mut r = Reader(bytes);
    let issued_at = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let expires_at = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let access_key_id = r.string()?;
    let secret_access_key = Secret(r.string()?);
    let role_arn = r.string()?;
    let role_id = r.string()?;
    let instance = r.string()?;
    let session = r.string()?;
    let mut scope = SessionScope::default();
    if !r.0.is_empty() {
        scope.policy = r.string()?;
        for _ in 0..r.take(1)?[0] {
            scope.policy_arns.push(r.string()?);
        }
        for _ in 0..r.take(1)?[0] {
            scope.tags.push((r.string()?, r.string()?));
        }
    }
    if !r.0.is_empty() {
        return None;
    }
    // arn:aws:iam::ACCOUNT:role/...
    let account_id = role_arn.split(':').nth(4).filter(|a| !a.is_empty())?.to_string();
    let session_name = if session.is_empty() { instance.clone() } else { session };
    let instance_id = Some(instance).filter(|i| !i.is_empty());
    Some(SessionClaims {
        access_key_id,
        secret_access_key,
        account_id,
        role_arn,
        role_id,
        session_name,
        instance_id,
        issued_at,
        expires_at,
        session: scope,
    })
}

impl SessionClaims {
    /// The claims of an instance's session of its role (the session name is the instance
    /// id, as EC2 names it), ready for [`TemporaryCredentials::issue`] to add a key.
    pub fn for_instance(
        account_id: &str,
        role_arn: &str,
        role_id: &str,
        instance_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Self {
        Self {
            access_key_id: String::new(),
            secret_access_key: Secret(String::new()),
            account_id: account_id.to_string(),
            role_arn: role_arn.to_string(),
            role_id: role_id.to_string(),
            session_name: instance_id.to_string(),
            instance_id: Some(instance_id.to_string()),
            issued_at,
            expires_at,
            session: SessionScope::default(),
        }
    }

    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`: derived, never sealed.
    pub fn principal_arn(&self) -> String {
        let role_name = self.role_arn.rsplit('/').next().unwrap_or_default();
        ids::arn::assumed_role(&self.account_id, role_name, &self.session_name)
    }
}

impl fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClaims")
            .field("access_key_id", &self.access_key_id)
            .field("principal_arn", &self.principal_arn())
            .field("role_id", &self.role_id)
            .field("instance_id", &self.instance_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keyring::KeyRingPolicy;

    fn claims(now: i64) -> SessionClaims {
        SessionClaims::for_instance(
            "123456789012",
            "arn:aws:iam::123456789012:role/R",
            "AROAEXAMPLEEXAMPLE123",
            "i-0123456789abcdef0",
            now,
            now + 3600,
        )
    }

    #[test]
    fn session_policies_and_tags_are_sealed_and_instance_tokens_stay_compact() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let plain = TemporaryCredentials::issue(&ring, claims(0)).unwrap();
        let mut scoped = claims(0);
        scoped.instance_id = None;
        scoped.session_name = "build-42".into();
        scoped.session = SessionScope {
            policy: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            tags: vec![("team".into(), "blue".into())],
        };
        let creds = TemporaryCredentials::issue(&ring, scoped.clone()).unwrap();
        let opened = open_session_token(&ring, &creds.session_token.0, 1).unwrap().unwrap();
        assert_eq!(opened.session, scoped.session);
        assert_eq!(opened.session_name, "build-42");
        assert_eq!(opened.instance_id, None);
        assert!(creds.session_token.0.len() > plain.session_token.0.len() + 100);
        let reopened = open_session_token(&ring, &plain.session_token.0, 1).unwrap().unwrap();
        assert_eq!(reopened.session, SessionScope::default());
    }

    #[test]
    fn issue_then_open_recovers_the_secret() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let creds = TemporaryCredentials::issue(&ring, claims(1000)).unwrap();
        assert!(creds.access_key_id.starts_with("ASIA"));
        let opened = open_session_token(&ring, &creds.session_token.0, 1001).unwrap().unwrap();
        assert_eq!(opened.secret_access_key, creds.secret_access_key);
        assert_eq!(opened.access_key_id, creds.access_key_id);
        let original = claims(1000);
        assert_eq!(opened.principal_arn(), "arn:aws:sts::123456789012:assumed-role/R/i-0123456789abcdef0");
        assert_eq!(
            (opened.role_arn, opened.role_id, opened.instance_id, opened.issued_at, opened.expires_at),
            (original.role_arn, original.role_id, original.instance_id, 1000, 4600)
        );
        // Compact: far below the ~600 characters JSON claims made.
        assert!(creds.session_token.0.len() < 400, "{}", creds.session_token.0.len());
        assert_eq!(
            open_session_token(&ring, &creds.session_token.0, 4600).unwrap().unwrap_err(),
            TokenRejection::Expired
        );
        // Another server's ring cannot open it; neither can a mangled token.
        let other = KeyRing::new(KeyRingPolicy::default(), 0);
        assert_eq!(
            open_session_token(&other, &creds.session_token.0, 1001).unwrap().unwrap_err(),
            TokenRejection::Invalid
        );
        let mut bad = creds.session_token.0.clone();
        bad.replace_range(20..21, if &bad[20..21] == "A" { "B" } else { "A" });
        assert_eq!(open_session_token(&ring, &bad, 1001).unwrap().unwrap_err(), TokenRejection::Invalid);
        assert_eq!(open_session_token(&ring, "!!", 1001).unwrap().unwrap_err(), TokenRejection::Invalid);
    }

    #[test]
    fn truncated_claims_do_not_decode() {
        let mut c = claims(5);
        c.access_key_id = "ASIAEXAMPLE".into();
        let bytes = encode_claims(&c).unwrap();
        assert!(decode_claims(&bytes).is_some());
        for cut in 0..bytes.len() {
            assert!(decode_claims(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        c.instance_id = None;
        assert_eq!(decode_claims(&encode_claims(&c).unwrap()).unwrap().instance_id, None);
    }

    mod props {
        use data_encoding::BASE64URL_NOPAD;
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = super::super::decode_claims(&bytes);
            }

            /// Issue 14: any change to a sealed session token is refused, never opened to
            /// other claims.
            #[test]
            fn any_changed_byte_of_a_session_token_is_refused(
                at in any::<prop::sample::Index>(),
                mask in 1u8..,
            ) {
                let ring = KeyRing::new(KeyRingPolicy::default(), 0);
                let creds = TemporaryCredentials::issue(&ring, claims(0)).unwrap();
                let opened = open_session_token(&ring, &creds.session_token.0, 10).unwrap();
                prop_assert!(opened.is_ok());
                let mut raw = BASE64URL_NOPAD.decode(creds.session_token.0.as_bytes()).unwrap();
                let i = at.index(raw.len());
                raw[i] ^= mask;
                let changed = open_session_token(&ring, &BASE64URL_NOPAD.encode(&raw), 10).unwrap();
                prop_assert!(matches!(changed, Err(TokenRejection::Invalid)), "{:?}", changed.map(|c| c.access_key_id));
            }
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let creds = TemporaryCredentials::issue(&ring, claims(0)).unwrap();
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&creds.secret_access_key.0));
        assert!(!shown.contains(&creds.session_token.0));
    }

    #[test]
    fn schedule_rotates_early_with_jitter_and_floor() {
        let s = RotationSchedule::default();
        s.validate(false).unwrap();
        let at = s.rotate_at(0, s.lifetime_secs, "i-0123456789abcdef0");
        assert!(at <= 3600 && at > 3600 - 600, "{at}");
        let jitters: std::collections::HashSet<i64> =
            (0..50).map(|n| s.jitter_for(&format!("i-{n:017x}"))).collect();
        assert!(jitters.len() > 40, "jitter spreads a fleet");
        // Never hand out less than the floor.
        let short = RotationSchedule {
            lifetime_secs: 1000,
            rotate_after_secs: 990,
            jitter_secs: 0,
            min_remaining_secs: 900,
            prefetch_secs: 0,
            synchronized: false,
        };
        assert!(short.validate(false).is_err());
        assert!(short.validate(true).is_ok());
        assert_eq!(short.rotate_at(0, 1000, "i-1"), 100);
        // Every fetch issues (refresh load), only in simulation.
        let every = RotationSchedule { rotate_after_secs: 0, ..short };
        assert!(every.validate(false).is_err());
        assert!(every.validate(true).is_ok());
        assert_eq!(every.rotate_at(50, 1000, "i-1"), 50);
        // A storm: everyone issued within one window rotates at its end.
        let storm = RotationSchedule {
            lifetime_secs: 600,
            rotate_after_secs: 30,
            min_remaining_secs: 0,
            synchronized: true,
            ..short
        };
        assert!(storm.validate(false).is_err());
        storm.validate(true).unwrap();
        assert_eq!(storm.rotate_at(61, 661, "i-1"), 90);
        assert_eq!(storm.rotate_at(89, 689, "i-2"), 90);
        // Prefetched within 5 s of a storm's rotation point: good until the next one.
        let prefetching = RotationSchedule { prefetch_secs: 5, ..storm };
        prefetching.validate(true).unwrap();
        assert_eq!(prefetching.rotate_at(84, 684, "i-1"), 90);
        assert_eq!(prefetching.rotate_at(85, 685, "i-1"), 120);
        assert_eq!(prefetching.prefetch_from(90), 85);
        assert_eq!(storm.prefetch_from(90), i64::MAX, "off at 0");
    }

    #[test]
    fn prefetching_must_leave_room_before_rotation() {
        let mut s = RotationSchedule::default();
        assert_eq!(s.prefetch_from(3000), 2700);
        s.prefetch_secs = 3000;
        let e = s.validate(false).unwrap_err();
        assert!(e.message.contains("prefetch_secs (3000)"), "{}", e.message);
        s.prefetch_secs = -1;
        assert!(s.validate(false).is_err());
        // Every fetch issuing: nothing to prefetch.
        let every = RotationSchedule { rotate_after_secs: 0, jitter_secs: 0, prefetch_secs: 300, ..s };
        every.validate(true).unwrap();
        assert_eq!(every.prefetch_from(10), i64::MAX);
    }
}
