//! `WIDTHxHEIGHT` frame sizes as written in manifests and on the command line.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameSize {
    pub width_px: usize,
    pub height_px: usize,
}

impl FrameSize {
    pub const fn new(width_px: usize, height_px: usize) -> Self {
        Self {
            width_px,
            height_px,
        }
    }

    /// The same size turned by 90°.
    pub fn transposed(self) -> Self {
        Self::new(self.height_px, self.width_px)
    }

    pub fn is_portrait(self) -> bool {
        self.height_px > self.width_px
    }
}

impl std::fmt::Display for FrameSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width_px, self.height_px)
    }
}

impl std::str::FromStr for FrameSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s
            .split_once('x')
            .and_then(|(w, h)| Some(Self::new(w.parse().ok()?, h.parse().ok()?)));
        parsed.ok_or_else(|| format!("`{s}` is not a size; write WIDTHxHEIGHT, e.g. 832x480"))
    }
}

impl Serialize for FrameSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FrameSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("832x480".parse::<FrameSize>(), Ok(FrameSize::new(832, 480)));
        assert!(
            "832*480"
                .parse::<FrameSize>()
                .unwrap_err()
                .contains("WIDTHxHEIGHT")
        );
        assert!("x480".parse::<FrameSize>().is_err());
        assert_eq!(FrameSize::new(480, 832).to_string(), "480x832");
        assert!(FrameSize::new(480, 832).is_portrait());
    }
}
