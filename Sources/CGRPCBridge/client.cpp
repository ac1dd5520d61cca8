// The client half: a channel with a grpc::GenericStub; each unary call owns
// its ClientContext and buffers, and is freed when both gRPC's completion and
// the caller's handle have let go of it.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "channel.h"
#include "common.h"

using shoal_bridge::live;
using shoal_bridge::set_error;

namespace shoal_bridge {

bool legal_metadata(const sg_metadata &m, std::string *why) {
    std::string key(m.key, m.key_len);
    if (key.empty() || key.rfind("grpc-", 0) == 0) {
        *why = "metadata key '" + key + "' is empty or reserved";
        return false;
    }
    for (char c : key) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '-')) {
            *why = "metadata key '" + key + "' may hold only 0-9 a-z _ . -";
            return false;
        }
    }
    bool binary = key.size() >= 4 && key.compare(key.size() - 4, 4, "-bin") == 0;
    if (!binary) {
        for (size_t i = 0; i < m.value_len; i++) {
            unsigned char c = static_cast<unsigned char>(m.value[i]);
            if (c < 0x20 || c > 0x7e) {
                *why = "metadata value of '" + key + "' must be printable ASCII (or use a -bin key)";
                return false;
            }
        }
    }
    return true;
}

std::chrono::system_clock::time_point deadline_after_us(int64_t timeout_us) {
    constexpr int64_t kMaxMicros = int64_t(50) * 365 * 24 * 3600 * 1000000;  // 50 years
    return std::chrono::system_clock::now() + std::chrono::microseconds(std::min(timeout_us, kMaxMicros));
}

bool copy_bytes(grpc::ByteBuffer &buffer, std::vector<uint8_t> *out) {
    std::vector<grpc::Slice> slices;
    if (!buffer.Dump(&slices).ok()) return false;
    out->clear();
    out->reserve(buffer.Length());
    for (const auto &s : slices) out->insert(out->end(), s.begin(), s.end());
    return true;
}

bool prepare_context(grpc::ClientContext &context, int64_t timeout_us, const sg_metadata *metadata,
                     size_t metadata_count, std::string *why) {
    if (timeout_us >= 0) context.set_deadline(deadline_after_us(timeout_us));
    for (size_t i = 0; i < metadata_count; i++) {
        if (!legal_metadata(metadata[i], why)) return false;
        context.AddMetadata(std::string(metadata[i].key, metadata[i].key_len),
                            std::string(metadata[i].value, metadata[i].value_len));
    }
    return true;
}

}  // namespace shoal_bridge

using shoal_bridge::ChannelHandle;

struct sg_client_call {
    std::shared_ptr<sg_channel> channel;  // keeps the stub alive while the call runs
    std::string method;                   // must outlive the call (GenericStub contract)
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    sg_client_done_fn done;
    void *ctx;
    std::atomic<int> refs{2};  // gRPC's completion + the caller's handle

    sg_client_call() { live().client_calls++; }
    ~sg_client_call() { live().client_calls--; }

    void unref() {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// gRPC's completion. Everything `done` needs is copied to locals and gRPC's
    /// reference is dropped first: the caller releases the last reference after
    /// `done`, so the call (and possibly the channel) is freed on the caller's
    /// thread, never on one of gRPC's completion-queue threads (freeing the last
    /// grpc::Channel there tears down the queue that thread is polling).
    void complete(const grpc::Status &status) {
        sg_client_done_fn done_fn = done;
        void *done_ctx = ctx;
        int32_t code = static_cast<int32_t>(status.error_code());
        std::string message = status.error_message();
        std::vector<uint8_t> bytes;
        if (status.ok() && !shoal_bridge::copy_bytes(response, &bytes)) {
            code = static_cast<int32_t>(grpc::StatusCode::INTERNAL);
            message = "could not read the response bytes";
        }
        unref();
        done_fn(done_ctx, code, message.data(), message.size(), bytes.data(), bytes.size());
    }
};

extern "C" {

sg_channel *sg_channel_create(const char *target, int32_t max_message_bytes, int32_t keepalive_time_ms,
                              int32_t keepalive_timeout_ms, sg_error *err) {
    std::string address(target == nullptr ? "" : target);
    if (address.empty()) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT), "an empty target address");
        return nullptr;
    }
    grpc::ChannelArguments args;
    if (max_message_bytes > 0) {
        args.SetMaxReceiveMessageSize(max_message_bytes);
        args.SetMaxSendMessageSize(max_message_bytes);
    }
    // A restarted peer is found again within a second, not after gRPC's default 120 s backoff.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // Small unary messages: no bandwidth-delay probing (a PING per data frame read,
    // each one more write and wake-up on both sides).
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    if (keepalive_time_ms > 0) {
        // A peer that stops answering (paused, cut off) fails the calls within about
        // time + timeout instead of their whole deadline. Our servers accept such
        // pings (server.cpp); without calls too, so an idle channel notices as well.
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_time_ms);
        args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_timeout_ms);
        args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    }
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    if (channel == nullptr) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT), "cannot create a channel to " + address);
        return nullptr;
    }
    auto *handle = new ChannelHandle{std::make_shared<sg_channel>(channel)};
    return reinterpret_cast<sg_channel *>(handle);
}

void sg_channel_destroy(sg_channel *channel) { delete reinterpret_cast<ChannelHandle *>(channel); }

sg_client_call *sg_client_call_start(sg_channel *channel, const char *method, const uint8_t *request,
                                     size_t request_len, int64_t timeout_us, const sg_metadata *metadata,
                                     size_t metadata_count, sg_client_done_fn done, void *ctx) {
    auto *call = new sg_client_call();
    call->channel = reinterpret_cast<ChannelHandle *>(channel)->shared;
    call->method = method;
    call->done = done;
    call->ctx = ctx;
    std::string why;
    if (!shoal_bridge::prepare_context(call->context, timeout_us, metadata, metadata_count, &why)) {
        call->complete(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why));  // `done` runs inline
        return call;
    }
    grpc::Slice slice(request, request_len);
    call->request = grpc::ByteBuffer(&slice, 1);
    call->channel->stub.UnaryCall(&call->context, call->method, grpc::StubOptions(), &call->request,
                                  &call->response, [call](grpc::Status status) { call->complete(status); });
    return call;
}

void sg_client_call_cancel(sg_client_call *call) { call->context.TryCancel(); }

void sg_client_call_release(sg_client_call *call) { call->unref(); }

}  // extern "C"
