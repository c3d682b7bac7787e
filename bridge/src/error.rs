//! Why a pipeline (the test source, a room's transcoder) could not start or stopped working.

/// Errors of the bridge's GStreamer pipelines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// GStreamer itself could not be initialised.
    #[error("GStreamer initialisation failed: {0}")]
    Init(String),
    /// A plugin the pipeline needs is not installed.
    #[error("GStreamer element {element} not found: install {package}")]
    MissingElement {
        /// The element factory name, e.g. `x264enc`.
        element: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// No AAC encoder is installed.
    #[error("no GStreamer AAC encoder found (tried {tried}): install gstreamer1.0-libav")]
    NoAacEncoder {
        /// The element names that were probed, comma-separated.
        tried: String,
    },
    /// The configuration asks for something the pipeline cannot do.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Building or linking the pipeline failed.
    #[error("building the pipeline failed: {0}")]
    Build(String),
    /// An element posted an error on the bus (or the pipeline refused to start).
    #[error("pipeline error from {element}: {message}{}", debug.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Pipeline {
        /// Name of the element that reported it.
        element: String,
        /// The error message.
        message: String,
        /// GStreamer's debug detail, if any.
        debug: Option<String>,
    },
}

impl From<gstreamer::glib::BoolError> for Error {
    fn from(e: gstreamer::glib::BoolError) -> Self {
        Error::Build(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_plugin_names_the_package() {
        let e = Error::MissingElement {
            element: "x264enc",
            package: "gstreamer1.0-plugins-ugly",
        };
        assert_eq!(
            e.to_string(),
            "GStreamer element x264enc not found: install gstreamer1.0-plugins-ugly"
        );
    }
}
