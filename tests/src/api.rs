//! The control-plane API of a Fanout server: create a stream, read its status.

use serde::Deserialize;

use crate::signal::{SignalError, StatusCode, Url, http_client, parse_url};

/// A stream as `POST /api/v1/streams` returns it (the key is shown only here).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedStream {
    /// Stream id.
    pub id: String,
    /// The secret stream key (WHIP Bearer token, RTMP/SRT key).
    pub stream_key: String,
    /// Where to publish with WHIP.
    pub whip_url: String,
    /// Where to watch with WHEP.
    pub whep_url: String,
    /// Status at creation (e.g. `idle`).
    #[serde(default)]
    pub status: Option<String>,
    /// The LL-HLS playlist URL, when the server reports one.
    #[serde(default)]
    pub hls_url: Option<String>,
    /// Everything the server sent, for fields not named here.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

/// `GET /api/v1/streams/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamStatus {
    /// `idle`, `live`, `ended`... as the server spells it.
    pub status: String,
    /// Current viewer count, when reported.
    #[serde(default)]
    pub viewers: Option<u64>,
    /// Everything the server sent.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

/// A client for `/api/v1` of one server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: Url,
    admin_token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// `base` is the server's root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, admin_token: &str) -> Result<Self, SignalError> {
        Ok(Self {
            base: parse_url(base)?,
            admin_token: admin_token.to_owned(),
            http: http_client(),
        })
    }

    fn url(&self, path: &str) -> Result<Url, SignalError> {
        self.base.join(path).map_err(|e| SignalError::BadUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// `POST /api/v1/streams {"title": title}`; expects 201.
    pub async fn create_stream(&self, title: &str) -> Result<CreatedStream, SignalError> {
        let url = self.url("/api/v1/streams")?;
        let value = self
            .send_json(
                "POST",
                self.http
                    .post(url.clone())
                    .bearer_auth(&self.admin_token)
                    .json(&serde_json::json!({ "title": title })),
                &url,
                StatusCode::CREATED,
            )
            .await?;
        let mut created: CreatedStream =
            serde_json::from_value(value.clone()).map_err(|e| SignalError::Status {
                method: "POST",
                url: url.to_string(),
                status: StatusCode::CREATED,
                body: format!("unexpected JSON ({e}): {value}"),
            })?;
        created.raw = value;
        Ok(created)
    }

    /// `GET /api/v1/streams/{id}`; expects 200.
    pub async fn stream(&self, id: &str) -> Result<StreamStatus, SignalError> {
        let url = self.url(&format!("/api/v1/streams/{id}"))?;
        let value = self
            .send_json(
                "GET",
                self.http.get(url.clone()).bearer_auth(&self.admin_token),
                &url,
                StatusCode::OK,
            )
            .await?;
        let mut status: StreamStatus =
            serde_json::from_value(value.clone()).map_err(|e| SignalError::Status {
                method: "GET",
                url: url.to_string(),
                status: StatusCode::OK,
                body: format!("unexpected JSON ({e}): {value}"),
            })?;
        status.raw = value;
        Ok(status)
    }

    async fn send_json(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        url: &Url,
        expected: StatusCode,
    ) -> Result<serde_json::Value, SignalError> {
        let response = request.send().await.map_err(|source| SignalError::Http {
            method,
            url: url.to_string(),
            source,
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|source| SignalError::Http {
            method,
            url: url.to_string(),
            source,
        })?;
        if status != expected {
            return Err(SignalError::Status {
                method,
                url: url.to_string(),
                status,
                body: body.chars().take(500).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| SignalError::Status {
            method,
            url: url.to_string(),
            status,
            body: format!("not JSON ({e}): {}", body.chars().take(200).collect::<String>()),
        })
    }
}
