//! A parser of the Prometheus text exposition, both the classic format (0.0.4) and
//! OpenMetrics text (`# EOF`, `# UNIT`, exemplars, `_total`/`_created` counter
//! samples), so a test reads `/metrics` whichever of the two the server renders.

use std::collections::BTreeMap;
use std::fmt;

use crate::plain_http::http_get;

/// One sample line: `name{labels} value [timestamp] [# exemplar]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name, e.g. `ws_connections_total` or `..._bucket`.
    pub name: String,
    /// Label pairs in the order they were written.
    pub labels: Labels,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// `# TYPE` of each metric family.
    pub types: BTreeMap<String, String>,
    /// Whether it ended with OpenMetrics' `# EOF`.
    pub eof: bool,
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "metrics line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

impl Exposition {
    /// Samples called `name`, every label set.
    pub fn samples_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Sum of the samples called `name` over every label set (0 when there is none):
    /// the instance's value when there is one series, the total when the series are
    /// split by a label.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples_of(name).map(|s| s.value).sum()
    }

    /// The value of `name` with exactly these labels (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples_of(name)
            .find(|s| s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
    }
}

/// Parses `text` in either format.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let err = |reason: String| ParseError { line: i + 1, reason };
        let line = raw.trim_end_matches('\r');
        if out.eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err("text after # EOF".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("EOF") => out.eof = true,
                Some("TYPE") => {
                    let (Some(family), Some(kind)) = (words.next(), words.next()) else {
                        return Err(err("TYPE without a name and a type".into()));
                    };
                    out.types.insert(family.to_owned(), kind.to_owned());
                }
                _ => {} // HELP, UNIT and plain comments
            }
            continue;
        }
        out.samples.push(parse_sample(line).map_err(err)?);
    }
    Ok(out)
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// A metric or label name at the start of `s`, and the rest.
fn take_name(s: &str) -> Result<(&str, &str), String> {
    let end = s
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(s.len(), |(i, _)| i);
    if end == 0 {
        return Err(format!("expected a name at `{s}`"));
    }
    Ok(s.split_at(end))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("`{s}` is not a number")),
    }
}

