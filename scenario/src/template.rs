//! Templates: text with `{{variable}}` holes, parsed once when the plan is compiled
//! and rendered per message. A template without holes renders to shared bytes, so
//! sending it allocates nothing.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

/// Most `x` characters the `pad(N)` holes of one template add up to: a message
/// stays far below any server's limit, and rendering it allocates at most this.
const MAX_PAD: usize = 16 * 1024 * 1024;

/// What the holes of a template may name, checked when the plan is compiled.
#[derive(Debug, Default)]
pub struct Scope {
    /// Feeders and their columns, in plan order.
    pub feeders: Vec<(String, Vec<String>)>,
    /// Session variables captured by earlier steps, by slot.
    pub captures: Vec<String>,
}

impl Scope {
    fn capture(&self, name: &str) -> Option<u16> {
        self.captures
            .iter()
            .position(|c| c == name)
            .and_then(|i| u16::try_from(i).ok())
    }

    fn feeder_column(&self, feeder: &str, column: &str) -> Result<(u16, u16), String> {
        let (f, (_, columns)) = self
            .feeders
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == feeder)
            .ok_or_else(|| format!("no feeder named `{feeder}`"))?;
        let c = columns.iter().position(|c| c == column).ok_or_else(|| {
            format!(
                "feeder `{feeder}` has no column `{column}` (its columns: {})",
                columns.join(", ")
            )
        })?;
        Ok((
            u16::try_from(f).unwrap_or(u16::MAX),
            u16::try_from(c).unwrap_or(u16::MAX),
        ))
    }
}

/// The variables every template may use, for error messages.
pub const BUILTIN_VARIABLES: &str =
    "session, agent, scenario, seq, iteration, uuid, now_us, now_ms, random(MIN,MAX), pad(N), FEEDER.COLUMN, or a captured variable";

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// Literal text.
    Lit(Box<str>),
    /// The session's index in the run (0-based, unique across agents).
    Session,
    /// The agent's name.
    Agent,
    /// The scenario's name.
    Scenario,
    /// The session's send counter: 1 for its first message.
    Seq,
    /// The innermost loop's iteration (0-based; 0 outside loops).
    Iteration,
    /// A UUID v4, the same for every use within one step execution.
    Uuid,
    /// The intended send time, microseconds since the Unix epoch, coordinator clock.
    NowUs,
    /// Same, milliseconds.
    NowMs,
    /// A random integer in `[min, max]`, drawn per use.
    Random(i64, i64),
    /// `n` characters `x` (to size a payload).
    Pad(usize),
    /// A column of the session's feeder row.
    Feeder(u16, u16),
    /// A session variable captured earlier.
    Capture(u16),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    segs: Vec<Seg>,
    /// The rendered form when there is no hole.
    constant: Option<Bytes>,
}

/// The values a template is rendered with.
#[derive(Debug)]
pub struct Vars<'a> {
    /// Session index in the run.
    pub session: u64,
    /// Agent name.
    pub agent: &'a str,
    /// Scenario name.
    pub scenario: &'a str,
    /// Send counter (already incremented for the message being built).
    pub seq: u64,
    /// Innermost loop iteration.
    pub iteration: u64,
    /// The step's UUID.
    pub uuid: uuid::Uuid,
    /// Intended send time in microseconds since the epoch (coordinator clock).
    pub now_us: i64,
    /// Captured variables by slot (None: not captured yet: renders empty).
    pub captures: &'a [Option<Arc<str>>],
    /// The session's row of each feeder (None: feeder unused).
    pub rows: &'a [Option<Arc<[Arc<str>]>>],
}

