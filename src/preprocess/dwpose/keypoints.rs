//! `Wholebody.__call__`'s keypoint layout: COCO-WholeBody's 133 points with a neck added
//! and the body reordered the OpenPose way, all in `float64`.

/// COCO-WholeBody's keypoint count, what RTMPose-wholebody predicts.
pub(crate) const WHOLEBODY: usize = 133;
/// With the neck: OpenPose's 18 body points, 6 feet, 68 face, 2 × 21 hands.
pub const KEYPOINTS: usize = WHOLEBODY + 1;
/// Where the face's 68 points start in the 134.
pub(crate) const FACE: usize = 24;
/// The 18 body points.
pub(crate) const BODY: usize = 18;
/// The neck is inserted before COCO's point 17.
const NECK: usize = 17;
/// Shoulders (COCO 5, 6) make the neck.
const SHOULDERS: [usize; 2] = [5, 6];
/// `new_keypoints_info[:, OPENPOSE] = new_keypoints_info[:, MMPOSE]`.
const MMPOSE: [usize; 15] = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3];
const OPENPOSE: [usize; 15] = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17];
/// The neck counts when both shoulders score above this.
const NECK_SCORE: f64 = 0.3;

/// One person as the reference's annotators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub(crate) keypoints: Vec<[f64; 2]>,
    pub(crate) scores: Vec<f64>,
}

impl Person {
    /// [`KEYPOINTS`] points (x, y) in pixels of the working picture, OpenPose order.
    pub fn keypoints(&self) -> &[[f64; 2]] {
        &self.keypoints
    }

    /// Their scores; the neck's is 1 or 0.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// `Wholebody.__call__` for one person: 133 points in picture pixels and their
    /// (`float32`) scores.
    pub(crate) fn from_wholebody(points: &[[f64; 2]], scores: &[f32]) -> Person {
        debug_assert!(points.len() == WHOLEBODY && scores.len() == WHOLEBODY);
        let mut keypoints: Vec<[f64; 2]> = points.to_vec();
        let mut all: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
        let [a, b] = SHOULDERS;
        // `np.mean` of two: their sum over 2.
        let neck = [
            (points[a][0] + points[b][0]) / 2.0,
            (points[a][1] + points[b][1]) / 2.0,
        ];
        let neck_score = if all[a] > NECK_SCORE && all[b] > NECK_SCORE {
            1.0
        } else {
            0.0
        };
        keypoints.insert(NECK, neck);
        all.insert(NECK, neck_score);
        let (moved, moved_scores): (Vec<_>, Vec<_>) =
            MMPOSE.iter().map(|&i| (keypoints[i], all[i])).unzip();
        for ((&to, point), score) in OPENPOSE.iter().zip(moved).zip(moved_scores) {
            keypoints[to] = point;
            all[to] = score;
        }
        Person {
            keypoints,
            scores: all,
        }
    }
}

/// Everything the detector and estimator found in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Poses {
    pub(crate) frame_size: (usize, usize),
    pub(crate) size: (usize, usize),
    pub(crate) boxes: Vec<[f64; 4]>,
    pub(crate) people: Vec<Person>,
}

impl Poses {
    /// The frame's (width, height).
    pub fn frame_size(&self) -> (usize, usize) {
        self.frame_size
    }

    /// The working picture's (width, height): the frame scaled to a short side of 1024,
    /// both sides rounded to multiples of 64. Keypoints and boxes are in its pixels.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// The person boxes the detector kept (x1, y1, x2, y2), best first; empty when it
    /// found none and the whole picture was taken as one person.
    pub fn boxes(&self) -> &[[f64; 4]] {
        &self.boxes
    }

    /// One per box, or the one of the whole picture.
    pub fn people(&self) -> &[Person] {
        &self.people
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neck_and_openpose_order() {
        let points: Vec<[f64; 2]> = (0..WHOLEBODY)
            .map(|i| [i as f64, 1000.0 + i as f64])
            .collect();
        let mut scores = vec![0.9f32; WHOLEBODY];
        let p = Person::from_wholebody(&points, &scores);
        assert_eq!(p.keypoints.len(), KEYPOINTS);
        // OpenPose: nose, neck, r-shoulder, r-elbow, r-wrist, l-shoulder, l-elbow,
        // l-wrist, r-hip, r-knee, r-ankle, l-hip, l-knee, l-ankle, r-eye, l-eye, r-ear,
        // l-ear; COCO's feet follow.
        let coco = [
            0, 99, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17,
        ];
        for (at, &from) in coco.iter().enumerate() {
            if from == 99 {
                assert_eq!(p.keypoints[at], [5.5, 1005.5]);
                assert_eq!(p.scores[at], 1.0);
            } else {
                assert_eq!(p.keypoints[at][0], from as f64, "point {at}");
            }
        }
        assert_eq!(p.keypoints[FACE][0], 23.0);
        assert_eq!(p.keypoints[KEYPOINTS - 1][0], 132.0);

        // One shoulder at 0.3 (as f32, a hair above 0.3 in f64) and one below: no neck.
        scores[5] = 0.3;
        assert_eq!(Person::from_wholebody(&points, &scores).scores[1], 1.0);
        scores[6] = 0.29;
        assert_eq!(Person::from_wholebody(&points, &scores).scores[1], 0.0);
    }
}
