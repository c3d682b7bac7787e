//! What the test source produces: the ladder, the GOP, the audio.

use std::time::Duration;

use crate::Error;
pub use crate::ladder::{Rendition, SpeedPreset};
use crate::media::aac::AUDIO_BITRATE;

/// Configuration of [`TestSource`](super::TestSource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSourceConfig {
    /// The video ladder, top rung first; the source picture has the size of the largest rung.
    pub renditions: Vec<Rendition>,
    /// Frames per second of every rung.
    pub frame_rate: u32,
    /// Distance between keyframes, the same instants on every rung; a whole number of frames.
    pub keyframe_interval: Duration,
    /// x264 speed/quality trade-off.
    pub speed_preset: SpeedPreset,
    /// AAC-LC audio at 48 kHz stereo as the last track, at this bit rate in bit/s; `None` for
    /// video only.
    pub audio_bitrate: Option<u32>,
}

impl Default for TestSourceConfig {
    fn default() -> Self {
        TestSourceConfig {
            renditions: vec![
                Rendition {
                    width: 1280,
                    height: 720,
                    bitrate: 2_500_000,
                },
                Rendition {
                    width: 854,
                    height: 480,
                    bitrate: 1_200_000,
                },
                Rendition {
                    width: 640,
                    height: 360,
                    bitrate: 700_000,
                },
            ],
            frame_rate: 30,
            keyframe_interval: Duration::from_secs(2),
            speed_preset: SpeedPreset::default(),
            audio_bitrate: Some(AUDIO_BITRATE),
        }
    }
}

impl TestSourceConfig {
    /// The source picture: the largest width and height of the ladder.
    pub fn source_size(&self) -> (u32, u32) {
        let width = self.renditions.iter().map(|r| r.width).max().unwrap_or(0);
        let height = self.renditions.iter().map(|r| r.height).max().unwrap_or(0);
        (width, height)
    }

    /// The keyframe interval in frames.
    pub fn keyframe_interval_frames(&self) -> u32 {
        let frames = self.keyframe_interval.as_secs_f64() * f64::from(self.frame_rate);
        frames.round() as u32
    }

    /// Number of tracks announced: one per rung, plus audio.
    pub fn track_count(&self) -> usize {
        self.renditions.len() + usize::from(self.audio_bitrate.is_some())
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        if self.renditions.is_empty() {
            return invalid("no renditions".into());
        }
        for r in &self.renditions {
            if r.width < 72 || r.height < 40 || r.width % 2 != 0 || r.height % 2 != 0 {
                return invalid(format!(
                    "rendition {}x{}: sides must be even, at least 72x40",
                    r.width, r.height
                ));
            }
            if r.bitrate < 1000 {
                return invalid(format!(
                    "rendition {}x{}: bit rate {} bit/s",
                    r.width, r.height, r.bitrate
                ));
            }
        }
        if !(1..=120).contains(&self.frame_rate) {
            return invalid(format!("frame rate {}", self.frame_rate));
        }
        let frames = self.keyframe_interval.as_secs_f64() * f64::from(self.frame_rate);
        if frames < 1.0 || (frames - frames.round()).abs() > 1e-6 {
            return invalid(format!(
                "keyframe interval {:?} is not a whole number of frames at {} fps",
                self.keyframe_interval, self.frame_rate
            ));
        }
        if let Some(bitrate) = self.audio_bitrate
            && !(32_000..=320_000).contains(&bitrate)
        {
            return invalid(format!("audio bit rate {bitrate} bit/s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_a_valid_three_rung_ladder_with_audio() {
        let config = TestSourceConfig::default();
        config.validate().expect("the default is valid");
        assert_eq!(config.source_size(), (1280, 720));
        assert_eq!(config.keyframe_interval_frames(), 60);
        assert_eq!(config.track_count(), 4);
    }

    #[test]
    fn rejects_what_the_pipeline_cannot_honour() {
        let mut odd = TestSourceConfig::default();
        odd.renditions[1].width = 853;
        assert!(matches!(odd.validate(), Err(Error::InvalidConfig(_))));

        let fractional = TestSourceConfig {
            keyframe_interval: Duration::from_millis(1010),
            ..TestSourceConfig::default()
        };
        assert!(matches!(fractional.validate(), Err(Error::InvalidConfig(_))));

        let empty = TestSourceConfig {
            renditions: vec![],
            ..TestSourceConfig::default()
        };
        assert!(matches!(empty.validate(), Err(Error::InvalidConfig(_))));
    }
}
