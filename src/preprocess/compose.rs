//! Two preprocessed videos made into one, by task class, with the reference's
//! `CompositionAnnotator` arithmetic on masks in [0, 1] (first = the earlier task).

use super::mask::Mask;
use super::{PreparedVideo, TaskClass};
use crate::media::Frame;

/// The composed video, as long as the shorter input. Both must share one frame size.
pub fn compose(
    (first_class, first): (TaskClass, &PreparedVideo),
    (second_class, second): (TaskClass, &PreparedVideo),
) -> PreparedVideo {
    use TaskClass::{Control, Extension, Repaint};
    // Which video is "a" and "b" in `video = a·(1 − m) + b·m`, and how m and the mask are made.
    enum Rule {
        /// The first video's mask picks the second video: `f2·m1 + f1·(1 − m1)`, mask `m1·m2`.
        KeepFirstWhereMasked,
        /// The second video over the first where its mask is set; mask `m1(1 − m2) + m2²`.
        SecondOverFirst,
        /// The repaint video's region shows the control video; the repaint mask stays.
        ControlInRepaintRegion { repaint_first: bool },
    }
    let rule = match (first_class, second_class) {
        (Extension, _) => Rule::KeepFirstWhereMasked,
        (Repaint, Extension) | (Control, Extension) | (Repaint, Repaint) | (Control, Control) => {
            Rule::SecondOverFirst
        }
        (Repaint, Control) => Rule::ControlInRepaintRegion {
            repaint_first: true,
        },
        (Control, Repaint) => Rule::ControlInRepaintRegion {
            repaint_first: false,
        },
    };
    let count = first.frames.len().min(second.frames.len());
    let mut out = PreparedVideo::with_capacity(count);
    for t in 0..count {
        let (f1, m1) = (&first.frames[t], &first.masks[t]);
        let (f2, m2) = (&second.frames[t], &second.masks[t]);
        let (w, h) = (f1.width, f1.height);
        let mut frame = Frame::filled(w, h, [0; 3]);
        let mut mask = Mask::filled(w, h, 0);
        for i in 0..w * h {
            let a = m1.values[i] as f32 / 255.0;
            let b = m2.values[i] as f32 / 255.0;
            let (pick, keep, mask_value) = match rule {
                Rule::KeepFirstWhereMasked => (f2, f1, (a, a * b)),
                Rule::SecondOverFirst => (f2, f1, (b, a * (1.0 - b) + b * b)),
                Rule::ControlInRepaintRegion { repaint_first } => {
                    let (repaint, control, m) = if repaint_first {
                        (f1, f2, a)
                    } else {
                        (f2, f1, b)
                    };
                    (control, repaint, (m, m))
                }
            };
            let (m, new_mask) = mask_value;
            for c in 0..3 {
                let v = pick.rgb[i * 3 + c] as f32 * m + keep.rgb[i * 3 + c] as f32 * (1.0 - m);
                frame.rgb[i * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
            mask.values[i] = (new_mask * 255.0).round().clamp(0.0, 255.0) as u8;
        }
        out.push(frame, mask);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(value: u8, mask: &[u8]) -> PreparedVideo {
        PreparedVideo {
            frames: mask
                .iter()
                .map(|_| Frame::filled(2, 1, [value; 3]))
                .collect(),
            masks: mask.iter().map(|&m| Mask::filled(2, 1, m)).collect(),
        }
    }

    #[test]
    fn a_first_frame_over_a_control_video() {
        // Extension: frame 0 kept (mask 0), frames 1.. generated; control: all reactive.
        let extension = video(127, &[0, 255, 255]);
        let mut extension_frames = extension.clone();
        extension_frames.frames[0] = Frame::filled(2, 1, [9; 3]);
        let pose = video(200, &[255, 255, 255]);
        let out = compose(
            (TaskClass::Extension, &extension_frames),
            (TaskClass::Control, &pose),
        );
        let values: Vec<u8> = out.frames.iter().map(|f| f.rgb[0]).collect();
        let masks: Vec<u8> = out.masks.iter().map(|m| m.values[0]).collect();
        assert_eq!(values, [9, 200, 200]);
        assert_eq!(masks, [0, 255, 255]);
    }

    #[test]
    fn control_inside_a_repaint_region_keeps_the_repaint_mask() {
        let repaint = video(128, &[0, 255]);
        let depth = video(50, &[255, 255]);
        for (first, second) in [
            ((TaskClass::Repaint, &repaint), (TaskClass::Control, &depth)),
            ((TaskClass::Control, &depth), (TaskClass::Repaint, &repaint)),
        ] {
            let out = compose(first, second);
            assert_eq!(out.frames[0].rgb[0], 128);
            assert_eq!(out.frames[1].rgb[0], 50);
            assert_eq!(out.masks[0].values[0], 0);
            assert_eq!(out.masks[1].values[0], 255);
        }
    }
}
