//! The parameters of a Query-style request (form-encoded body and query string), with the
//! two ways AWS spells lists in them: `Name.member.N` (the Query protocol of IAM and STS) and
//! `Name.N` (EC2's own protocol).

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
        let values = self.members(name, Some("Value"));
        self.members(name, Some("Key"))
            .into_iter()
            .map(|(n, k)| {
                let v = values.iter().find(|(m, _)| *m == n).map_or("", |(_, v)| v);
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn numbered(&self, prefix: &str, field: Option<&str>) -> Vec<(usize, &str)> {
        let mut found: Vec<(usize, &str)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?;
                let (n, tail) = match rest.split_once('.') {
                    Some((n, tail)) => (n, Some(tail)),
                    None => (rest, None),
                };
                (tail == field).then(|| n.parse().ok().map(|n| (n, v.as_str())))?
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        found
    }

    /// EC2's `Filter.N.Name` with its `Filter.N.Value.M`s.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.indexed("Filter", Some("Name"))
            .into_iter()
            .map(|(n, name)| (name.to_string(), self.indexed_values(&format!("Filter.{n}.Value"))))
            .collect()
    }
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
}
