//! What a run measured and how it is printed: latencies in microseconds, failures counted by kind,
//! percentiles by nearest rank, and plain-text tables. Integer arithmetic only (the workspace denies
//! float arithmetic), so rates and milliseconds are printed from whole microseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The most latencies one recorder keeps: at a million commands a second for a 10 s run, and a
/// bound on memory whatever `--seconds` says. Counts go on beyond it; percentiles then describe the
/// first `LATENCIES_KEPT_MAX` samples.
const LATENCIES_KEPT_MAX: usize = 10_000_000;

/// One client's (or one run's) tally: how long each successful command took and why others failed.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    latencies_us: Vec<u64>,
    ok: u64,
    failures: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn ok(&mut self, took: Duration) {
        self.ok += 1;
        if self.latencies_us.len() < LATENCIES_KEPT_MAX {
            self.latencies_us.push(micros(took));
        }
    }

    pub fn failed(&mut self, kind: impl Into<String>) {
        *self.failures.entry(kind.into()).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Self) {
        self.ok += other.ok;
        let room = LATENCIES_KEPT_MAX.saturating_sub(self.latencies_us.len());
        self.latencies_us
            .extend(other.latencies_us.into_iter().take(room));
        for (kind, count) in other.failures {
            *self.failures.entry(kind).or_insert(0) += count;
        }
    }

    /// The latencies, sorted, with the counts.
    pub fn summarize(mut self) -> Summary {
        self.latencies_us.sort_unstable();
        Summary {
            latencies: Percentiles::of_sorted(&self.latencies_us),
            ok: self.ok,
            failures: self.failures,
        }
    }
}

/// Whole microseconds, saturating.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// p50, p99, p99.9 and max of a set of microsecond samples (nearest rank); `None` for no samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of_sorted(sorted_us: &[u64]) -> Option<Self> {
        let max_us = *sorted_us.last()?;
        Some(Self {
            samples: sorted_us.len(),
            p50_us: nearest_rank(sorted_us, 500),
            p99_us: nearest_rank(sorted_us, 990),
            p999_us: nearest_rank(sorted_us, 999),
            max_us,
        })
    }

    pub fn of_unsorted(mut samples_us: Vec<u64>) -> Option<Self> {
        samples_us.sort_unstable();
        Self::of_sorted(&samples_us)
    }
}

/// The smallest sample with at least `per_mille`/1000 of the samples at or below it. `sorted` is
/// not empty.
fn nearest_rank(sorted: &[u64], per_mille: usize) -> u64 {
    let rank = (sorted.len() * per_mille).div_ceil(1000).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// A finished run's figures.
#[derive(Debug, Clone)]
pub struct Summary {
    pub latencies: Option<Percentiles>,
    pub ok: u64,
    pub failures: BTreeMap<String, u64>,
}

impl Summary {
    /// Successful commands per second over `elapsed`.
    pub fn ok_per_second(&self, elapsed: Duration) -> u64 {
        per_second(self.ok, elapsed)
    }

    /// Failures as `kind: count, ...`, or `none`.
    pub fn failures_text(&self) -> String {
        if self.failures.is_empty() {
            return "none".to_owned();
        }
        self.failures
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// `count` per second over `elapsed`, rounded down.
pub fn per_second(count: u64, elapsed: Duration) -> u64 {
    let elapsed_us = u128::from(micros(elapsed).max(1));
    u64::try_from(u128::from(count) * 1_000_000 / elapsed_us).unwrap_or(u64::MAX)
}

/// Microseconds as milliseconds with two decimals: `1234` -> `1.23`.
pub fn ms(us: u64) -> String {
    format!("{}.{:02}", us / 1_000, (us % 1_000) / 10)
}

/// `part / whole` as `1.23x`, from whole numbers; `-` when `whole` is 0.
pub fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let hundredths = u128::from(part) * 100 / u128::from(whole);
    format!("{}.{:02}x", hundredths / 100, hundredths % 100)
}

/// A plain-text table: a title, a header row and rows, columns padded to their widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|cell| (*cell).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A line printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in self.rows.iter().chain([&self.header]) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |row: &[String]| {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(index, width)| {
                    let cell = row.get(index).map_or("", String::as_str);
                    format!("{cell:<width$}")
                })
                .collect();
            cells.join(" | ").trim_end().to_owned()
        };
        let mut out = String::new();
        let _ = writeln!(out, "== {}", self.title);
        let _ = writeln!(out, "{}", line(&self.header));
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        let _ = writeln!(out, "{}", rule.join("-|-"));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<u64> = (1..=1000).collect();
        let p = Percentiles::of_sorted(&samples).expect("samples");
        assert_eq!(
            (p.p50_us, p.p99_us, p.p999_us, p.max_us),
            (500, 990, 999, 1000)
        );
        let one = Percentiles::of_sorted(&[7]).expect("one sample");
        assert_eq!(
            (one.p50_us, one.p99_us, one.p999_us, one.max_us),
            (7, 7, 7, 7)
        );
        assert_eq!(Percentiles::of_sorted(&[]), None);
        let unsorted = Percentiles::of_unsorted(vec![30, 10, 20]).expect("samples");
        assert_eq!((unsorted.p50_us, unsorted.max_us), (20, 30));
    }

    #[test]
    fn recorders_merge_counts_and_failures_by_kind() {
        let mut first = Recorder::default();
        first.ok(Duration::from_micros(5));
        first.failed("409 concurrency_conflict");
        let mut second = Recorder::default();
        second.ok(Duration::from_micros(9));
        second.failed("409 concurrency_conflict");
        second.failed("transport");
        first.merge(second);
        let summary = first.summarize();
        assert_eq!((summary.ok, summary.failed()), (2, 3));
        assert_eq!(
            summary.failures_text(),
            "409 concurrency_conflict: 2, transport: 1"
        );
        assert_eq!(summary.latencies.map(|p| p.max_us), Some(9));
    }

    #[test]
    fn figures_print_from_whole_numbers() {
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(ms(5), "0.00");
        assert_eq!(ratio(123, 100), "1.23x");
        assert_eq!(ratio(1, 0), "-");
        assert_eq!(per_second(500, Duration::from_millis(250)), 2_000);
    }

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let mut table = Table::new("A", &["run", "ok/s"]);
        table.row(vec!["in-process".to_owned(), "5".to_owned()]);
        table.note("a note");
        assert_eq!(
            table.render(),
            "== A\nrun        | ok/s\n-----------|-----\nin-process | 5\n  a note\n"
        );
    }
}
