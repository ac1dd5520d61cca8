/*
 * shoal_grpc.h — a bytes-only gRPC server and client over libgrpc++.
 *
 * The only C++ in Shoal. Nothing protobuf- or gRPC-typed crosses this header:
 * handles are opaque, messages are byte strings, statuses are gRPC codes.
 * Callbacks carry a `void *ctx` that the caller owns; every create has a
 * destroy; calls that can fail take an `sg_error *` out-parameter.
 *
 * Threads: callbacks run on gRPC's own threads. They must not block.
 */
#ifndef SHOAL_GRPC_H
#define SHOAL_GRPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sg_server sg_server;
typedef struct sg_server_call sg_server_call;
typedef struct sg_channel sg_channel;
typedef struct sg_client_call sg_client_call;
typedef struct sg_client_stream sg_client_stream;

/* An error out-parameter. `code` is a gRPC status code (0 = no error).
 * `message` is NULL or a heap string the caller frees with sg_error_clear. */
typedef struct sg_error {
    int32_t code;
    char *message;
} sg_error;

void sg_error_clear(sg_error *err);

/* One metadata entry (binary-safe key and value). */
typedef struct sg_metadata {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} sg_metadata;

/* ---------------------------------------------------------------- server */

/* A request for a registered method has arrived (on a gRPC thread).
 * `method_ctx` is what was registered for the method. The request, method,
 * timeout and metadata accessors below may be used during this callback only.
 * The callee must later complete the call exactly once, from any thread, with
 * sg_server_call_respond or sg_server_call_fail. Returns the call's context,
 * which `cancel` and `release` receive. */
typedef void *(*sg_dispatch_fn)(void *method_ctx, sg_server_call *call);

/* The client cancelled, or the deadline passed, before the call completed.
 * Called at most once per call, never after `release`. The call must still be
 * completed (its response is then discarded). */
typedef void (*sg_cancel_fn)(void *call_ctx);

/* The call is finished and its resources are gone: `call_ctx` may be freed.
 * Called exactly once per dispatched call, after any `cancel`. */
typedef void (*sg_release_fn)(void *call_ctx);

typedef struct sg_server_callbacks {
    sg_dispatch_fn dispatch;
    sg_cancel_fn cancel;
    sg_release_fn release;
} sg_server_callbacks;

/* max_message_bytes: largest request or response accepted (<= 0: gRPC's 4 MiB).
 * Larger requests are refused by gRPC with RESOURCE_EXHAUSTED. */
sg_server *sg_server_create(sg_server_callbacks callbacks, int32_t max_message_bytes, sg_error *err);

/* Registers a full method name ("/shoal.v1.Shard/Search"). Only before start.
 * Calls to any other method get UNIMPLEMENTED without reaching the callbacks. */
int sg_server_register(sg_server *server, const char *method, void *method_ctx, sg_error *err);

/* Binds host:port (port 0 picks a free one) and starts serving.
 * On success returns 1 and stores the bound port in *bound_port. */
int sg_server_start(sg_server *server, const char *host, int32_t port, int32_t *bound_port, sg_error *err);

/* Stops accepting calls, lets in-flight calls finish for up to grace_ms, then
 * cancels the rest and waits for every call to complete. Blocks: never call it
 * from a thread a handler may need. Idempotent. */
void sg_server_shutdown(sg_server *server, int64_t grace_ms);

/* Shuts down (with no grace) if still running, then frees the server. */
void sg_server_destroy(sg_server *server);

/* Accessors, valid during the dispatch callback only. */
const uint8_t *sg_server_call_request(const sg_server_call *call, size_t *len);
const char *sg_server_call_method(const sg_server_call *call);
/* Microseconds until the client's deadline (0 if passed), or -1 for none. */
int64_t sg_server_call_timeout_us(const sg_server_call *call);
size_t sg_server_call_metadata_count(const sg_server_call *call);
sg_metadata sg_server_call_metadata_at(const sg_server_call *call, size_t index);

/* Completes the call with a response (status OK) or with a non-OK status.
 * Exactly one of the two, exactly once; `call` is invalid afterwards. */
void sg_server_call_respond(sg_server_call *call, const uint8_t *bytes, size_t len);
void sg_server_call_fail(sg_server_call *call, int32_t code, const char *message, size_t message_len);

/* ---------------------------------------------------------------- client */

