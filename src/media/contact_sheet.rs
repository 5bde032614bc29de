//! Previews of a result: a contact sheet of evenly spaced thumbnails and a poster frame,
//! so a person can judge a render at a glance without playing the video.

use image::imageops::{self, FilterType};

use super::frame::Frame;

/// Width of the gutter around and between thumbnails.
const GUTTER_PX: usize = 4;
/// The gutter's dark grey.
const GUTTER_RGB: [u8; 3] = [32, 32, 32];

/// What `poster` returns for an empty clip.
static EMPTY: Frame = Frame::EMPTY;

/// Up to `max_thumbs` frames, evenly spaced from the first to the last, each scaled to
/// `thumb_width_px` wide (aspect kept, height rounded to even), laid out row by row in
/// `columns` columns with a 4-px dark grey gutter around and between them.
pub fn contact_sheet(
    frames: &[Frame],
    max_thumbs: usize,
    columns: usize,
    thumb_width_px: usize,
) -> Frame {
    let count = max_thumbs.min(frames.len());
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    let thumb_w = thumb_width_px.max(1);
    let thumb_h = frames.first().map_or(0, |f| thumb_height(f, thumb_w));
    let mut sheet = Frame::filled(
        columns * thumb_w + (columns + 1) * GUTTER_PX,
        rows * thumb_h + (rows + 1) * GUTTER_PX,
        GUTTER_RGB,
    );
    for (slot, index) in spread(frames.len(), count).into_iter().enumerate() {
        let thumb = imageops::resize(
            &frames[index].to_image(),
            thumb_w as u32,
            thumb_h as u32,
            FilterType::Triangle,
        );
        let left = GUTTER_PX + (slot % columns) * (thumb_w + GUTTER_PX);
        let top = GUTTER_PX + (slot / columns) * (thumb_h + GUTTER_PX);
        for (y, row) in thumb.into_raw().chunks_exact(thumb_w * 3).enumerate() {
            let at = ((top + y) * sheet.width + left) * 3;
            sheet.rgb[at..at + thumb_w * 3].copy_from_slice(row);
        }
    }
    sheet
}

/// The middle frame of the clip (index `len / 2`); an empty 0×0 frame for an empty clip.
pub fn poster(frames: &[Frame]) -> &Frame {
    frames.get(frames.len() / 2).unwrap_or(&EMPTY)
}

/// Thumbnail height for `thumb_w`: the frame's aspect, rounded to an even number ≥ 2.
fn thumb_height(frame: &Frame, thumb_w: usize) -> usize {
    if frame.width == 0 {
        return 2;
    }
    let exact = frame.height as f64 * thumb_w as f64 / frame.width as f64;
    (((exact / 2.0).round() as usize) * 2).max(2)
}

/// `count` indices spread evenly over `0..len`, first and last included.
fn spread(len: usize, count: usize) -> Vec<usize> {
    match count {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..count)
            .map(|i| ((i * (len - 1)) as f64 / (count - 1) as f64).round() as usize)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_includes_both_ends() {
        assert_eq!(spread(10, 4), [0, 3, 6, 9]);
        assert_eq!(spread(3, 3), [0, 1, 2]);
        assert_eq!(spread(81, 2), [0, 80]);
        assert_eq!(spread(5, 1), [0]);
    }

    #[test]
    fn thumbnails_land_in_their_cells_with_grey_gutters() {
        // Frame k is flat grey level 10·k; 5 frames, 3 thumbs: frames 0, 2, 4.
        let frames: Vec<Frame> = (0..5)
            .map(|k| Frame::filled(20, 10, [10 * k as u8 + 100; 3]))
            .collect();
        let sheet = contact_sheet(&frames, 3, 2, 8);
        // Thumbs 8×4; 2 columns, 2 rows: 2·8 + 3·4 = 28 wide, 2·4 + 3·4 = 20 high.
        assert_eq!((sheet.width, sheet.height), (28, 20));
        assert_eq!(sheet.pixel(0, 0), GUTTER_RGB);
        assert_eq!(sheet.pixel(4, 4), [100; 3]); // frame 0, top left
        assert_eq!(sheet.pixel(16, 4), [120; 3]); // frame 2, top right
        assert_eq!(sheet.pixel(4, 12), [140; 3]); // frame 4, second row
        assert_eq!(sheet.pixel(16, 12), GUTTER_RGB); // empty last cell
        assert_eq!(sheet.pixel(13, 5), GUTTER_RGB); // between columns
    }

    #[test]
    fn poster_is_the_middle_frame() {
        let frames: Vec<Frame> = (0..5u8).map(|k| Frame::filled(1, 1, [k; 3])).collect();
        assert_eq!(poster(&frames).rgb, [2; 3]);
        assert_eq!(poster(&frames[..4]).rgb, [2; 3]);
        assert_eq!(poster(&[]).width, 0);
    }
}
