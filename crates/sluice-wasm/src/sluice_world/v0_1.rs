//! Components built on `sluice:plugin@0.1.x`, which carried header fields as name/value pairs.
//!
//! The executor speaks 0.3; this adapter converts at the boundary: a hook is handed the held
//! message as a record, and the header list the host encoded is handed to a 0.1 guest as pairs
//! borrowed from it; what the guest answers (or sends) is encoded into one list, refusing a
//! pair the encoding cannot carry. A 0.1 plugin pays the pairs' cost it always paid.

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::{
    Answer, Call, Flow02, Handled, State, WitError, WitErrorKind, WitRequest, WitResponse,
    hand_over, request_answered, response_answered, take_request, take_response, url_text,
};
use crate::headers;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/0.1",
        world: "sluice:plugin/http-client@0.1.1",
        imports: { "sluice:plugin/host.send": async, "sluice:plugin/host.send-http2": async },
        exports: { default: async },
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

use bindings::sluice::plugin::types as v1;
pub(super) use bindings::{HttpClient, HttpClientPre};

older_version_conversions!(v1);

/// Adds the 0.1 `host` interface (`sluice:plugin/host@0.1.1`) beside the newer ones.
pub(super) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    HttpClient::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

/// Calls a 0.1 export with the executor's call; answers as the executor does.
pub(super) async fn invoke(
    plugin: &HttpClient,
    store: &mut Store<State>,
    call: Call,
) -> wasmtime::Result<Answer> {
    let handler = plugin.sluice_plugin_handler();
    Ok(match call {
        Call::Handle => {
            let handed = hand_over(store.data_mut())?;
            let pairs = pairs(&handed.headers);
            let param = v1::RequestParam {
                method: handed.method.as_str(),
                url: &handed.url,
                headers: &pairs,
                body: &handed.body,
            };
            let answer = handler.call_handle(store, param).await?;
            let answer = answer.map_err(error_from_guest).and_then(response_from_v1);
            Answer::Response(answer.map(Handled::Response), None)
        }
        Call::OnRequest => {
            let request = take_request(store.data_mut())?;
            let url = url_text(&request.url);
            let encoded = headers::encode(&request.headers);
            let pairs = pairs(&encoded);
            let param = v1::RequestParam {
                method: request.method.as_str(),
                url: &url,
                headers: &pairs,
                body: &request.body,
            };
            let answer = handler.call_on_request(&mut *store, param).await?;
            let flow = answer
                .map_err(error_from_guest)
                .and_then(|flow| match flow {
                    v1::RequestOrResponse::Request(r) => request_from_v1(r).map(Flow02::Request),
                    v1::RequestOrResponse::Response(r) => response_from_v1(r).map(Flow02::Response),
                });
            request_answered(store.data_mut(), request, &url, &encoded, flow)
        }
        Call::OnResponse => {
            let (parts, body) = take_response(store.data_mut())?;
            let encoded = headers::encode(&parts.headers);
            let pairs = pairs(&encoded);
            let param = v1::ResponseParam {
                status: parts.status.as_u16(),
                headers: &pairs,
                body: &body,
            };
            let answer = handler.call_on_response(&mut *store, param).await?;
            let answer = answer.map_err(error_from_guest).and_then(response_from_v1);
            response_answered(store.data_mut(), parts, encoded, answer)
        }
    })
}

/// The pairs of a list the host encoded, borrowed from it (its names are `HeaderName`s: ASCII).
fn pairs(encoded: &[u8]) -> Vec<(&str, &[u8])> {
    headers::fields(encoded)
        .map(|(name, value)| (std::str::from_utf8(name).unwrap_or_default(), value))
        .collect()
}

fn pairs_owned(encoded: &[u8]) -> Vec<(String, Vec<u8>)> {
    headers::fields(encoded)
        .map(|(name, value)| (String::from_utf8_lossy(name).into_owned(), value.to_vec()))
        .collect()
}

/// A guest's header pairs as one encoded list; a pair the encoding cannot carry (nor HTTP) is the
/// plugin's error.
fn encode(what: &str, pairs: Vec<(String, Vec<u8>)>) -> Result<Vec<u8>, WitError> {
    headers::encode_pairs(|| what.to_owned(), pairs).map_err(|e| WitError {
        kind: WitErrorKind::Plugin,
        message: e.message,
    })
}

fn request_from_v1(r: v1::RequestResult) -> Result<WitRequest, WitError> {
    Ok(WitRequest {
        headers: encode("the plugin's request", r.headers)?,
        method: r.method,
        url: r.url,
        body: r.body,
    })
}

fn response_from_v1(r: v1::ResponseResult) -> Result<WitResponse, WitError> {
    Ok(WitResponse {
        status: r.status,
        headers: encode("the plugin's answer", r.headers)?,
        body: r.body,
    })
}

impl v1::Host for State {}

/// 0.1's imports: the request is encoded and handed to the current version's, the answer decoded back.
impl bindings::sluice::plugin::host::Host for State {
    async fn send(&mut self, request: v1::RequestResult) -> Result<v1::ResponseResult, v1::Error> {
        let request = request_from_v1(request).map_err(error_to_guest)?;
        let response = super::bindings::sluice::plugin::host::Host::send(self, request)
            .await
            .map_err(error_to_guest)?;
        Ok(v1::ResponseResult {
            status: response.status,
            headers: pairs_owned(&response.headers),
            body: response.body,
        })
    }

    async fn send_http2(
        &mut self,
        request: v1::RequestResult,
    ) -> Result<v1::Http2Response, v1::Error> {
        let request = request_from_v1(request).map_err(error_to_guest)?;
        let response = super::bindings::sluice::plugin::host::Host::send_http2(self, request)
            .await
            .map_err(error_to_guest)?;
        Ok(v1::Http2Response {
            status: response.status,
            headers: pairs_owned(&response.headers),
            body: response.body,
            trailers: pairs_owned(&response.trailers),
        })
    }

    fn log(&mut self, level: v1::Level, message: String) {
        let level = level_from_guest(level);
        super::bindings::sluice::plugin::host::Host::log(self, level, message);
    }
}
