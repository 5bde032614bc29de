//! `reference`: a reference image prepared as the reference's SubjectAnnotator does for
//! `image_reference` (ROI_ONLY and USE_CROP): the subject on white, cropped to its
//! bounding rectangle.

use super::mask::crop;
use super::region::clip_box;
use crate::manifest::preprocess::PixelBox;
use crate::media::Frame;

/// How the subject is given.
pub enum Subject<'a> {
    /// The whole image, unchanged.
    Plain,
    /// A mask image of the same size: any non-zero red value is the subject.
    Mask(&'a Frame),
    /// A box in the image's pixels.
    Box(PixelBox),
}

/// The prepared reference image, or `None` when the subject is empty.
pub fn prepare(image: &Frame, subject: &Subject) -> Option<Frame> {
    let (w, h) = (image.width, image.height);
    let inside: Vec<bool> = match subject {
        Subject::Plain => return Some(image.clone()),
        Subject::Mask(mask) => mask
            .rgb
            .chunks_exact(3)
            .take(w * h)
            .map(|px| px[0] > 0)
            .collect(),
        Subject::Box(b) => {
            let (x0, y0, x1, y1) = clip_box(*b, w, h);
            (0..w * h)
                .map(|i| (x0..x1).contains(&(i % w)) && (y0..y1).contains(&(i / w)))
                .collect()
        }
    };
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in inside.iter().enumerate().filter(|(_, v)| **v) {
        let (x, y) = (i % w, i / w);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
    }
    if x0 == usize::MAX {
        return None;
    }
    let mut on_white = image.clone();
    for (i, _) in inside.iter().enumerate().filter(|(_, v)| !**v) {
        on_white.rgb[i * 3..i * 3 + 3].fill(255);
    }
    Some(crop(&on_white, (x0, y0, x1, y1)))
}
