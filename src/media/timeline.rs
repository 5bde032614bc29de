//! When each frame of a clip is on screen, and which frames a `FramePick` selects.
//!
//! Pure arithmetic, shared by videos (seconds from packet timestamps) and image sequences
//! (index units), so the selection rules live in one place and are unit-tested here.

use super::video::FramePick;

/// Frame `i` is on screen over `[starts_secs[i], ends_secs[i])`; the first starts at 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    starts_secs: Vec<f64>,
    ends_secs: Vec<f64>,
}

/// Why a pick cannot be served; the caller adds the path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PickError {
    InvalidFps,
    TooShort { available: usize },
    TooFewFrames { available: usize },
}

impl Timeline {
    /// A timeline from sorted start times; each frame ends where the next starts, the last
    /// one at `end_secs` (given whole, not as a duration, so it is as exact as the starts).
    pub(crate) fn from_starts(starts_secs: Vec<f64>, end_secs: f64) -> Timeline {
        let mut ends_secs: Vec<f64> = starts_secs.iter().skip(1).copied().collect();
        if !starts_secs.is_empty() {
            ends_secs.push(end_secs);
        }
        Timeline {
            starts_secs,
            ends_secs,
        }
    }

    /// `n` frames at indices `0, 1, …`, each one unit long.
    pub(crate) fn uniform(n: usize) -> Timeline {
        Timeline::from_starts((0..n).map(|i| i as f64).collect(), n as f64)
    }

    /// Number of frames.
    pub(crate) fn len(&self) -> usize {
        self.starts_secs.len()
    }

    /// When the last frame leaves the screen.
    pub(crate) fn duration_secs(&self) -> f64 {
        self.ends_secs.last().copied().unwrap_or(0.0)
    }

    /// How many instants `k / fps` (k = 0, 1, …) fall before the end of the clip.
    pub(crate) fn frames_at_fps(&self, fps: f64) -> usize {
        instants_before(self.duration_secs(), fps)
    }

    /// The source frame index of each output frame.
    pub(crate) fn pick(&self, pick: &FramePick) -> Result<Vec<usize>, PickError> {
        match *pick {
            FramePick::AtFps { fps, count } => self.pick_at_fps(fps, count),
            FramePick::FitClip { count } => self.pick_fit_clip(count),
        }
    }

    /// Output `k` is the frame on screen at `k / fps`: `start ≤ t < end`.
    fn pick_at_fps(&self, fps: f64, count: usize) -> Result<Vec<usize>, PickError> {
        if !is_positive_rate(fps) {
            return Err(PickError::InvalidFps);
        }
        let available = self.frames_at_fps(fps);
        if count > available {
            return Err(PickError::TooShort { available });
        }
        Ok((0..count)
            .map(|k| {
                let t = k as f64 / fps;
                // Starts are sorted: the last frame starting at or before t covers it.
                self.starts_secs
                    .partition_point(|&start| start <= t)
                    .saturating_sub(1)
            })
            .collect())
    }

    /// The reference's `keep_last` sampling (`_get_frameid_bbox_adjust_last`): `count`
    /// instants from 0 to the middle of the last frame, each taking the first frame whose
    /// closed interval `[start, end]` holds it (numpy `argmax`, so 0 if none does).
    fn pick_fit_clip(&self, count: usize) -> Result<Vec<usize>, PickError> {
        if count > self.len() {
            return Err(PickError::TooFewFrames {
                available: self.len(),
            });
        }
        let (Some(&last_start), Some(&last_end)) = (self.starts_secs.last(), self.ends_secs.last())
        else {
            return Ok(Vec::new());
        };
        let duration = (last_start + last_end) / 2.0;
        Ok(linspace(duration, count)
            .into_iter()
            .map(|t| {
                self.starts_secs
                    .iter()
                    .zip(&self.ends_secs)
                    .position(|(&start, &end)| t >= start && t <= end)
                    .unwrap_or(0)
            })
            .collect())
    }
}

/// Whether `fps` is a usable sampling rate (positive and finite; NaN is not).
/// How many instants `k / fps` (k = 0, 1, …) fall before `end_secs`.
pub(crate) fn instants_before(end_secs: f64, fps: f64) -> usize {
    if !is_positive_rate(fps) || end_secs <= 0.0 {
        return 0;
    }
    // A float estimate, then nudged with the exact test the picker uses.
    let mut n = (end_secs * fps).ceil().max(0.0) as usize;
    while n > 0 && (n - 1) as f64 / fps >= end_secs {
        n -= 1;
    }
    while (n as f64) / fps < end_secs {
        n += 1;
    }
    n
}

