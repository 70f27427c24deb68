// `c-stamp`: a Sluice-world plugin in C, on bindings `wit-bindgen c` generates from
// wit/plugin.wit (sluice:plugin@0.2.0). Hooks mode, `on-request` only: the request goes on to
// the backend with one more header, `x-stamped-by: c-stamp`; the gateway makes the call.
//
// Settings: none (`{}`, or no object at all); anything else is refused at start-up.
//
// Ownership follows the canonical ABI as the bindings lay it out: an export owns what it is
// handed and hands over what it returns (the bindings free it after the gateway has read it).

#include <stdlib.h>
#include <string.h>

#include "http_client.h"

static const char STAMP[] = "x-stamped-by:c-stamp\n";

bool exports_sluice_plugin_handler_init(http_client_string_t *settings,
                                        http_client_string_t *err) {
    bool empty = settings->len == 2 && memcmp(settings->ptr, "{}", 2) == 0;
    http_client_string_free(settings);
    if (!empty) {
        http_client_string_dup(err, "c-stamp takes no settings: expected {}");
        return false;
    }
    return true;
}

exports_sluice_plugin_handler_hook_set_t exports_sluice_plugin_handler_hooks(void) {
    return SLUICE_PLUGIN_TYPES_HOOK_SET_ON_REQUEST;
}

bool exports_sluice_plugin_handler_on_request(
    exports_sluice_plugin_handler_request_t *request,
    exports_sluice_plugin_handler_request_or_response_t *ret,
    exports_sluice_plugin_handler_error_t *err) {
    // The header list is `name:value\n` per field: the stamp is one more field at its end.
    sluice_plugin_types_headers_t *headers = &request->headers;
    size_t len = headers->len + sizeof(STAMP) - 1;
    // An empty list's pointer is not from malloc (the bindings hand out a dangling, aligned
    // one for zero bytes): it cannot be grown with realloc.
    uint8_t *grown = headers->len == 0 ? malloc(len) : realloc(headers->ptr, len);
    if (grown == NULL) {
        exports_sluice_plugin_handler_request_free(request);
        err->kind = SLUICE_PLUGIN_TYPES_ERROR_KIND_PLUGIN;
        http_client_string_dup(&err->message, "c-stamp: out of memory");
        return false;
    }
    memcpy(grown + headers->len, STAMP, sizeof(STAMP) - 1);
    headers->ptr = grown;
    headers->len = len;
    ret->tag = SLUICE_PLUGIN_TYPES_REQUEST_OR_RESPONSE_REQUEST;
    ret->val.request = *request;
    return true;
}

// Hooks mode: the gateway never calls these two; they answer a plain error if it did.
bool exports_sluice_plugin_handler_handle(exports_sluice_plugin_handler_request_t *request,
                                          exports_sluice_plugin_handler_response_t *ret,
                                          exports_sluice_plugin_handler_error_t *err) {
    (void)ret;
    exports_sluice_plugin_handler_request_free(request);
    err->kind = SLUICE_PLUGIN_TYPES_ERROR_KIND_PLUGIN;
    http_client_string_dup(&err->message, "c-stamp serves in hooks mode only");
    return false;
}

bool exports_sluice_plugin_handler_on_response(
    exports_sluice_plugin_handler_response_t *response,
    exports_sluice_plugin_handler_response_t *ret,
    exports_sluice_plugin_handler_error_t *err) {
    (void)err;
    *ret = *response;
    return true;
}