/* A channel to "host:port", shared by any number of concurrent calls.
 * Connects lazily; reconnects with a short backoff (0.1–1 s) after failures.
 * keepalive_time_ms > 0: a keepalive ping after that long without one, with or
 * without calls; no ack within keepalive_timeout_ms closes the connection and
 * fails its calls (UNAVAILABLE). 0: no keepalive pings (the peer may refuse
 * frequent ones, like etcd). */
sg_channel *sg_channel_create(const char *target, int32_t max_message_bytes, int32_t keepalive_time_ms,
                              int32_t keepalive_timeout_ms, sg_error *err);

/* Releases the caller's reference; in-flight calls keep the channel alive. */
void sg_channel_destroy(sg_channel *channel);

/* The call finished (on a gRPC thread). code 0 = OK with `response`;
 * otherwise `message` says why. Buffers are valid during the callback only. */
typedef void (*sg_client_done_fn)(void *ctx, int32_t code, const char *message, size_t message_len,
                                  const uint8_t *response, size_t response_len);

/* Starts a unary call. timeout_us < 0: no deadline. `done` runs exactly once,
 * possibly before this function returns. The returned handle stays valid until
 * sg_client_call_release, which the caller must call once, after `done`. */
sg_client_call *sg_client_call_start(sg_channel *channel, const char *method,
                                     const uint8_t *request, size_t request_len, int64_t timeout_us,
                                     const sg_metadata *metadata, size_t metadata_count,
                                     sg_client_done_fn done, void *ctx);

/* Asks gRPC to cancel the call; `done` then reports CANCELLED unless it already ran. */
void sg_client_call_cancel(sg_client_call *call);
void sg_client_call_release(sg_client_call *call);

/* ------------------------------------------------- client bidi streams */

/* A bidirectional streaming call: the caller writes messages in order, and every
 * message the server sends is delivered as it arrives (the stream keeps one read
 * outstanding; the caller buffers). Callbacks run on gRPC threads, never inside an
 * sg_client_stream_* call; `message` callbacks come one at a time, as do
 * `write_done` ones, but a `message` and a `write_done` may run at once. Buffers
 * are valid during the callback only. */
typedef struct sg_client_stream_callbacks {
    /* One message from the server. */
    void (*message)(void *ctx, const uint8_t *bytes, size_t len);
    /* One accepted write finished, in the order written: ok = 1 sent, 0 not sent
     * (the stream is ending; `done` follows with why). */
    void (*write_done)(void *ctx, int ok);
    /* The stream is over: its final status (0 = OK, the server ended it). Exactly once,
     * last, after every `message` and `write_done`. */
    void (*done)(void *ctx, int32_t code, const char *message, size_t message_len);
} sg_client_stream_callbacks;

/* Starts a bidi stream. timeout_us < 0: no deadline. Returns NULL (and fills `err`,
 * no callback runs) if the metadata is illegal. Otherwise the handle stays valid
 * until sg_client_stream_release, which the caller must call exactly once. */
sg_client_stream *sg_client_stream_start(sg_channel *channel, const char *method, int64_t timeout_us,
                                         const sg_metadata *metadata, size_t metadata_count,
                                         sg_client_stream_callbacks callbacks, void *ctx, sg_error *err);

/* Queues one message. Returns 1 if accepted (`write_done` will report it), 0 if the
 * stream has ended or writes were closed (no callback for it). */
int sg_client_stream_write(sg_client_stream *stream, const uint8_t *bytes, size_t len);

/* No more writes: the server sees the end of the client's stream after the queued
 * messages. Idempotent. */
void sg_client_stream_writes_done(sg_client_stream *stream);

/* Asks gRPC to cancel the stream; `done` then reports CANCELLED unless it already ran. */
void sg_client_stream_cancel(sg_client_stream *stream);

/* Drops the caller's handle; cancels the stream if it is still running. Callbacks
 * may still run until `done`. The stream (and the channel, if this was its last
 * user) is freed once both the caller and gRPC let go, never on a gRPC thread. */
void sg_client_stream_release(sg_client_stream *stream);

/* ---------------------------------------------------------------- checks */

/* Objects currently alive, for leak tests. */
typedef struct sg_live_counts {
    int64_t servers;
    int64_t server_calls;
    int64_t channels;
    int64_t client_calls;
    int64_t client_streams;
} sg_live_counts;

sg_live_counts sg_debug_live_counts(void);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_GRPC_H */
