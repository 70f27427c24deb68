//! Write Sluice HTTP client plugins in Rust.
//!
//! A plugin is a WebAssembly component targeting the `sluice:plugin/http-client@0.3.0` world
//! (see `wit/plugin.wit` at the root of the Sluice repository). It replaces the executor of the
//! backends that name it in `extra_config."plugin/http-client".name`: the gateway hands it the
//! request it is about to send and the plugin answers it, itself or by calling hosts through
//! the gateway ([`send`]).
//!
//! ```ignore
//! use sluice_plugin_sdk::{Error, Plugin, Request, Response, export_plugin, send};
//!
//! struct Hello { greeting: String }
//!
//! impl Plugin for Hello {
//!     fn init(settings: &str) -> Result<Self, String> {
//!         let s: serde_json::Value = sluice_plugin_sdk::parse_settings(settings)?;
//!         Ok(Hello { greeting: s["greeting"].as_str().unwrap_or("hello").to_owned() })
//!     }
//!     fn handle(&self, request: Request) -> Result<Response, Error> {
//!         if request.path() == "/hello" {
//!             return Ok(Response::new(200).with_body(self.greeting.as_bytes()));
//!         }
//!         send(request)
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Two ways to serve a request:
//! - **handle** (the default): [`Plugin::handle`] runs for the whole request and makes any
//!   calls itself with [`send`]; the gateway holds one instance per request in flight.
//!   [`Plugin::serve`] is the same on the request the gateway holds: it reads only what it
//!   needs, and [`OutgoingRequest::forward`] sends it on and hands back the answer, also held
//!   by the gateway, so a pass-through moves neither message into the plugin.
//! - **hooks**: set [`Plugin::HOOKS`] and implement [`Plugin::on_request`] and/or
//!   [`Plugin::on_response`]; the gateway makes the backend call itself between the two, with no
//!   instance held while it waits. Best for "change what goes and what comes back" plugins.
//!   Both hooks in a `const`: `Hooks::ON_REQUEST.union(Hooks::ON_RESPONSE)` (`|` is not `const`).
//!
//! In hooks mode the gateway keeps the message; [`Plugin::edit_request`] and
//! [`Plugin::edit_response`] read and change it in place, so only the parts a hook touches
//! cross into the plugin, and a hook that changes nothing hands nothing back: the fastest
//! plugins there are. Their defaults hand [`Plugin::on_request`] and [`Plugin::on_response`] a
//! copy of the whole message (`copy`) and hand it back whole (`replace`): the gateway keeps the
//! parts left as they were.
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` file's stem is the
//! name the gateway registers the plugin under.

#![warn(missing_docs)]

extern crate self as sluice_plugin_sdk;

/// The bindings generated from the WIT world. Prefer the re-exports at the crate root.
#[allow(missing_docs, unsafe_code, unreachable_pub, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "sluice:plugin/http-client@0.3.0",
        pub_export_macro: true,
        export_macro_name: "__sluice_export_world",
        default_bindings_module: "::sluice_plugin_sdk::bindings",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        bitflags_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt::bitflags",
    });
}

mod http;
pub mod log;

pub use bindings::exports::sluice::plugin::handler::Answer;
pub use bindings::sluice::plugin::messages::{IncomingResponse, OutgoingRequest};
pub use bindings::sluice::plugin::types::{Error, ErrorKind, HookSet as Hooks, Request, Response};
pub use http::{Headers, path_and_query, url_path};

/// What [`Plugin::on_request`] decides: send this (possibly changed) request to the backend,
/// or answer the client right away.
#[derive(Debug, Clone)]
pub enum Flow {
    /// Send this request on.
    Request(Request),
    /// Answer with this, without calling the backend.
    Response(Response),
}

/// A Sluice client plugin. One value lives in each instance, made by [`Plugin::init`].
pub trait Plugin: Sized + 'static {
    /// Which hooks the gateway calls instead of [`Plugin::handle`]. Empty (the default) means
    /// `handle` serves every request.
    ///
    /// `|` is not allowed in a `const`: combine flags with the `const fn` [`Hooks::union`]
    /// (`|` works in [`Plugin::hooks`] and other non-const code):
    ///
    /// ```
    /// use sluice_plugin_sdk::{Error, Flow, Hooks, Plugin, Request, Response};
    ///
    /// struct Both;
    ///
    /// impl Plugin for Both {
    ///     const HOOKS: Hooks = Hooks::ON_REQUEST.union(Hooks::ON_RESPONSE);
    ///
    ///     fn init(_settings: &str) -> Result<Self, String> {
    ///         Ok(Both)
    ///     }
    ///     fn on_request(&self, request: Request) -> Result<Flow, Error> {
    ///         Ok(Flow::Request(request.with_header("x-seen", b"yes")))
    ///     }
    ///     fn on_response(&self, response: Response) -> Result<Response, Error> {
    ///         Ok(response.with_header("x-answered", b"yes"))
    ///     }
    /// }
    ///
    /// assert_eq!(Both::HOOKS, Hooks::ON_REQUEST | Hooks::ON_RESPONSE);
    /// ```
    const HOOKS: Hooks = Hooks::empty();

    /// The hooks of this instance, asked once after `init` (so they may depend on the
    /// settings). Defaults to [`Plugin::HOOKS`].
    fn hooks(&self) -> Hooks {
        Self::HOOKS
    }

    /// Validates the settings (JSON text: the object under the plugin's name in the backend's
    /// `plugin/http-client` block, `{}` when there is none) and builds the plugin. An `Err`
    /// stops the gateway's start-up with this message.
    fn init(settings: &str) -> Result<Self, String>;

    /// Answers one backend request. The default runs the hooks around [`send`], so a hooks
    /// plugin behaves the same whichever way it is called.
    fn handle(&self, request: Request) -> Result<Response, Error> {
        match self.on_request(request)? {
            Flow::Request(request) => self.on_response(send(request)?),
            Flow::Response(response) => Ok(response),
        }
    }

    /// Answers one backend request, working on the request the gateway holds: what the
    /// gateway calls when [`Plugin::HOOKS`] is empty. Only the parts read
    /// (`request.url()`) cross into the plugin. `Answer::Forward` has the gateway send the
    /// request as it now stands once `serve` has returned and pass the answer on unread (the
    /// cheapest pass-through: no instance waits on the backend). `request.forward()?` sends it
    /// there and then and answers with the backend's response, held by the gateway too, which
    /// `Answer::Forwarded` passes on (changed in place or not). `Answer::Response` is an
    /// answer of the plugin's own. The default hands [`Plugin::handle`] a copy of the whole
    /// request.
    ///
    /// ```
    /// use sluice_plugin_sdk::{Answer, Error, OutgoingRequest, Plugin, Response};
    ///
    /// struct Teapot;
    ///
    /// impl Plugin for Teapot {
    ///     fn init(_settings: &str) -> Result<Self, String> {
    ///         Ok(Teapot)
    ///     }
    ///     fn serve(&self, request: &OutgoingRequest) -> Result<Answer, Error> {
    ///         if request.method() == "BREW" {
    ///             return Ok(Answer::Response(Response::new(418)));
    ///         }
    ///         if request.header("x-raw").is_some() {
    ///             return Ok(Answer::Forward); // sent on, its answer passed on unread
    ///         }
    ///         let response = request.forward()?;
    ///         response.set_header("x-served-by", b"teapot")?;
    ///         Ok(Answer::Forwarded(response))
    ///     }
    /// }
    /// ```
    fn serve(&self, request: &OutgoingRequest) -> Result<Answer, Error> {
        self.handle(request.copy()).map(Answer::Response)
    }

    /// Changes the request before the gateway sends it, or answers it directly
    /// (`Flow::Response`). Called when [`Plugin::HOOKS`] has `ON_REQUEST`.
    fn on_request(&self, request: Request) -> Result<Flow, Error> {
        Ok(Flow::Request(request))
    }

    /// Changes the backend's answer. Called when [`Plugin::HOOKS`] has `ON_RESPONSE`.
    fn on_response(&self, response: Response) -> Result<Response, Error> {
        Ok(response)
    }

    /// Changes, in place, the request the gateway is about to send, or answers it
    /// (`Ok(Some(response))`). What the gateway calls when [`Plugin::HOOKS`] has `ON_REQUEST`:
    /// only the parts read (`request.header("x-api-key")`) and changed
    /// (`request.set_header("x-api-key", b"k")?`) cross into the plugin. The default hands
    /// [`Plugin::on_request`] a copy of the whole request and hands it back whole.
    fn edit_request(&self, request: &OutgoingRequest) -> Result<Option<Response>, Error> {
        __private::edit_whole_request(self, request)
    }

    /// Changes, in place, the backend's answer. What the gateway calls when
    /// [`Plugin::HOOKS`] has `ON_RESPONSE`. The default hands [`Plugin::on_response`] a copy
    /// of the whole answer and hands it back whole.
    fn edit_response(&self, response: &IncomingResponse) -> Result<(), Error> {
        __private::edit_whole_response(self, response)
    }
}

