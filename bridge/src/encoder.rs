//! Which hardware the transcoder uses, chosen once at start-up from what GStreamer registers.
//!
//! In order: NVIDIA NVENC (`nvh264enc`, GStreamer's nvcodec plugin registers it only on a GPU
//! that has the encoder), VA-API (`vah264enc`), then x264. Decoding and scaling go to the
//! NVIDIA GPU whenever nvcodec registers its decoders and `cudascale`, even without NVENC:
//! data-centre GPUs such as the H100 and H200 have NVDEC but no NVENC, so there the frames are
//! decoded and scaled on the GPU and encoded by x264. `--hls-encoder` forces a choice.

use std::fmt;

use crate::Error;

/// The H.264 encoder of every rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEncoder {
    /// NVIDIA NVENC through nvcodec (`nvh264enc`).
    Nvenc,
    /// VA-API (`vah264enc`, Intel and AMD GPUs).
    Vaapi,
    /// Software, `x264enc`.
    X264,
}

impl VideoEncoder {
    /// The GStreamer element.
    pub fn element(self) -> &'static str {
        match self {
            VideoEncoder::Nvenc => "nvh264enc",
            VideoEncoder::Vaapi => "vah264enc",
            VideoEncoder::X264 => "x264enc",
        }
    }

    /// The name used in logs, `/metrics` and stream health.
    pub fn name(self) -> &'static str {
        match self {
            VideoEncoder::Nvenc => "nvenc",
            VideoEncoder::Vaapi => "vaapi",
            VideoEncoder::X264 => "x264",
        }
    }
}

/// `--hls-encoder`: `auto` probes, the others insist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderPreference {
    /// The first that registers of NVENC, VA-API, x264.
    #[default]
    Auto,
    /// NVENC or fail.
    Nvenc,
    /// VA-API or fail.
    Vaapi,
    /// x264 (decoding may still use the GPU).
    X264,
}

impl std::str::FromStr for EncoderPreference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(EncoderPreference::Auto),
            "nvenc" => Ok(EncoderPreference::Nvenc),
            "vaapi" => Ok(EncoderPreference::Vaapi),
            "x264" => Ok(EncoderPreference::X264),
            other => Err(format!("unknown encoder {other:?}: auto, x264, nvenc or vaapi")),
        }
    }
}

/// What the transcoder runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderChoice {
    /// The H.264 encoder.
    pub encoder: VideoEncoder,
    /// Decode (NVDEC) and scale (`cudascale`) on the NVIDIA GPU.
    pub gpu_decode: bool,
}

impl fmt::Display for EncoderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decode = if self.gpu_decode { "nvdec+cuda" } else { "cpu" };
        write!(f, "{} encode, {decode} decode and scale", self.encoder.name())
    }
}

/// Elements the NVIDIA decode-and-scale path needs besides its decoders.
const CUDA_SCALE: [&str; 3] = ["cudascale", "cudaupload", "cudadownload"];
/// NVDEC decoders; the path is used when the H.264 and VP8 ones register.
const NVDEC: [&str; 2] = ["nvh264dec", "nvvp8dec"];

/// The choice for `preference`, given which elements are registered (`has`).
pub fn choose(preference: EncoderPreference, has: impl Fn(&str) -> bool) -> Result<EncoderChoice, Error> {
    let gpu_decode = NVDEC.iter().chain(&CUDA_SCALE).all(|e| has(e));
    let usable = |e: VideoEncoder| has(e.element());
    let encoder = match preference {
        EncoderPreference::Auto => [VideoEncoder::Nvenc, VideoEncoder::Vaapi, VideoEncoder::X264]
            .into_iter()
            .find(|e| usable(*e)),
        EncoderPreference::Nvenc => Some(VideoEncoder::Nvenc).filter(|e| usable(*e)),
        EncoderPreference::Vaapi => Some(VideoEncoder::Vaapi).filter(|e| usable(*e)),
        EncoderPreference::X264 => Some(VideoEncoder::X264).filter(|e| usable(*e)),
    };
    let Some(encoder) = encoder else {
        let wanted = match preference {
            EncoderPreference::Nvenc => VideoEncoder::Nvenc,
            EncoderPreference::Vaapi => VideoEncoder::Vaapi,
            _ => VideoEncoder::X264,
        };
        return Err(Error::MissingElement {
            element: wanted.element(),
            package: match wanted {
                VideoEncoder::Nvenc | VideoEncoder::Vaapi => {
                    "gstreamer1.0-plugins-bad (and the GPU's driver)"
                }
                VideoEncoder::X264 => "gstreamer1.0-plugins-ugly",
            },
        });
    };
    Ok(EncoderChoice {
        encoder,
        // VA-API frames stay on the CPU side here: only NVIDIA memory is wired through.
        gpu_decode: gpu_decode && encoder != VideoEncoder::Vaapi,
    })
}

