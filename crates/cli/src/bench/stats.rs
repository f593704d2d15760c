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
}
