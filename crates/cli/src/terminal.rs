//! What reaches a person's terminal and nothing else: colour and progress bars go to stderr only
//! when it is a terminal (never into pipes, files or CI logs), colour not under NO_COLOR, and
//! progress bars not under `-q`.

use crate::{Cli, ColorChoice};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether to colour what goes to stderr (`--color`, NO_COLOR, and whether stderr is a terminal).
pub fn color_on_stderr(choice: ColorChoice) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    color_enabled(choice, std::io::stderr().is_terminal(), no_color)
}

/// `always` and `never` are explicit requests and win over NO_COLOR (as no-color.org asks).
fn color_enabled(choice: ColorChoice, stderr_is_terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stderr_is_terminal && !no_color,
    }
}

fn draws_progress(cli: &Cli) -> bool {
    !cli.quiet && std::io::stderr().is_terminal()
}

/// A progress bar of `len` units on stderr, drawn with `template` (indicatif's syntax), or a hidden
/// one that costs nothing when stderr is not a terminal or the command runs with `-q`.
pub fn progress_bar(cli: &Cli, len: Option<u64>, template: &str) -> ProgressBar {
    if !draws_progress(cli) {
        return ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    bar.set_style(style(template));
    bar
}

/// A spinner with a message and the elapsed time, for work whose length is not known up front.
pub fn spinner(cli: &Cli, message: &str) -> ProgressBar {
    let bar = progress_bar(cli, None, "{spinner} {msg} ({elapsed})");
    if !bar.is_hidden() {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    bar.set_message(message.to_string());
    bar
}

/// The stages of a run on one line: which stage of the command's `total`, and for aggregate a bar
/// over pattern groups. Counted here, across the pipeline calls a run makes.
pub struct StageProgress {
    bar: ProgressBar,
    total: usize,
    started: std::cell::Cell<usize>,
}

impl StageProgress {
    pub fn new(cli: &Cli, total: usize) -> Self {
        Self {
            bar: spinner(cli, "starting"),
            total,
            started: std::cell::Cell::new(0),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl learnloop_pipeline::Progress for StageProgress {
    fn stage(&self, stage: learnloop_pipeline::Stage, _index: usize, _count: usize) {
        self.started.set(self.started.get() + 1);
        self.bar.set_style(style("{spinner} {msg} ({elapsed})"));
        self.bar.set_length(0);
        self.bar.set_position(0);
        self.bar.set_message(format!(
            "{} ({}/{})",
            stage.name(),
            self.started.get(),
            self.total
        ));
    }

    fn advance(&self, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar
                .set_style(style("{msg} [{bar:20}] {pos}/{len} groups ({eta})"));
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_unless_asked_for() {
        use ColorChoice::*;
        assert!(color_enabled(Auto, true, false));
        assert!(!color_enabled(Auto, false, false), "a pipe or a file");
        assert!(!color_enabled(Auto, true, true), "NO_COLOR");
        assert!(color_enabled(Always, false, true));
        assert!(!color_enabled(Never, true, false));
    }
}
