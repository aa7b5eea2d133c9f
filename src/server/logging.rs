//! Structured logging in logfmt or JSON, one line per event, with the fields Prometheus
//! users grep for: `ts`, `level`, `component`, `msg` (and `err` when a message carries one).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::model::time::format_rfc3339_ms;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `ts=... level=info component=tsdb msg="..."`
    Logfmt,
    /// One JSON object per line.
    Json,
}

struct Logger {
    format: LogFormat,
    level: LevelFilter,
}

/// Installs the process-wide logger. `level` is one of debug, info, warn, error.
pub fn init(level: &str, format: LogFormat) -> Result<(), String> {
    let level = match level {
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        other => return Err(format!("unrecognized log level {other:?}")),
    };
    log::set_boxed_logger(Box::new(Logger { format, level }))
        .map_err(|e| format!("cannot install logger: {e}"))?;
    log::set_max_level(level);
    Ok(())
}

/// The component name for a log target (`aion::wal::reader` → `wal`).
fn component(target: &str) -> &str {
    let mut parts = target.split("::");
    match (parts.next(), parts.next()) {
        (Some("aion"), Some(c)) => c,
        (Some(c), _) => c,
        _ => target,
    }
}

fn logfmt_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c == ' ' || c == '"' || c == '=' || c.is_control()) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// Renders one line (without the newline).
fn render(format: LogFormat, ts_ms: i64, level: Level, target: &str, msg: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let comp = component(target);
    // "...: err=<text>" convention: split a trailing error out into its own field.
    let (msg, err) = match msg.split_once(" err=") {
        Some((m, e)) => (m, Some(e)),
        None => (msg, None),
    };
    match format {
        LogFormat::Logfmt => {
            let mut s = format!(
                "ts={} level={level} component={} msg={}",
                format_rfc3339_ms(ts_ms),
                logfmt_value(comp),
                logfmt_value(msg)
            );
            if let Some(e) = err {
                s.push_str(&format!(" err={}", logfmt_value(e)));
            }
            s
        }
        LogFormat::Json => {
            let mut obj = serde_json::json!({
                "ts": format_rfc3339_ms(ts_ms),
                "level": level,
                "component": comp,
                "msg": msg,
            });
            if let (Some(e), Some(map)) = (err, obj.as_object_mut()) {
                map.insert("err".into(), serde_json::Value::String(e.to_string()));
            }
            obj.to_string()
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let line = render(
            self.format,
            ts,
            record.level(),
            record.target(),
            &record.args().to_string(),
        );
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_line() {
        let l = render(
            LogFormat::Logfmt,
            0,
            Level::Warn,
            "aion::wal::reader",
            "cut torn tail err=bad crc",
        );
        assert_eq!(l, "ts=1970-01-01T00:00:00.000Z level=warn component=wal msg=\"cut torn tail\" err=\"bad crc\"");
    }

    #[test]
    fn json_line() {
        let l = render(LogFormat::Json, 0, Level::Info, "aion::server", "ready");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["component"], "server");
        assert_eq!(v["msg"], "ready");
    }
}