/// A template that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn parse_hole(hole: &str, scope: &Scope) -> Result<Seg, TemplateError> {
    let h = hole.trim();
    let err = |why: String| TemplateError(format!("`{{{{{hole}}}}}`: {why}"));
    let fixed = match h {
        "session" => Some(Seg::Session),
        "agent" => Some(Seg::Agent),
        "scenario" => Some(Seg::Scenario),
        "seq" => Some(Seg::Seq),
        "iteration" => Some(Seg::Iteration),
        "uuid" => Some(Seg::Uuid),
        "now_us" => Some(Seg::NowUs),
        "now_ms" => Some(Seg::NowMs),
        _ => None,
    };
    if let Some(seg) = fixed {
        return Ok(seg);
    }
    if let Some(args) = h.strip_prefix("random(").and_then(|r| r.strip_suffix(')')) {
        let (a, b) = args
            .split_once(',')
            .ok_or_else(|| err("random takes two integers: random(MIN,MAX)".into()))?;
        let a: i64 = a.trim().parse().map_err(|_| err(format!("`{a}` is not an integer")))?;
        let b: i64 = b.trim().parse().map_err(|_| err(format!("`{b}` is not an integer")))?;
        if a > b {
            return Err(err(format!("MIN {a} is above MAX {b}")));
        }
        return Ok(Seg::Random(a, b));
    }
    if let Some(n) = h.strip_prefix("pad(").and_then(|r| r.strip_suffix(')')) {
        let n: usize = n.trim().parse().map_err(|_| err(format!("`{n}` is not a length")))?;
        if n > MAX_PAD {
            return Err(err("pad is limited to 16 MiB".into()));
        }
        return Ok(Seg::Pad(n));
    }
    if let Some((feeder, column)) = h.split_once('.') {
        let (f, c) = scope.feeder_column(feeder.trim(), column.trim()).map_err(err)?;
        return Ok(Seg::Feeder(f, c));
    }
    if let Some(slot) = scope.capture(h) {
        return Ok(Seg::Capture(slot));
    }
    Err(err(format!(
        "unknown variable `{h}` (known: {BUILTIN_VARIABLES}{})",
        if scope.captures.is_empty() {
            String::new()
        } else {
            format!("; captured so far: {}", scope.captures.join(", "))
        }
    )))
}

impl Template {
    /// Parses `text`; every hole must name a variable of `scope`.
    pub fn parse(text: &str, scope: &Scope) -> Result<Template, TemplateError> {
        let mut segs = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segs.push(Seg::Lit(rest[..open].into()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                TemplateError(format!(
                    "`{{{{` at byte {} is never closed",
                    text.len() - rest.len() + open
                ))
            })?;
            segs.push(parse_hole(&after[..close], scope)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segs.push(Seg::Lit(rest.into()));
        }
        let padded: usize = segs.iter().map(|s| if let Seg::Pad(n) = s { *n } else { 0 }).sum();
        if padded > MAX_PAD {
            return Err(TemplateError(format!(
                "its pad(N) holes add up to {padded} characters; at most 16 MiB in all"
            )));
        }
        let constant = match segs.as_slice() {
            [] => Some(Bytes::new()),
            [Seg::Lit(s)] => Some(Bytes::copy_from_slice(s.as_bytes())),
            _ => None,
        };
        Ok(Template { segs, constant })
    }

    /// The rendered bytes when the template has no hole.
    pub fn constant(&self) -> Option<&Bytes> {
        self.constant.as_ref()
    }

    /// Whether rendering needs the step's UUID.
    pub fn uses_uuid(&self) -> bool {
        self.segs.contains(&Seg::Uuid)
    }