/// Makes an HTTP call through the gateway's pooled client. Only hosts in the plugin's
/// `allowed_hosts` (by default the backend's own hosts) are reachable; the call is bounded by
/// the request's remaining deadline. Fails with [`ErrorKind::HostNotAllowed`] for other hosts.
pub fn send(request: Request) -> Result<Response, Error> {
    bindings::sluice::plugin::host::send(&request)
}

/// Parses the settings JSON text into `T`, with a message fit for a start-up error.
pub fn parse_settings<T: serde::de::DeserializeOwned>(settings: &str) -> Result<T, String> {
    serde_json::from_str(settings).map_err(|e| format!("invalid settings: {e}"))
}

impl Error {
    /// A new error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    /// The plugin's own failure (answered as a 500 unless status rules say otherwise).
    pub fn plugin(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Plugin, message)
    }
}

/// Exports a [`Plugin`] implementation as the component's `handler` interface. Use once per
/// plugin crate, at the crate root.
#[macro_export]
#[rustfmt::skip]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            use $crate::__private::exports::Guest;
            use $crate::__private::{Slot, String};
            use $crate::{Answer, Error, Hooks, IncomingResponse, OutgoingRequest, Plugin, Response};

            static PLUGIN: Slot<$plugin> = Slot::new();

            #[allow(dead_code)]
            struct SluiceExport;

            impl Guest for SluiceExport {
                fn init(settings: String) -> Result<(), String> {
                    PLUGIN.init(&settings)
                }
                fn hooks() -> Hooks {
                    PLUGIN.get().map_or(<$plugin as Plugin>::HOOKS, Plugin::hooks)
                }
                fn handle(request: &OutgoingRequest) -> Result<Answer, Error> {
                    Plugin::serve(PLUGIN.get()?, request)
                }
                fn on_request(request: &OutgoingRequest) -> Result<Option<Response>, Error> {
                    Plugin::edit_request(PLUGIN.get()?, request)
                }
                fn on_response(response: &IncomingResponse) -> Result<(), Error> {
                    Plugin::edit_response(PLUGIN.get()?, response)
                }
            }

            // Only a wasm build exports anything: native builds (unit tests) link as usual.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::__sluice_export_world!(SluiceExport with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use std::string::String;

    pub use wit_bindgen;

    /// The generated export trait.
    pub mod exports {
        pub use crate::bindings::exports::sluice::plugin::handler::Guest;
    }

    use std::sync::OnceLock;

    use crate::{Error, Flow, IncomingResponse, OutgoingRequest, Plugin, Response};

    /// [`Plugin::edit_request`]'s default: [`Plugin::on_request`] on a copy of the whole
    /// request, handed back whole (the gateway keeps what it left as it was).
    pub fn edit_whole_request<P: Plugin>(
        plugin: &P,
        request: &OutgoingRequest,
    ) -> Result<Option<Response>, Error> {
        match plugin.on_request(request.copy())? {
            Flow::Response(response) => Ok(Some(response)),
            Flow::Request(changed) => request.replace(&changed).map(|()| None),
        }
    }

    /// [`Plugin::edit_response`]'s default: [`Plugin::on_response`] on a copy of the whole
    /// answer, handed back whole.
    pub fn edit_whole_response<P: Plugin>(
        plugin: &P,
        response: &IncomingResponse,
    ) -> Result<(), Error> {
        response.replace(&plugin.on_response(response.copy())?)
    }

    /// Where `export_plugin!` keeps the instance's plugin value.
    #[derive(Debug)]
    pub struct Slot<P>(OnceLock<P>);

    impl<P: Plugin> Slot<P> {
        /// An empty slot.
        pub const fn new() -> Self {
            Slot(OnceLock::new())
        }

        /// Runs `P::init` once.
        pub fn init(&self, settings: &str) -> Result<(), String> {
            if self.0.get().is_some() {
                return Err("init was called twice on the same instance".to_owned());
            }
            let plugin = P::init(settings)?;
            // Instances are single-threaded: nothing can have filled the slot meanwhile.
            let _ = self.0.set(plugin);
            Ok(())
        }

        /// The plugin, or an error if `init` has not succeeded.
        pub fn get(&self) -> Result<&P, Error> {
            self.0
                .get()
                .ok_or_else(|| Error::plugin("the plugin was not initialised"))
        }
    }

    impl<P: Plugin> Default for Slot<P> {
        fn default() -> Self {
            Self::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Both;

    impl Plugin for Both {
        // The form the docs show: `|` does not compile in a `const`, `union` does.
        const HOOKS: Hooks = Hooks::ON_REQUEST.union(Hooks::ON_RESPONSE);

        fn init(_settings: &str) -> Result<Self, String> {
            Ok(Both)
        }
    }

    #[test]
    fn hooks_combine_in_a_const() {
        const BOTH: Hooks = Hooks::ON_REQUEST.union(Hooks::ON_RESPONSE);
        assert_eq!(BOTH, Hooks::ON_REQUEST | Hooks::ON_RESPONSE);
        assert_eq!(Both::HOOKS, BOTH);
        assert!(
            Both::HOOKS.contains(Hooks::ON_REQUEST) && Both::HOOKS.contains(Hooks::ON_RESPONSE)
        );
        let plugin = Both::init("{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plugin.hooks(), BOTH);
    }
}
