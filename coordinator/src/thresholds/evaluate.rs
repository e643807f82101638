//! Evaluating parsed thresholds on a finished run's merged report.

use super::grammar::Threshold;
use super::metrics::display;
use crate::report::model::{RunReport, ThresholdResult};

impl Threshold {
    /// Evaluates the threshold on `report`; no data means failed.
    pub fn evaluate(&self, report: &RunReport) -> ThresholdResult {
        let observed = self.metric.observe(report);
        ThresholdResult {
            expr: self.expr.clone(),
            metric: self.metric_name.clone(),
            observed,
            observed_display: observed
                .map(|v| display(self.metric.kind(), v))
                .unwrap_or_else(|| "n/a (no data)".to_owned()),
            passed: observed.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }
}

/// Evaluates every threshold, in order.
pub fn evaluate(thresholds: &[Threshold], report: &RunReport) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(report)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::report::model::{FanoutReach, PlanEcho, RunHistograms, RunOutcome, StepReport, StepStats, Totals};
    use crate::thresholds::parse_all;

    /// RTT samples 1..=1000 µs; connect 1000..=1099 µs; 99 opened + 1 failed
    /// connections; 19,900 sent, 19,891 responses, 9 failed responses, over 10 s.
    fn report() -> RunReport {
        let mut histograms = RunHistograms::default();
        for v in 1..=1000 {
            histograms.rtt_intended.record(v).unwrap();
        }
        for v in 1000..1100 {
            histograms.connect.record(v).unwrap();
        }
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        RunReport {
            run_id: "t".into(),
            target: "ws://127.0.0.1/ws".into(),
            plan: PlanEcho::default(),
            started_at: t0,
            ended_at: t0,
            duration: Duration::from_secs(10),
            outcome: RunOutcome::Completed,
            totals: Totals {
                sessions_planned: 100,
                sessions_opened: 99,
                failed_connections: 1,
                failed_responses: 9,
                messages_sent: 19_900,
                responses_received: 19_891,
                lost_sessions: 2,
                sessions_errored: 3,
                ..Totals::default()
            },
            histograms,
            windows: Vec::new(),
            agents: Vec::new(),
            thresholds: Vec::new(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn evaluates_on_merged_data_with_exact_numbers() {
        let r = report();
        let results = evaluate(
            &parse_all(&[
                "rtt_p50<=500us",
                "rtt_p50<500us",
                "rtt_p99<1ms",
                "rtt_max==1ms",
                "rtt_min==1us",
                "rtt_mean>500us",
                "connect_p50==1049us",
                "connect_error_rate<1%",
                "connect_error_rate<=1%",
                "error_rate<0.05%",
                "error_rate<=0.0005",
                "response_error_rate>0",
                "messages_per_second>1989",
                "sent_per_second==1990",
                "connections_per_second==9.9",
                "sessions_failed==0",
                "sessions_failed==6",
                "lost_sessions!=0",
            ])
            .unwrap(),
            &r,
        );
        let got: Vec<(&str, Option<f64>, &str, bool)> = results
            .iter()
            .map(|t| (t.expr.as_str(), t.observed, t.observed_display.as_str(), t.passed))
            .collect();
        assert_eq!(
            got,
            vec![
                ("rtt_p50<=500us", Some(500.0), "0.500ms", true),
                ("rtt_p50<500us", Some(500.0), "0.500ms", false),
                ("rtt_p99<1ms", Some(990.0), "0.990ms", true),
                ("rtt_max==1ms", Some(1000.0), "1.000ms", true),
                ("rtt_min==1us", Some(1.0), "0.001ms", true),
                ("rtt_mean>500us", Some(500.5), "0.500ms", true),
                ("connect_p50==1049us", Some(1049.0), "1.049ms", true),
                ("connect_error_rate<1%", Some(0.01), "1.000%", false),
                ("connect_error_rate<=1%", Some(0.01), "1.000%", true),
                ("error_rate<0.05%", Some(0.0005), "0.050%", false),
                ("error_rate<=0.0005", Some(0.0005), "0.050%", true),
                ("response_error_rate>0", Some(9.0 / 19_900.0), "0.045%", true),
                ("messages_per_second>1989", Some(1989.1), "1989.1/s", true),
                ("sent_per_second==1990", Some(1990.0), "1990.0/s", true),
                ("connections_per_second==9.9", Some(9.9), "9.9/s", true),
                ("sessions_failed==0", Some(6.0), "6", false),
                ("sessions_failed==6", Some(6.0), "6", true),
                ("lost_sessions!=0", Some(2.0), "2", true),
            ]
        );
        assert_eq!(results[0].metric, "rtt_p50");
    }

    fn assert_no_data(results: &[ThresholdResult]) {
        for res in results {
            assert_eq!(res.observed, None, "{}", res.expr);
            assert_eq!(res.observed_display, "n/a (no data)");
            assert!(!res.passed, "{}", res.expr);
        }
    }

    #[test]
    fn no_data_fails() {
        let mut r = report();
        r.duration = Duration::ZERO;
        r.totals = Totals::default();
        let results = evaluate(
            &parse_all(&[
                "rtt_actual_p99<1s",
                "connect_error_rate<1%",
                "messages_per_second>=0",
                "errors==0",
            ])
            .unwrap(),
            &r,
        );
        assert_no_data(&results[..3]);
        assert!(results[3].passed);
    }

    fn step(name: &str, kind: &str, stats: StepStats, fanout: Option<FanoutReach>) -> StepReport {
        StepReport {
            name: name.into(),
            kind: kind.into(),
            stats,
            fanout,
        }
    }

    /// [`report`] plus a scenario: `echo` (request: 990 ok, 10 failed, latency
    /// 1..=1000 µs), `news` (fan-out listen: 4,990 messages, 3 duplicates, 2 out of
    /// order, 4,987 of 5,000 expected deliveries), `quiet` (a fan-out nobody expected),
    /// `idle` (a connect step that never ran), 7 unexpected messages, two close codes
    /// and a handler count.
    fn scenario_report() -> RunReport {
        let mut echo = StepStats {
            ok: 990,
            failed: 10,
            ..StepStats::default()
        };
        for v in 1..=1000 {
            echo.latency.record(v).unwrap();
        }
        let news = StepStats {
            ok: 50,
            messages: 4990,
            duplicates: 3,
            out_of_order: 2,
            ..StepStats::default()
        };
        let reach = |expected, delivered| Some(FanoutReach { expected, delivered });
        let mut r = report();
        r.steps = vec![
            step("echo", "request", echo, None),
            step("news", "listen", news, reach(5000, 4987)),
            step("quiet", "listen", StepStats::default(), reach(0, 0)),
            step("idle", "connect", StepStats::default(), None),
        ];
        r.totals.unexpected_messages = 7;
        r.totals.close_codes = [(1000, 40), (1008, 2)].into();
        r.totals.counts = [("errors_seen".to_owned(), 5)].into();
        r
    }

    #[test]
    fn evaluates_scenario_metrics_with_exact_numbers() {
        let r = scenario_report();
        let expected = [
            ("step.echo.p99<=990us", Some(990.0), "0.990ms", true),
            ("step.echo.p50==500us", Some(500.0), "0.500ms", true),
            ("step.echo.max<1ms", Some(1000.0), "1.000ms", false),
            ("step.echo.min==1us", Some(1.0), "0.001ms", true),
            ("step.echo.mean>500us", Some(500.5), "0.500ms", true),
            ("step.echo.ok==990", Some(990.0), "990", true),
            ("step.echo.failed<=10", Some(10.0), "10", true),
            ("step.echo.error_rate<1%", Some(0.01), "1.000%", false),
            ("step.echo.error_rate<=1%", Some(0.01), "1.000%", true),
            ("step.news.messages==4990", Some(4990.0), "4990", true),
            ("step.news.duplicates==3", Some(3.0), "3", true),
            ("step.news.out_of_order<2", Some(2.0), "2", false),
            ("step.news.reach>=99.9%", Some(0.9974), "99.740%", false),
            ("step.news.reach>=0.997", Some(0.9974), "99.740%", true),
            ("step.news.error_rate==0", Some(0.0), "0.000%", true),
            ("count.errors_seen==5", Some(5.0), "5", true),
            ("unexpected_messages<7", Some(7.0), "7", false),
            ("close.1008<=2", Some(2.0), "2", true),
            ("close.1000>40", Some(40.0), "40", false),
            ("close.1011==0", Some(0.0), "0", true),
        ];
        let texts: Vec<&str> = expected.iter().map(|e| e.0).collect();
        let results = evaluate(&parse_all(&texts).unwrap(), &r);
        let got: Vec<(&str, Option<f64>, &str, bool)> = results
            .iter()
            .map(|t| (t.expr.as_str(), t.observed, t.observed_display.as_str(), t.passed))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(results[0].metric, "step.echo.p99");
    }

    #[test]
    fn scenario_metrics_without_data_fail_and_counts_are_zero() {
        let r = scenario_report();
        let results = evaluate(
            &parse_all(&[
                "step.idle.p99<1s",
                "step.idle.error_rate<1%",
                "step.quiet.reach>=0%",
                "step.gone.ok>=0",
                "step.idle.ok==0",
                "count.never==0",
            ])
            .unwrap(),
            &r,
        );
        assert_no_data(&results[..4]);
        for res in &results[4..] {
            assert_eq!(res.observed, Some(0.0), "{}", res.expr);
            assert!(res.passed, "{}", res.expr);
        }
        // The built-in protocol's report has no steps, no counts, no closes.
        let plain = evaluate(
            &parse_all(&["unexpected_messages==0", "close.1006==0"]).unwrap(),
            &report(),
        );
        assert!(plain.iter().all(|t| t.passed && t.observed == Some(0.0)), "{plain:?}");
    }
}