pub(crate) fn is_positive_rate(fps: f64) -> bool {
    fps.is_finite() && fps > 0.0
}

/// numpy's `linspace(0, stop, count)`: `k · (stop / (count − 1))`, the last exactly `stop`.
fn linspace(stop: f64, count: usize) -> Vec<f64> {
    if count < 2 {
        return vec![0.0; count];
    }
    let step = stop / (count - 1) as f64;
    let mut values: Vec<f64> = (0..count).map(|k| k as f64 * step).collect();
    values[count - 1] = stop;
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_24fps(n: usize) -> Timeline {
        Timeline::from_starts((0..n).map(|i| i as f64 / 24.0).collect(), n as f64 / 24.0)
    }

    #[test]
    fn at_fps_takes_the_frame_on_screen_at_each_instant() {
        let picks = at_24fps(32)
            .pick(&FramePick::AtFps {
                fps: 16.0,
                count: 17,
            })
            .unwrap();
        let expected: Vec<usize> = (0..17).map(|k| k * 24 / 16).collect();
        assert_eq!(picks, expected);
        // Upsampling repeats frames.
        let picks = at_24fps(4)
            .pick(&FramePick::AtFps {
                fps: 48.0,
                count: 8,
            })
            .unwrap();
        assert_eq!(picks, [0, 0, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn at_fps_counts_what_the_clip_gives() {
        // 32 frames at 24 fps last 4/3 s: instants 0 … 21/16 fall inside, 22/16 does not.
        let timeline = at_24fps(32);
        assert_eq!(timeline.frames_at_fps(16.0), 22);
        assert_eq!(timeline.frames_at_fps(24.0), 32);
        let pick = FramePick::AtFps {
            fps: 16.0,
            count: 23,
        };
        assert_eq!(
            timeline.pick(&pick),
            Err(PickError::TooShort { available: 22 })
        );
        assert!(
            timeline
                .pick(&FramePick::AtFps {
                    fps: 16.0,
                    count: 22
                })
                .is_ok()
        );
        assert_eq!(
            timeline.pick(&FramePick::AtFps { fps: 0.0, count: 1 }),
            Err(PickError::InvalidFps)
        );
    }

    #[test]
    fn fit_clip_spreads_over_the_clip_and_ends_on_the_last_frame() {
        // Duration = middle of the last frame = 31.5/24 s; instants j · 31.5/8 frames.
        let picks = at_24fps(32).pick(&FramePick::FitClip { count: 9 }).unwrap();
        assert_eq!(picks, [0, 3, 7, 11, 15, 19, 23, 27, 31]);
        // As many picks as frames: every frame once.
        let picks = at_24fps(5).pick(&FramePick::FitClip { count: 5 }).unwrap();
        assert_eq!(picks, [0, 1, 2, 3, 4]);
        assert_eq!(
            at_24fps(5).pick(&FramePick::FitClip { count: 6 }),
            Err(PickError::TooFewFrames { available: 5 })
        );
    }

    #[test]
    fn fit_clip_takes_the_earlier_frame_on_a_shared_boundary() {
        // Frames one unit long: duration 2.5, instants 0, 1.25, 2.5.
        let timeline = Timeline::uniform(3);
        assert_eq!(
            timeline.pick(&FramePick::FitClip { count: 3 }).unwrap(),
            [0, 1, 2]
        );
        assert_eq!(
            timeline.pick(&FramePick::FitClip { count: 2 }).unwrap(),
            [0, 2]
        );
        // Ends 1, 2, 3, 4, 8: duration (4 + 8)/2 = 6, instants 0, 2, 4, 6. The instants 2
        // and 4 sit on boundaries and go to the frame ending there, as numpy's argmax does.
        let timeline = Timeline::from_starts(vec![0.0, 1.0, 2.0, 3.0, 4.0], 8.0);
        assert_eq!(
            timeline.pick(&FramePick::FitClip { count: 4 }).unwrap(),
            [0, 1, 3, 4]
        );
    }

    #[test]
    fn linspace_matches_numpy() {
        assert_eq!(linspace(3.0, 4), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(linspace(5.0, 1), [0.0]);
        assert!(linspace(5.0, 0).is_empty());
    }
}
