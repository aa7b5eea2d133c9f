//! The Go `text/template` subset used by Prometheus rule files: `{{ $labels.x }}`,
//! `{{ $value }}`, `{{ .Labels.x }}`, `if`/`else`/`range`/`with`, variables, pipelines, and
//! Prometheus's template functions (`humanize`, `printf`, `query`, ...).
//!
//! [`Template::parse`] reports syntax errors; [`Template::execute`] never panics and returns
//! an error string for run-time failures (unknown function, bad argument types, failed
//! query).

mod exec;
mod format;
mod parse;

use std::collections::BTreeMap;

pub use format::{go_format_e, go_format_g, go_format_v, humanize, humanize_duration};

/// A template failed to parse or to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The text is not a valid template.
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        /// The template's name.
        name: String,
        /// 1-based line in the template text.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Executing the template failed.
    #[error("template: {name}: {msg}")]
    Exec {
        /// The template's name.
        name: String,
        /// What went wrong.
        msg: String,
    },
}

/// A query result element seen by templates (`.Labels`, `.Value`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A value inside template execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer constant.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A map with string keys (label sets, the data dot).
    Map(BTreeMap<String, Value>),
    /// A list (query results).
    List(Vec<Value>),
    /// One query result element.
    Sample(QuerySample),
}

impl Value {
    /// A string map from label pairs.
    pub fn label_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                .collect(),
        )
    }
}

/// Runs a PromQL instant query for the `query` function.
pub type QueryFn<'a> = &'a dyn Fn(&str) -> Result<Vec<QuerySample>, String>;

/// What a rule template sees: `$labels`, `$value`, `$externalLabels`, `$externalURL` and
/// the same as fields of `.`.
#[derive(Default)]
pub struct TemplateData<'a> {
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// The alert's value.
    pub value: f64,
    /// External labels from the configuration.
    pub external_labels: BTreeMap<String, String>,
    /// `--web.external-url`.
    pub external_url: String,
    /// Runs `query`; without it `query` fails with an error.
    pub query: Option<QueryFn<'a>>,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `text`; `name` appears in error messages.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(text).map_err(|(line, msg)| TemplateError::Parse {
            name: name.to_string(),
            line,
            msg,
        })?;
        if let Some(f) = exec::unknown_function(&nodes) {
            return Err(TemplateError::Parse {
                name: name.to_string(),
                line: 1,
                msg: format!("function {f:?} not defined"),
            });
        }
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// Executes with `data` and returns the output.
    pub fn execute(&self, data: &TemplateData<'_>) -> Result<String, TemplateError> {
        let to_map = |m: &BTreeMap<String, String>| {
            Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                    .collect(),
            )
        };
        let labels = to_map(&data.labels);
        let ext = to_map(&data.external_labels);
        let mut dot = BTreeMap::new();
        dot.insert("Labels".to_string(), labels.clone());
        dot.insert("ExternalLabels".to_string(), ext.clone());
        dot.insert(
            "ExternalURL".to_string(),
            Value::Str(data.external_url.clone()),
        );
        dot.insert("Value".to_string(), Value::Float(data.value));
        let vars = vec![
            ("$".to_string(), Value::Map(dot.clone())),
            ("$labels".to_string(), labels),
            ("$externalLabels".to_string(), ext),
            (
                "$externalURL".to_string(),
                Value::Str(data.external_url.clone()),
            ),
            ("$value".to_string(), Value::Float(data.value)),
        ];
        let mut ex = exec::Exec {
            vars,
            out: String::new(),
            query: data.query,
            external_url: &data.external_url,
            steps: 0,
        };
        ex.run(&self.nodes, &Value::Map(dot))
            .map_err(|msg| TemplateError::Exec {
                name: self.name.clone(),
                msg,
            })?;
        Ok(ex.out)
    }
}

/// Parses and runs `text` in one step.
pub fn expand(name: &str, text: &str, data: &TemplateData<'_>) -> Result<String, TemplateError> {
    Template::parse(name, text)?.execute(data)
}

#[cfg(test)]
mod tests;
