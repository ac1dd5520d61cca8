// The client half: a channel with a grpc::GenericStub; each unary call owns
// its ClientContext and buffers, and is freed when both gRPC's completion and
// the caller's handle have let go of it.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common.h"

using shoal_bridge::live;
using shoal_bridge::set_error;

struct sg_channel {
    std::shared_ptr<grpc::Channel> channel;
    grpc::GenericStub stub;

    explicit sg_channel(std::shared_ptr<grpc::Channel> ch) : channel(ch), stub(ch) { live().channels++; }
    ~sg_channel() { live().channels--; }
};

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

    void complete(const grpc::Status &status) {
        if (status.ok()) {
            std::vector<grpc::Slice> slices;
            std::vector<uint8_t> bytes;
            if (response.Dump(&slices).ok()) {
                bytes.reserve(response.Length());
                for (const auto &s : slices) bytes.insert(bytes.end(), s.begin(), s.end());
                done(ctx, 0, nullptr, 0, bytes.data(), bytes.size());
            } else {
                static const char kMsg[] = "could not read the response bytes";
                done(ctx, static_cast<int32_t>(grpc::StatusCode::INTERNAL), kMsg, sizeof(kMsg) - 1, nullptr, 0);
            }
        } else {
            const std::string &msg = status.error_message();
            done(ctx, static_cast<int32_t>(status.error_code()), msg.data(), msg.size(), nullptr, 0);
        }
        unref();
    }
};

namespace {

// Holds the channel object shared between the caller's handle and in-flight calls.
struct ChannelHandle {
    std::shared_ptr<sg_channel> shared;
};

}  // namespace

extern "C" {

sg_channel *sg_channel_create(const char *target, int32_t max_message_bytes, sg_error *err) {
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
    if (timeout_us >= 0) {
        call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(timeout_us));
    }
    for (size_t i = 0; i < metadata_count; i++) {
        call->context.AddMetadata(std::string(metadata[i].key, metadata[i].key_len),
                                  std::string(metadata[i].value, metadata[i].value_len));
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