/// The choice on this machine, from GStreamer's registry.
pub fn probe(preference: EncoderPreference) -> Result<EncoderChoice, Error> {
    gstreamer::init().map_err(|e| Error::Init(e.to_string()))?;
    choose(preference, |e| gstreamer::ElementFactory::find(e).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(elements: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |e| elements.contains(&e)
    }

    const NVIDIA_DECODE: [&str; 5] = ["nvh264dec", "nvvp8dec", "cudascale", "cudaupload", "cudadownload"];

    #[test]
    fn the_probe_prefers_nvenc_then_vaapi_then_x264() {
        let cases: &[(&[&str], VideoEncoder, bool)] = &[
            (&["x264enc"], VideoEncoder::X264, false),
            (&["x264enc", "vah264enc"], VideoEncoder::Vaapi, false),
            (&["x264enc", "vah264enc", "nvh264enc"], VideoEncoder::Nvenc, false),
            // A data-centre GPU: NVDEC and CUDA scaling, no NVENC.
            (
                &[
                    "x264enc",
                    "nvh264dec",
                    "nvvp8dec",
                    "cudascale",
                    "cudaupload",
                    "cudadownload",
                ],
                VideoEncoder::X264,
                true,
            ),
            (
                &[
                    "x264enc",
                    "nvh264enc",
                    "nvh264dec",
                    "nvvp8dec",
                    "cudascale",
                    "cudaupload",
                    "cudadownload",
                ],
                VideoEncoder::Nvenc,
                true,
            ),
            // Decoders without the CUDA scaler: decode stays on the CPU.
            (&["x264enc", "nvh264dec", "nvvp8dec"], VideoEncoder::X264, false),
        ];
        for (elements, encoder, gpu_decode) in cases {
            let choice = choose(EncoderPreference::Auto, with(elements)).expect("a choice");
            assert_eq!(
                (choice.encoder, choice.gpu_decode),
                (*encoder, *gpu_decode),
                "{elements:?}"
            );
        }
    }

    #[test]
    fn a_forced_encoder_is_used_or_refused_by_name() {
        let all: Vec<&str> = ["x264enc", "nvh264enc"]
            .into_iter()
            .chain(NVIDIA_DECODE)
            .collect();
        let x264 = choose(EncoderPreference::X264, with(&all)).expect("x264 is there");
        assert_eq!(x264.encoder, VideoEncoder::X264);
        assert!(x264.gpu_decode, "x264 still decodes on the GPU when it can");
        let err = choose(EncoderPreference::Vaapi, with(&all)).expect_err("no VA-API");
        assert!(err.to_string().contains("vah264enc"), "{err}");
        assert!(choose(EncoderPreference::Auto, with(&[])).is_err());
        assert_eq!("nvenc".parse(), Ok(EncoderPreference::Nvenc));
        assert!("quicksync".parse::<EncoderPreference>().is_err());
    }

    #[test]
    fn this_machine_registers_at_least_x264() {
        let choice = probe(EncoderPreference::Auto).expect("x264enc is installed by the set-up");
        // Whatever the machine has, the choice names real elements.
        assert!(gstreamer::ElementFactory::find(choice.encoder.element()).is_some());
    }
}
