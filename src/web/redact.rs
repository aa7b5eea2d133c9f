//! Secret redaction for the configuration shown by `/api/v1/status/config` and the status
//! page: every value under a key that holds a secret in Prometheus's configuration model is
//! replaced by `<secret>`, as Prometheus does when it prints its configuration.

/// Keys whose values are secrets (Prometheus's `config.Secret` fields). Paths such as
/// `password_file` are not secrets and stay visible.
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "secret_key",
    "key",
    "api_key",
    "auth_token",
    "secrets",
    "proxy_connect_header",
];

/// The text shown in place of a secret.
pub const REDACTED: &str = "<secret>";

/// Returns `yaml` with every secret value replaced by `<secret>`. Text that is not valid
/// YAML yields an empty string rather than risk showing a secret.
pub fn redact_config_yaml(yaml: &str) -> String {
    if yaml.trim().is_empty() {
        return String::new();
    }
    let mut v: serde_yaml::Value = match serde_yaml::from_str(yaml) {
        Ok(v) => v,
        Err(_) => return String::new(),
    };
    redact(&mut v);
    serde_yaml::to_string(&v).unwrap_or_default()
}

fn redact(v: &mut serde_yaml::Value) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let secret = k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k));
                if secret && !val.is_null() {
                    *val = redacted_like(val);
                } else {
                    redact(val);
                }
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter_mut().for_each(redact),
        serde_yaml::Value::Tagged(t) => redact(&mut t.value),
        _ => {}
    }
}

/// A string becomes `<secret>`; a list or map of secrets keeps its shape with every
/// leaf redacted (for example a header's `secrets: [..]`).
fn redacted_like(v: &serde_yaml::Value) -> serde_yaml::Value {
    match v {
        serde_yaml::Value::Sequence(s) => {
            serde_yaml::Value::Sequence(s.iter().map(redacted_like).collect())
        }
        serde_yaml::Value::Mapping(m) => serde_yaml::Value::Mapping(
            m.iter()
                .map(|(k, v)| (k.clone(), redacted_like(v)))
                .collect(),
        ),
        _ => serde_yaml::Value::String(REDACTED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_the_rest_kept() {
        let yaml = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    \
                    basic_auth:\n      username: bob\n      password: hunter2\n      \
                    password_file: /etc/pw\n    authorization:\n      credentials: tok123\n    \
                    oauth2:\n      client_id: id\n      client_secret: s3cr3t\n    tls_config:\n      \
                    key: PRIVATE\n    http_headers:\n      X-A:\n        secrets: [one, two]\n";
        let out = redact_config_yaml(yaml);
        for leaked in ["hunter2", "tok123", "s3cr3t", "PRIVATE", "one", "two"] {
            assert!(!out.contains(leaked), "{leaked} leaked:\n{out}");
        }
        for kept in [
            "15s",
            "job_name: a",
            "username: bob",
            "/etc/pw",
            "client_id: id",
        ] {
            assert!(out.contains(kept), "{kept} lost:\n{out}");
        }
        assert_eq!(out.matches(REDACTED).count(), 6, "{out}");
    }

    #[test]
    fn unparsable_or_empty_text_shows_nothing() {
        assert_eq!(redact_config_yaml(""), "");
        assert_eq!(redact_config_yaml("password: [unclosed"), "");
    }
}