/// Label pairs in the order they were written.
type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` at the start of `s` (after the `{`): the labels and the rest.
fn take_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = take_name(s)?;
        let rest = rest
            .trim_start()
            .strip_prefix('=')
            .ok_or("expected `=` after a label name")?;
        let rest = rest
            .trim_start()
            .strip_prefix('"')
            .ok_or("expected a quoted label value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name.to_owned(), value));
        s = rest[end + 1..].trim_start();
        if let Some(after_comma) = s.strip_prefix(',') {
            s = after_comma;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, rest) = take_name(line)?;
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => take_labels(inner)?,
        None => (Vec::new(), rest),
    };
    // OpenMetrics exemplar: ` # {labels} value [timestamp]` after the sample.
    let rest = rest.split(" # ").next().unwrap_or_default();
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        parse_value(ts).map_err(|e| format!("timestamp: {e}"))?;
    }
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected `{extra}`"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `GET /metrics` on 127.0.0.1:`port`, parsed; fails the test on a non-200 answer or
/// text that does not parse.
pub async fn scrape(port: u16) -> Exposition {
    let (status, body) = http_get(port, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics on port {port}: {body}");
    parse(&body).unwrap_or_else(|e| panic!("/metrics on port {port}: {e}\n{body}"))
}

/// One metric of the instance on `port`: the sum of the samples called `name` over
/// every label set (see [`Exposition::sum`]).
pub async fn metric(port: u16, name: &str) -> f64 {
    scrape(port).await.sum(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server renders today (classic format, one `port` label).
    const CLASSIC: &str = "# HELP ws_connections_open WebSocket connections open now.
# TYPE ws_connections_open gauge
ws_connections_open{port=\"9001\"} 2
# HELP ws_connections_total WebSocket connections accepted.
# TYPE ws_connections_total counter
ws_connections_total{port=\"9001\"} 7
ws_errors_total{port=\"9001\",kind=\"redis_timeout\"} 3
ws_errors_total{port=\"9001\",kind=\"binary\"} 4
ws_redis_seconds_bucket{port=\"9001\",le=\"0.0001\"} 0
ws_redis_seconds_bucket{port=\"9001\",le=\"+Inf\"} 5
ws_redis_seconds_sum{port=\"9001\"} 0.0123
untyped_metric 1.5e3 1700000000000
";

    /// The same as the prometheus-client crate renders it (OpenMetrics text).
    const OPENMETRICS: &str = "# HELP ws_connections_open WebSocket connections open now.
# TYPE ws_connections_open gauge
ws_connections_open{port=\"9001\"} 2
# HELP ws_connections WebSocket connections accepted.
# TYPE ws_connections counter
ws_connections_total{port=\"9001\"} 7
ws_connections_created{port=\"9001\"} 1.7e9
# TYPE ws_errors counter
ws_errors_total{kind=\"redis_timeout\",port=\"9001\"} 3
ws_errors_total{kind=\"binary\",port=\"9001\"} 4
# TYPE ws_redis_seconds histogram
# UNIT ws_redis_seconds seconds
ws_redis_seconds_bucket{le=\"0.0001\",port=\"9001\"} 0
ws_redis_seconds_bucket{le=\"+Inf\",port=\"9001\"} 5 # {trace_id=\"a\"} 0.2 1700000000.5
ws_redis_seconds_sum{port=\"9001\"} 0.0123
ws_redis_seconds_count{port=\"9001\"} 5
# EOF
";

    #[test]
    fn both_formats_give_the_same_values() {
        for text in [CLASSIC, OPENMETRICS] {
            let m = parse(text).unwrap();
            assert_eq!(m.sum("ws_connections_open"), 2.0);
            assert_eq!(m.sum("ws_connections_total"), 7.0);
            assert_eq!(m.sum("ws_errors_total"), 7.0, "summed over kinds");
            assert_eq!(
                m.get("ws_errors_total", &[("kind", "binary"), ("port", "9001")]),
                Some(4.0)
            );
            assert_eq!(
                m.get("ws_redis_seconds_bucket", &[("port", "9001"), ("le", "+Inf")]),
                Some(5.0)
            );
            assert_eq!(m.sum("ws_redis_seconds_sum"), 0.0123);
            assert_eq!(m.sum("no_such_metric"), 0.0);
            assert_eq!(m.types["ws_connections_open"], "gauge");
        }
        assert!(!parse(CLASSIC).unwrap().eof);
        let om = parse(OPENMETRICS).unwrap();
        assert!(om.eof);
        assert_eq!(om.types["ws_connections"], "counter");
        assert_eq!(parse(CLASSIC).unwrap().sum("untyped_metric"), 1500.0);
    }

    #[test]
    fn label_values_unescape() {
        let m = parse("m{a=\"x\\\"y\",b=\"1\\\\2\",c=\"l\\nm\",} 1\n").unwrap();
        let s = &m.samples[0];
        assert_eq!(s.label("a"), Some("x\"y"));
        assert_eq!(s.label("b"), Some("1\\2"));
        assert_eq!(s.label("c"), Some("l\nm"));
        assert!(parse("m NaN\n").unwrap().samples[0].value.is_nan());
        assert_eq!(parse("m -Inf\n").unwrap().sum("m"), f64::NEG_INFINITY);
    }

    #[test]
    fn bad_lines_are_errors_with_their_number() {
        for (text, line) in [
            ("ok 1\nbad{a=\"x\" 1\n", 2),
            ("m{a=x} 1\n", 1),
            ("m one\n", 1),
            ("m\n", 1),
            ("m 1 2 3\n", 1),
            ("m 1\n# EOF\nm 2\n", 3),
            ("{a=\"x\"} 1\n", 1),
        ] {
            assert_eq!(parse(text).unwrap_err().line, line, "{text:?}");
        }
    }
}
