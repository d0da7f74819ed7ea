//! Progress on the long one-time steps (building PgBouncer, installing Airflow): a spinner on a
//! terminal, plain lines otherwise (CI logs), so a slow first run never looks hung.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Step {
    bar: ProgressBar,
    what: String,
}

/// Starts a step; `what` is shown until [`Step::finish`].
pub fn step(what: &str) -> Step {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(what.to_string());
    if bar.is_hidden() {
        eprintln!("{what} ...");
    }
    Step {
        bar,
        what: what.to_string(),
    }
}

impl Step {
    /// The current phase, e.g. a line the build printed.
    pub fn phase(&self, text: &str) {
        if self.bar.is_hidden() {
            eprintln!("  {text}");
        } else {
            self.bar.set_message(format!("{}: {text}", self.what));
        }
    }

    pub fn finish(self, result: &str) {
        let took = self.bar.elapsed();
        self.bar.finish_and_clear();
        eprintln!("{}: {result} in {:.1} s", self.what, took.as_secs_f64());
    }
}