    /// Feeders this template reads.
    pub fn feeders(&self) -> impl Iterator<Item = u16> + '_ {
        self.segs.iter().filter_map(|s| match s {
            Seg::Feeder(f, _) => Some(*f),
            _ => None,
        })
    }

    /// Renders into `out` (appending).
    pub fn render_into(&self, v: &Vars<'_>, rng: &mut fastrand::Rng, out: &mut String) {
        for seg in &self.segs {
            // Writing to a String cannot fail.
            let _ = match seg {
                Seg::Lit(s) => {
                    out.push_str(s);
                    Ok(())
                }
                Seg::Session => write!(out, "{}", v.session),
                Seg::Agent => {
                    out.push_str(v.agent);
                    Ok(())
                }
                Seg::Scenario => {
                    out.push_str(v.scenario);
                    Ok(())
                }
                Seg::Seq => write!(out, "{}", v.seq),
                Seg::Iteration => write!(out, "{}", v.iteration),
                Seg::Uuid => write!(out, "{}", v.uuid),
                Seg::NowUs => write!(out, "{}", v.now_us),
                Seg::NowMs => write!(out, "{}", v.now_us / 1000),
                Seg::Random(a, b) => write!(out, "{}", rng.i64(*a..=*b)),
                Seg::Pad(n) => {
                    out.extend(std::iter::repeat_n('x', *n));
                    Ok(())
                }
                Seg::Feeder(f, c) => {
                    if let Some(Some(row)) = v.rows.get(usize::from(*f)) {
                        if let Some(val) = row.get(usize::from(*c)) {
                            out.push_str(val);
                        }
                    }
                    Ok(())
                }
                Seg::Capture(slot) => {
                    if let Some(Some(val)) = v.captures.get(usize::from(*slot)) {
                        out.push_str(val);
                    }
                    Ok(())
                }
            };
        }
    }

    /// Renders to bytes: shared when constant, else freshly built.
    pub fn render(&self, v: &Vars<'_>, rng: &mut fastrand::Rng) -> Bytes {
        if let Some(c) = &self.constant {
            return c.clone();
        }
        let mut s = String::new();
        self.render_into(v, rng, &mut s);
        Bytes::from(s)
    }

    /// Renders to a string (for comparisons).
    pub fn render_string(&self, v: &Vars<'_>, rng: &mut fastrand::Rng) -> String {
        let mut s = String::new();
        self.render_into(v, rng, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            feeders: vec![("users".into(), vec!["id".into(), "name".into()])],
            captures: vec!["token".into()],
        }
    }

    fn vars<'a>(captures: &'a [Option<Arc<str>>], rows: &'a [Option<Arc<[Arc<str>]>>]) -> Vars<'a> {
        Vars {
            session: 7,
            agent: "a1",
            scenario: "chat",
            seq: 3,
            iteration: 2,
            uuid: uuid::Uuid::nil(),
            now_us: 1_700_000_000_123_456,
            captures,
            rows,
        }
    }

    #[test]
    fn renders_every_variable() {
        let t = Template::parse(
            "{{session}}/{{ agent }}/{{scenario}}/{{seq}}/{{iteration}}/{{uuid}}/{{now_us}}/{{now_ms}}/{{pad(3)}}/{{users.name}}/{{token}}",
            &scope(),
        )
        .unwrap();
        let row: Arc<[Arc<str>]> = vec![Arc::<str>::from("42"), "ann".into()].into();
        let rows = [Some(row)];
        let caps = [Some(Arc::<str>::from("t0k"))];
        let out = t.render_string(&vars(&caps, &rows), &mut fastrand::Rng::with_seed(1));
        assert_eq!(
            out,
            "7/a1/chat/3/2/00000000-0000-0000-0000-000000000000/1700000000123456/1700000000123/xxx/ann/t0k"
        );
        assert!(t.uses_uuid());
        assert_eq!(t.feeders().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_template_without_holes_is_shared_bytes() {
        let t = Template::parse("{\"type\":\"ping\"}", &Scope::default()).unwrap();
        let c = t.constant().unwrap().clone();
        let r = t.render(&vars(&[], &[]), &mut fastrand::Rng::new());
        assert_eq!(r, c);
        assert_eq!(r.as_ptr(), c.as_ptr(), "no copy per message");
    }

    #[test]
    fn random_stays_in_range() {
        let t = Template::parse("{{random(5, 7)}}", &Scope::default()).unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..100 {
            let v: i64 = t.render_string(&vars(&[], &[]), &mut rng).parse().unwrap();
            assert!((5..=7).contains(&v));
        }
    }

    /// Found writing the `scenario_template` fuzz target (which now guards it):
    /// many `pad` holes, each within the limit, rendered a template of gigabytes.
    #[test]
    fn pads_are_limited_in_total() {
        let one = format!("{{{{pad({MAX_PAD})}}}}");
        assert!(Template::parse(&one, &Scope::default()).is_ok());
        let e = Template::parse(&format!("{one}{{{{pad(1)}}}}"), &Scope::default())
            .unwrap_err()
            .0;
        assert!(e.contains("add up to 16777217 characters"), "{e}");
        let many = "{{pad(1000000)}}".repeat(200);
        assert!(Template::parse(&many, &Scope::default()).is_err());
    }

    #[test]
    fn mistakes_are_named() {
        let e = |s: &str| Template::parse(s, &scope()).unwrap_err().0;
        assert!(e("{{nope}}").contains("unknown variable `nope`"), "{}", e("{{nope}}"));
        assert!(e("{{nope}}").contains("captured so far: token"));
        assert!(e("{{users.email}}").contains("no column `email`"));
        assert!(e("{{people.id}}").contains("no feeder named `people`"));
        assert!(e("abc {{seq").contains("never closed"));
        assert!(e("{{random(9,1)}}").contains("above MAX"));
        assert!(e("{{random(x,1)}}").contains("not an integer"));
    }
}
