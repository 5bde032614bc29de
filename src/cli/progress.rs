//! Terminal progress for a render: one line per stage, a bar with speed and ETA for the
//! denoising steps. Nothing is drawn when stderr is not a terminal (logs still say it all).

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};

use crate::render::{RenderEvent, Stage};

/// Turns render events into progress bars.
pub struct RenderProgress {
    bar: Option<ProgressBar>,
}

impl RenderProgress {
    pub fn new() -> Self {
        Self { bar: None }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    /// Handles one event; never cancels.
    pub fn on_event(&mut self, event: RenderEvent) -> ControlFlow<()> {
        match event {
            RenderEvent::StageStarted(stage) => {
                let bar = if stage == Stage::Denoise {
                    ProgressBar::new(0).with_style(Self::style(
                        "{msg:>10} [{bar:32}] {pos}/{len} steps  {per_sec}  eta {eta}",
                    ))
                } else {
                    ProgressBar::new_spinner()
                        .with_style(Self::style("{msg:>10} {spinner} {elapsed}"))
                };
                bar.set_message(stage.label());
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                self.bar = Some(bar);
            }
            RenderEvent::Step { step, total, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(total as u64);
                    bar.set_position(step as u64);
                }
            }
            RenderEvent::StageFinished(stage, took) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                tracing::info!(
                    stage = stage.label(),
                    secs = took.as_secs_f64(),
                    "stage done"
                );
            }
        }
        ControlFlow::Continue(())
    }
}
