//! The parameters of a Query-style request (form-encoded body and query string), with the
//! two ways AWS spells lists in them: `Name.member.N` (the Query protocol of IAM and STS) and
//! `Name.N` (EC2's own protocol).

use std::collections::BTreeMap;

/// The longest list a request may carry.
pub const MAX_LIST_INDEX: usize = 1000;

/// A request's parameters, in the order they came.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The query string's parameters, then the body's.
    pub fn parse(query: &str, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .chain(form_urlencoded::parse(body))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.dedup();
        Self(pairs)
    }

    /// Parameters already split into names and values (the operator's CLI builds them).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// A list index past [`MAX_LIST_INDEX`] anywhere in the parameters (`Name.member.1001`,
    /// `Filter.5.Value.2000`), as an error in AWS's words: lists are bounded before any
    /// work on them, at 1,000 members where AWS documents no smaller bound.
    pub fn check_list_lengths(&self) -> Result<(), crate::domain::Error> {
        for (k, _) in &self.0 {
            let too_long = k
                .split('.')
                .filter(|segment| !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()))
                .any(|index| index.parse::<usize>().map_or(true, |n| n > MAX_LIST_INDEX));
            if too_long {
                let name = k.get(..k.len().min(128)).unwrap_or_default();
                return Err(crate::domain::Error::validation(format!(
                    "1 validation error detected: Value at '{name}' failed to satisfy constraint: \
                     Member must have length less than or equal to {MAX_LIST_INDEX}"
                )));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The parameter, or "".
    pub fn str(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// The parameters but `Action` and `Version`: the operation's own input.
    pub fn input(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter().filter(|(k, _)| k != "Action" && k != "Version")
    }

    /// `Name.member.N` (or `Name.member.N.field`) values, in N's order.
    pub fn members(&self, name: &str, field: Option<&str>) -> Vec<(usize, &str)> {
        self.numbered(&format!("{name}.member."), field)
    }

    /// EC2's `Name.N` (or `Name.N.field`) values, in N's order.
    pub fn indexed(&self, name: &str, field: Option<&str>) -> Vec<(usize, &str)> {
        self.numbered(&format!("{name}."), field)
    }

    /// EC2's `Name.N` values alone.
    pub fn indexed_values(&self, name: &str) -> Vec<String> {
        self.indexed(name, None).into_iter().map(|(_, v)| v.to_string()).collect()
    }

    /// `Tags.member.N.Key`/`.Value` pairs (a missing value is "").
    pub fn tag_members(&self, name: &str) -> Vec<(String, String)> {
        self.groups(&format!("{name}.member."))
            .into_values()
            .filter_map(|fields| {
                let key = field(&fields, "Key")?;
                Some((key.to_string(), field(&fields, "Value").unwrap_or_default().to_string()))
            })
            .collect()
    }

    /// The parameters under `PREFIX.N` (`PREFIX.N` itself and `PREFIX.N.TAIL`), grouped by
    /// N in N's order, each as (TAIL, value) with "" for `PREFIX.N` itself: one pass over the
    /// parameters, so that a list costs what its request is long, not its square.
    pub fn groups(&self, prefix: &str) -> BTreeMap<usize, Vec<(&str, &str)>> {
        let mut groups: BTreeMap<usize, Vec<(&str, &str)>> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(prefix) else { continue };
            let (n, tail) = rest.split_once('.').unwrap_or((rest, ""));
            if let Ok(n) = n.parse() {
                groups.entry(n).or_default().push((tail, v.as_str()));
            }
        }
        groups
    }

    fn numbered(&self, prefix: &str, field: Option<&str>) -> Vec<(usize, &str)> {
        let wanted = field.unwrap_or_default();
        self.groups(prefix)
            .into_iter()
            .filter_map(|(n, fields)| fields.iter().find(|(tail, _)| *tail == wanted).map(|(_, v)| (n, *v)))
            .collect()
    }

    /// EC2's `Filter.N.Name` with its `Filter.N.Value.M`s.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.groups("Filter.")
            .into_values()
            .filter_map(|fields| {
                let name = field(&fields, "Name")?;
                Some((name.to_string(), numbered_tails(&fields, "Value.")))
            })
            .collect()
    }
}

/// The value of `tail` in a group.
pub fn field<'a>(fields: &[(&str, &'a str)], tail: &str) -> Option<&'a str> {
    fields.iter().find(|(t, _)| *t == tail).map(|(_, v)| *v)
}

/// A group's `PREFIX.M` values (`Value.1`, `Value.2`, …), in M's order.
pub fn numbered_tails(fields: &[(&str, &str)], prefix: &str) -> Vec<String> {
    let mut values: Vec<(usize, &str)> =
        fields.iter().filter_map(|(tail, v)| Some((tail.strip_prefix(prefix)?.parse().ok()?, *v))).collect();
    values.sort_by_key(|(m, _)| *m);
    values.into_iter().map(|(_, v)| v.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_both_spellings_come_in_index_order() {
        let p = Params::parse(
            "Action=X",
            b"InstanceId.2=i-b&InstanceId.1=i-a&Tags.member.1.Key=k&Tags.member.1.Value=v&Tags.member.2.Key=e\
              &Filter.1.Name=state&Filter.1.Value.1=running&Filter.1.Value.2=pending&InstanceIdX=no",
        );
        assert_eq!(p.indexed_values("InstanceId"), ["i-a", "i-b"]);
        assert_eq!(p.tag_members("Tags"), [("k".into(), "v".into()), ("e".into(), String::new())]);
        assert_eq!(p.filters(), [("state".to_string(), vec!["running".to_string(), "pending".to_string()])]);
        assert_eq!(p.get("Action"), Some("X"));
        assert_eq!(p.input().count(), 9);
    }

    #[test]
    fn lists_stop_at_1000_members() {
        let ok = Params::parse("", b"Tags.member.1000.Key=k&Filter.1.Value.1000=v&Version=2010-05-08");
        assert!(ok.check_list_lengths().is_ok());
        for body in [
            &b"ContextEntries.member.1001.ContextKeyName=k"[..],
            b"Filter.1.Value.99999999999999999999999=v",
            b"InstanceId.1001=i-a",
        ] {
            let err = Params::parse("", body).check_list_lengths().unwrap_err();
            assert_eq!(err.code, crate::domain::ErrorCode::ValidationError, "{err:?}");
        }
    }
}
