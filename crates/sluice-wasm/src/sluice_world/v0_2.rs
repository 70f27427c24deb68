//! Components built on `sluice:plugin@0.2.x`, whose hooks were handed whole records.
//!
//! The executor speaks 0.3; this adapter hands a 0.2 hook the held message as a record (its
//! URL as text, its headers encoded) and puts the record it answers back in the store,
//! keeping the host's parsed parts the guest left as they were. `handle` is handed the held
//! request as a record the same way; the imports carry the same records in both versions:
//! they pass through field by field.

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::{
    Answer, Call, Handled, State, WitError, WitErrorKind, WitRequest, WitResponse, hand_over,
    headers, request_answered, response_answered, take_request, take_response, url_text,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/0.2",
        world: "sluice:plugin/http-client@0.2.0",
        imports: { "sluice:plugin/host.send": async, "sluice:plugin/host.send-http2": async },
        exports: { default: async },
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

use bindings::sluice::plugin::types as v2;
pub(super) use bindings::{HttpClient, HttpClientPre};

older_version_conversions!(v2);

/// Adds the 0.2 `host` interface (`sluice:plugin/host@0.2.0`) beside 0.3's.
pub(super) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    HttpClient::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

/// Calls a 0.2 export with a 0.3 call; answers as 0.3.
pub(super) async fn invoke(
    plugin: &HttpClient,
    store: &mut Store<State>,
    call: Call,
) -> wasmtime::Result<Answer> {
    let handler = plugin.sluice_plugin_handler();
    Ok(match call {
        Call::Handle => {
            let handed = hand_over(store.data_mut())?;
            let param = v2::RequestParam {
                method: handed.method.as_str(),
                url: &handed.url,
                headers: &handed.headers,
                body: &handed.body,
            };
            let answer = handler.call_handle(&mut *store, param).await?;
            let answer = answer.map(|r| Handled::Response(response_from_v2(r)));
            Answer::Response(answer.map_err(error_from_guest), None)
        }
        Call::OnRequest => {
            let request = take_request(store.data_mut())?;
            let url = url_text(&request.url);
            let encoded = headers::encode(&request.headers);
            let param = v2::RequestParam {
                method: request.method.as_str(),
                url: &url,
                headers: &encoded,
                body: &request.body,
            };
            let flow = handler.call_on_request(&mut *store, param).await?;
            let flow = flow.map_err(error_from_guest).map(|flow| match flow {
                v2::RequestOrResponse::Request(r) => super::Flow02::Request(request_from_v2(r)),
                v2::RequestOrResponse::Response(r) => super::Flow02::Response(response_from_v2(r)),
            });
            request_answered(store.data_mut(), request, &url, &encoded, flow)
        }
        Call::OnResponse => {
            let (parts, body) = take_response(store.data_mut())?;
            let encoded = headers::encode(&parts.headers);
            let param = v2::ResponseParam {
                status: parts.status.as_u16(),
                headers: &encoded,
                body: &body,
            };
            let answer = handler.call_on_response(&mut *store, param).await?;
            let answer = answer.map(response_from_v2).map_err(error_from_guest);
            response_answered(store.data_mut(), parts, encoded, answer)
        }
    })
}

fn response_from_v2(r: v2::ResponseResult) -> WitResponse {
    WitResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

fn request_from_v2(r: v2::RequestResult) -> WitRequest {
    WitRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

impl v2::Host for State {}

/// 0.2's imports are 0.3's: the records pass through field by field.
impl bindings::sluice::plugin::host::Host for State {
    async fn send(&mut self, request: v2::RequestResult) -> Result<v2::ResponseResult, v2::Error> {
        let response =
            super::bindings::sluice::plugin::host::Host::send(self, request_from_v2(request))
                .await
                .map_err(error_to_guest)?;
        Ok(v2::ResponseResult {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    async fn send_http2(
        &mut self,
        request: v2::RequestResult,
    ) -> Result<v2::Http2Response, v2::Error> {
        let response =
            super::bindings::sluice::plugin::host::Host::send_http2(self, request_from_v2(request))
                .await
                .map_err(error_to_guest)?;
        Ok(v2::Http2Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
            trailers: response.trailers,
        })
    }

    fn log(&mut self, level: v2::Level, message: String) {
        let level = level_from_guest(level);
        super::bindings::sluice::plugin::host::Host::log(self, level, message);
    }
}
