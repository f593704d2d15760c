//! Latency samples and the summary table the benchmark prints.

use std::time::Duration;

/// What one phase measured: a latency per successful call, and the failures.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Samples {
    pub fn ok(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn failed(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn count(&self) -> usize {
        self.micros.len()
    }

    /// The latencies in the order they were recorded.
    pub fn latencies(&self) -> impl Iterator<Item = Duration> + '_ {
        self.micros.iter().map(|&us| Duration::from_micros(us))
    }

    /// The mean latency in milliseconds.
    pub fn mean_ms(&self) -> Option<f64> {
        let count = self.micros.len();
        (count > 0).then(|| self.micros.iter().sum::<u64>() as f64 / count as f64 / 1000.0)
    }

    /// The `q`-quantile (0.0..=1.0) in milliseconds, nearest-rank.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.micros.is_empty() {
            return None;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let rank = (q * sorted.len() as f64).ceil() as usize;
        let index = rank.clamp(1, sorted.len()) - 1;
        Some(sorted[index] as f64 / 1000.0)
    }
}

/// One row of the result table.
pub struct Row {
    pub operation: &'static str,
    pub kind: &'static str,
    pub clients: usize,
    pub elapsed: Duration,
    pub samples: Samples,
}

impl Row {
    pub fn per_second(&self) -> f64 {
        self.samples.count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The table: one line per operation, aligned columns.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<26} {:<5} {:>7} {:>9} {:>7} {:>9} {:>8} {:>8}\n",
        "OPERATION", "KIND", "CLIENTS", "REQUESTS", "ERRORS", "REQ/S", "P50 MS", "P99 MS"
    );
    for row in rows {
        let ms = |q| {
            row.samples
                .quantile_ms(q)
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
        };
        out.push_str(&format!(
            "{:<26} {:<5} {:>7} {:>9} {:>7} {:>9.0} {:>8} {:>8}\n",
            row.operation,
            row.kind,
            row.clients,
            row.samples.count(),
            row.samples.errors,
            row.per_second(),
            ms(0.50),
            ms(0.99)
        ));
    }
    out
}

/// One line of a side-by-side table: what Berth measured and what the peer measured.
pub struct Versus {
    pub metric: String,
    pub berth: Option<f64>,
    pub peer: Option<f64>,
}

impl Versus {
    pub fn new(metric: impl Into<String>, berth: Option<f64>, peer: Option<f64>) -> Versus {
        Versus {
            metric: metric.into(),
            berth,
            peer,
        }
    }
}

/// A figure with as many decimals as its size deserves.
fn figure(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// Berth beside `peer`: both figures, the ratio Berth/peer and, with `difference`, Berth − peer.
pub fn versus_table(peer: &str, rows: &[Versus], difference: bool) -> String {
    let peer_head = peer.to_uppercase();
    let ratio_head = format!("BERTH/{peer_head}");
    let name = rows
        .iter()
        .map(|r| r.metric.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let side = peer_head.len().max(10);
    let ratio = ratio_head.len().max(10);
    let mut out = format!(
        "{:<name$} {:>10} {:>side$} {:>ratio$}",
        "METRIC", "BERTH", peer_head, ratio_head
    );
    if difference {
        out.push_str(&format!(" {:>12}", "BERTH-PEER"));
    }
    out.push('\n');
    let dash = || "-".to_owned();
    for row in rows {
        let both = row.berth.zip(row.peer);
        let quotient = both
            .filter(|(_, p)| *p != 0.0)
            .map_or_else(dash, |(b, p)| format!("{:.2}", b / p));
        out.push_str(&format!(
            "{:<name$} {:>10} {:>side$} {:>ratio$}",
            row.metric,
            row.berth.map_or_else(dash, figure),
            row.peer.map_or_else(dash, figure),
            quotient
        ));
        if difference {
            let diff = both.map_or_else(dash, |(b, p)| format!("{:+.1}", b - p));
            out.push_str(&format!(" {diff:>12}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s = Samples::default();
        assert_eq!(s.quantile_ms(0.5), None);
        for ms in 1..=100u64 {
            s.ok(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile_ms(0.5), Some(50.0));
        assert_eq!(s.quantile_ms(0.99), Some(99.0));
        assert_eq!(s.quantile_ms(1.0), Some(100.0));
        assert_eq!(s.mean_ms(), Some(50.5));
        assert_eq!(s.latencies().nth(2), Some(Duration::from_millis(3)));
        let mut other = Samples::default();
        other.failed("boom".into());
        other.failed("second".into());
        s.merge(other);
        assert_eq!((s.count(), s.errors), (100, 2));
        assert_eq!(s.first_error.as_deref(), Some("boom"));
    }

    #[test]
    fn table_has_a_line_per_row() {
        let mut samples = Samples::default();
        samples.ok(Duration::from_micros(1500));
        let rows = [Row {
            operation: "describe-clusters",
            kind: "read",
            clients: 64,
            elapsed: Duration::from_secs(2),
            samples,
        }];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("describe-clusters"), "{text}");
        assert!(lines[1].contains("1.50"), "{text}");
    }

    #[test]
    fn versus_table_gives_ratio_and_difference() {
        let rows = [
            Versus::new("push MB/s", Some(300.0), Some(150.0)),
            Versus::new("p50 ms", Some(12.5), None),
        ];
        let text = versus_table("docker", &rows, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("BERTH/DOCKER"), "{text}");
        assert!(lines[1].contains(" 2.00 "), "{text}");
        assert!(lines[1].ends_with("+150.0"), "{text}");
        assert!(lines[2].contains("12.5"), "{text}");
        assert!(lines[2].trim_end().ends_with('-'), "{text}");
    }
}
