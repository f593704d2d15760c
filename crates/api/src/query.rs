//! The AWS query protocol's request side: a form-encoded body (or query string) such as
//! `Action=CreateRule&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a`
//! decoded into [`Form`], read through [`Params`] views that follow the `member.N` list and
//! `Key`/`Value` structure. Failures are `ValidationError`s naming the parameter.

use crate::ApiError;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// ELBv2 and the other query services answer bad input with this code.
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", 400, message)
}

/// Decoded form parameters: name → value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: BTreeMap<String, String>,
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn decode_component(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1)
                    .zip(bytes.get(i + 2))
                    .and_then(|(h, l)| Some(hex(*h)? << 4 | hex(*l)?))
                    .ok_or_else(|| validation(format!("'{raw}' has a malformed percent escape")))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| validation(format!("'{raw}' does not decode to UTF-8")))
}

impl Form {
    /// Decodes `a=1&b=2`; a later duplicate of a name replaces the earlier value.
    pub fn parse(encoded: &[u8]) -> Result<Form, ApiError> {
        let text = std::str::from_utf8(encoded)
            .map_err(|_| validation("the request parameters are not UTF-8"))?;
        let mut form = Form::default();
        form.extend(text)?;
        Ok(form)
    }

    /// Adds the parameters of another encoded string (a query string next to a body).
    pub fn extend(&mut self, encoded: &str) -> Result<(), ApiError> {
        for pair in encoded.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.pairs
                .insert(decode_component(name)?, decode_component(value)?);
        }
        Ok(())
    }

    pub fn root(&self) -> Params<'_> {
        Params {
            form: self,
            prefix: String::new(),
        }
    }
}

/// A view of the parameters under one prefix: the request itself, or one structure in it.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    form: &'a Form,
    /// Empty, or a path ending in `.`, e.g. `Actions.member.1.`.
    prefix: String,
}

impl<'a> Params<'a> {
    /// The full parameter name of `name` here, for messages.
    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn str(&self, name: &str) -> Option<&'a str> {
        self.form.pairs.get(&self.path(name)).map(String::as_str)
    }

    /// A parameter that must be present.
    pub fn required(&self, name: &str) -> Result<&'a str, ApiError> {
        self.str(name)
            .ok_or_else(|| validation(format!("{} is required", self.path(name))))
    }

    /// A number parameter, checked against an inclusive range.
    pub fn int<T>(&self, name: &str, min: i64, max: i64) -> Result<Option<T>, ApiError>
    where
        T: TryFrom<i64>,
    {
        let Some(raw) = self.str(name) else {
            return Ok(None);
        };
        let bad = || {
            validation(format!(
                "{}: '{raw}' is not an integer from {min} to {max}",
                self.path(name)
            ))
        };
        let n = i64::from_str(raw).map_err(|_| bad())?;
        if !(min..=max).contains(&n) {
            return Err(bad());
        }
        T::try_from(n).map(Some).map_err(|_| bad())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(validation(format!(
                "{}: '{other}' is not true or false",
                self.path(name)
            ))),
        }
    }

    /// Whether anything is given under `name` (a value or members of a structure).
    pub fn has(&self, name: &str) -> bool {
        let path = self.path(name);
        let nested = format!("{path}.");
        self.form.pairs.contains_key(&path)
            || self
                .form
                .pairs
                .range(nested.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&nested))
    }

    /// The structure under `name`, when anything is given for it.
    pub fn child(&self, name: &str) -> Option<Params<'a>> {
        self.has(name).then(|| Params {
            form: self.form,
            prefix: format!("{}.", self.path(name)),
        })
    }

    /// The indexes of `name.member.N` in order; `None` when the list is absent (an empty
    /// list is sent as `name=`).
    fn indexes(&self, name: &str) -> Result<Option<Vec<usize>>, ApiError> {
        let path = self.path(name);
        let members = format!("{path}.member.");
        let mut found = BTreeSet::new();
        for (key, _) in self
            .form
            .pairs
            .range(members.clone()..)
            .take_while(|(k, _)| k.starts_with(&members))
        {
            let rest = &key[members.len()..];
            let index = rest.split('.').next().unwrap_or_default();
            match index.parse::<usize>() {
                Ok(n) if n >= 1 && !index.starts_with('0') => {
                    found.insert(n);
                }
                _ => {
                    return Err(validation(format!(
                        "{key}: '{index}' is not a list index (1, 2, …)"
                    )));
                }
            }
        }
        if found.is_empty() {
            return Ok(self.form.pairs.contains_key(&path).then(Vec::new));
        }
        Ok(Some(found.into_iter().collect()))
    }

    /// The structures of the list `name` (`name.member.1.X`, `name.member.2.X`, …).
    pub fn list(&self, name: &str) -> Result<Option<Vec<Params<'a>>>, ApiError> {
        let path = self.path(name);
        Ok(self.indexes(name)?.map(|indexes| {
            indexes
                .into_iter()
                .map(|n| Params {
                    form: self.form,
                    prefix: format!("{path}.member.{n}."),
                })
                .collect()
        }))
    }

    /// The strings of the list `name` (`name.member.1`, …).
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let path = self.path(name);
        let Some(indexes) = self.indexes(name)? else {
            return Ok(None);
        };
        indexes
            .into_iter()
            .map(|n| {
                let key = format!("{path}.member.{n}");
                self.form
                    .pairs
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| validation(format!("{key} must be a string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A list of `Key`/`Value` structures (attributes, query-string pairs) as pairs; a
    /// missing `Value` reads as empty.
    pub fn pairs(&self, name: &str) -> Result<Option<Vec<(String, String)>>, ApiError> {
        let Some(items) = self.list(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|p| {
                Ok((
                    p.required("Key")?.to_string(),
                    p.str("Value").unwrap_or("").to_string(),
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Form {
        Form::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn decodes_percent_escapes_and_plus() {
        let f = form("Action=CreateRule&Name=a%2Fb+c&Path=%2Frandom%2F%2A&Empty=&Flag");
        let p = f.root();
        assert_eq!(p.str("Action"), Some("CreateRule"));
        assert_eq!(p.str("Name"), Some("a/b c"));
        assert_eq!(p.str("Path"), Some("/random/*"));
        assert_eq!(p.str("Empty"), Some(""));
        assert_eq!(p.str("Flag"), Some(""));
        assert_eq!(p.str("Missing"), None);
        assert_eq!(p.required("Missing").unwrap_err().code, "ValidationError");
        assert!(Form::parse(b"a=%zz").is_err());
        assert!(Form::parse(b"a=%e2%82").is_err());
        assert_eq!(decode_component("%E2%82%AC").unwrap(), "€");
    }

    #[test]
    fn reads_nested_lists_in_index_order() {
        let f = form(
            "Actions.member.2.Type=redirect&Actions.member.1.Type=forward\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg1\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3\
             &Actions.member.10.Type=fixed-response\
             &Subnets.member.2=s2&Subnets.member.1=s1&SecurityGroups=",
        );
        let p = f.root();
        let actions = p.list("Actions").unwrap().unwrap();
        let types: Vec<_> = actions.iter().map(|a| a.str("Type").unwrap()).collect();
        assert_eq!(types, ["forward", "redirect", "fixed-response"]);
        let forward = actions[0].child("ForwardConfig").unwrap();
        let tgs = forward.list("TargetGroups").unwrap().unwrap();
        assert_eq!(tgs[0].str("TargetGroupArn"), Some("tg1"));
        assert_eq!(tgs[0].int::<u32>("Weight", 0, 999).unwrap(), Some(3));
        assert_eq!(
            tgs[0].path("Weight"),
            "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight"
        );
        assert!(actions[1].child("ForwardConfig").is_none());
        assert_eq!(p.strings("Subnets").unwrap().unwrap(), ["s1", "s2"]);
        assert_eq!(p.strings("SecurityGroups").unwrap(), Some(vec![]));
        assert_eq!(p.strings("Missing").unwrap(), None);
    }

    #[test]
    fn bad_numbers_indexes_and_booleans_name_the_parameter() {
        let f = form("Port=http&Big=70000&Flag=yes&L.member.0=a&M.member.x.K=1&S.member.1.K=v");
        let p = f.root();
        let e = p.int::<u16>("Port", 1, 65535).unwrap_err();
        assert!(e.message.starts_with("Port:"), "{}", e.message);
        assert!(
            p.int::<u16>("Big", 1, 65535)
                .unwrap_err()
                .message
                .contains("Big")
        );
        assert!(p.bool("Flag").unwrap_err().message.contains("Flag"));
        assert!(p.strings("L").unwrap_err().message.contains("L.member.0"));
        assert!(p.list("M").is_err());
        assert!(p.strings("S").unwrap_err().message.contains("S.member.1"));
    }

    #[test]
    fn reads_key_value_lists() {
        let f =
            form("Attributes.member.1.Key=a&Attributes.member.1.Value=1&Attributes.member.2.Key=b");
        assert_eq!(
            f.root().pairs("Attributes").unwrap().unwrap(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new())
            ]
        );
    }
}
