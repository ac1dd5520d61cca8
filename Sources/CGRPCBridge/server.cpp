// The server half: one grpc::CallbackGenericService; each call is a reactor
// that reads one request, hands it to the dispatch callback and writes the
// response the callee gives back (unary calls over gRPC's generic bidi API).
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common.h"

using shoal_bridge::live;
using shoal_bridge::set_error;

namespace {

class ServerCall;

class Service final : public grpc::CallbackGenericService {
   public:
    explicit Service(sg_server *owner) : owner_(owner) {}
    grpc::ServerGenericBidiReactor *CreateReactor(grpc::GenericCallbackServerContext *ctx) override;

   private:
    sg_server *owner_;
};

}  // namespace

struct sg_server {
    sg_server_callbacks callbacks;
    int32_t max_message_bytes;
    std::unordered_map<std::string, void *> methods;  // read-only once started
    Service service{this};
    std::unique_ptr<grpc::Server> server;
    std::mutex shutdown_mutex;
    bool shut_down = false;

    sg_server(sg_server_callbacks cbs, int32_t max_bytes) : callbacks(cbs), max_message_bytes(max_bytes) {
        live().servers++;
    }
    ~sg_server() { live().servers--; }
};

namespace {

/// One server call. Lifetime: created by gRPC, deleted in OnDone, which gRPC
/// runs after Finish has completed and after any OnReadDone/OnCancel returned.
/// The callee's context is released there too, so a cancel never reaches a
/// freed context.
class ServerCall final : public grpc::ServerGenericBidiReactor {
   public:
    ServerCall(sg_server *server, grpc::GenericCallbackServerContext *ctx) : server_(server), ctx_(ctx) {
        live().server_calls++;
        auto it = server->methods.find(ctx->method());
        if (it == server->methods.end()) {
            Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + ctx->method()));
            return;
        }
        method_ctx_ = it->second;
        StartRead(&request_buffer_);
    }

    void OnReadDone(bool ok) override {
        if (!ok) {
            Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request message"));
            return;
        }
        if (!flatten_request()) {
            Finish(grpc::Status(grpc::StatusCode::INTERNAL, "could not read the request bytes"));
            return;
        }
        for (const auto &kv : ctx_->client_metadata()) {
            metadata_.emplace_back(std::string(kv.first.data(), kv.first.size()),
                                   std::string(kv.second.data(), kv.second.size()));
        }
        void *call_ctx = server_->callbacks.dispatch(method_ctx_, reinterpret_cast<sg_server_call *>(this));
        bool notify_cancel;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            call_ctx_ = call_ctx;
            dispatched_ = true;
            notify_cancel = cancelled_ && !completed_;
        }
        if (notify_cancel) server_->callbacks.cancel(call_ctx);
        request_.clear();
        request_.shrink_to_fit();
    }

    void OnCancel() override {
        void *notify = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancelled_ = true;
            if (dispatched_ && !completed_) notify = call_ctx_;
        }
        if (notify != nullptr) server_->callbacks.cancel(notify);
    }

    void OnDone() override {
        if (dispatched_) server_->callbacks.release(call_ctx_);
        live().server_calls--;
        delete this;
    }

    void respond(const uint8_t *bytes, size_t len) {
        if (!mark_completed()) return;
        grpc::Slice slice(bytes, len);
        response_ = grpc::ByteBuffer(&slice, 1);
        StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }

    void fail(int32_t code, std::string message) {
        if (!mark_completed()) return;
        if (code <= 0 || code > 16) code = static_cast<int32_t>(grpc::StatusCode::UNKNOWN);
        Finish(grpc::Status(static_cast<grpc::StatusCode>(code), std::move(message)));
    }

    const std::vector<uint8_t> &request() const { return request_; }
    const std::string &method() const { return ctx_->method(); }
    const std::vector<std::pair<std::string, std::string>> &metadata() const { return metadata_; }

    int64_t timeout_us() const {
        auto deadline = ctx_->deadline();
        if (deadline == std::chrono::system_clock::time_point::max()) return -1;
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::system_clock::now());
        return left.count() > 0 ? left.count() : 0;
    }

   private:
    /// True the first time; a second completion is a caller bug and is ignored.
    bool mark_completed() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (completed_) return false;
        completed_ = true;
        return true;
    }

    bool flatten_request() {
        std::vector<grpc::Slice> slices;
        if (!request_buffer_.Dump(&slices).ok()) return false;
        request_.reserve(request_buffer_.Length());
        for (const auto &s : slices) request_.insert(request_.end(), s.begin(), s.end());
        request_buffer_.Clear();
        return true;
    }

    sg_server *server_;
    grpc::GenericCallbackServerContext *ctx_;
    void *method_ctx_ = nullptr;
    grpc::ByteBuffer request_buffer_;
    grpc::ByteBuffer response_;
    std::vector<uint8_t> request_;
    std::vector<std::pair<std::string, std::string>> metadata_;

    std::mutex mutex_;
    void *call_ctx_ = nullptr;
    bool dispatched_ = false;  // written before any OnDone (gRPC serialises it after OnReadDone)
    bool cancelled_ = false;
    bool completed_ = false;
};

grpc::ServerGenericBidiReactor *Service::CreateReactor(grpc::GenericCallbackServerContext *ctx) {
    return new ServerCall(owner_, ctx);
}

ServerCall *as_call(sg_server_call *call) { return reinterpret_cast<ServerCall *>(call); }
const ServerCall *as_call(const sg_server_call *call) { return reinterpret_cast<const ServerCall *>(call); }

}  // namespace

extern "C" {

sg_server *sg_server_create(sg_server_callbacks callbacks, int32_t max_message_bytes, sg_error *err) {
    if (callbacks.dispatch == nullptr || callbacks.cancel == nullptr || callbacks.release == nullptr) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT), "every server callback is required");
        return nullptr;
    }
    return new sg_server(callbacks, max_message_bytes);
}

int sg_server_register(sg_server *server, const char *method, void *method_ctx, sg_error *err) {
    if (server->server != nullptr) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::FAILED_PRECONDITION), "register methods before start");
        return 0;
    }
    std::string name(method);
    if (name.empty() || name[0] != '/') {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT),
                  "a method name is /package.Service/Method, got '" + name + "'");
        return 0;
    }
    if (!server->methods.emplace(std::move(name), method_ctx).second) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::ALREADY_EXISTS), std::string("method registered twice: ") + method);
        return 0;
    }
    return 1;
}

int sg_server_start(sg_server *server, const char *host, int32_t port, int32_t *bound_port, sg_error *err) {
    if (server->server != nullptr) {
        set_error(err, static_cast<int32_t>(grpc::StatusCode::FAILED_PRECONDITION), "server already started");
        return 0;
    }
    std::string address = std::string(host) + ":" + std::to_string(port);
    int selected = 0;
    grpc::ServerBuilder builder;
    // One process per port: gRPC's default SO_REUSEPORT would let a second node
    // started on a busy port share it silently instead of failing to start.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Accept the coordinators' keepalive pings (every second, with or without calls;
    // client.cpp) instead of answering them with GOAWAY "too_many_pings".
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 100);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    // Small unary messages: no bandwidth-delay probing (client.cpp says why).
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected);
    builder.RegisterCallbackGenericService(&server->service);
    if (server->max_message_bytes > 0) {
        builder.SetMaxReceiveMessageSize(server->max_message_bytes);
        builder.SetMaxSendMessageSize(server->max_message_bytes);
    }
    server->server = builder.BuildAndStart();
    if (server->server == nullptr || selected == 0) {
        if (server->server != nullptr) {
            server->server->Shutdown();
            server->server.reset();
        }
        set_error(err, static_cast<int32_t>(grpc::StatusCode::UNAVAILABLE), "could not listen on " + address);
        return 0;
    }
    if (bound_port != nullptr) *bound_port = selected;
    return 1;
}

void sg_server_shutdown(sg_server *server, int64_t grace_ms) {
    std::lock_guard<std::mutex> lock(server->shutdown_mutex);
    if (server->shut_down || server->server == nullptr) return;
    constexpr int64_t kMaxGraceMs = int64_t(24) * 3600 * 1000;  // beyond a day is a caller bug; avoid overflow
    int64_t grace = std::max<int64_t>(0, std::min(grace_ms, kMaxGraceMs));
    server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace));
    server->server->Wait();
    server->shut_down = true;
}

void sg_server_destroy(sg_server *server) {
    if (server == nullptr) return;
    sg_server_shutdown(server, 0);
    server->server.reset();
    delete server;
}

const uint8_t *sg_server_call_request(const sg_server_call *call, size_t *len) {
    const auto &bytes = as_call(call)->request();
    if (len != nullptr) *len = bytes.size();
    return bytes.data();
}

const char *sg_server_call_method(const sg_server_call *call) { return as_call(call)->method().c_str(); }

int64_t sg_server_call_timeout_us(const sg_server_call *call) { return as_call(call)->timeout_us(); }

size_t sg_server_call_metadata_count(const sg_server_call *call) { return as_call(call)->metadata().size(); }

sg_metadata sg_server_call_metadata_at(const sg_server_call *call, size_t index) {
    const auto &all = as_call(call)->metadata();
    if (index >= all.size()) return sg_metadata{"", 0, "", 0};
    const auto &entry = all[index];
    return sg_metadata{entry.first.data(), entry.first.size(), entry.second.data(), entry.second.size()};
}

void sg_server_call_respond(sg_server_call *call, const uint8_t *bytes, size_t len) {
    as_call(call)->respond(bytes, len);
}

void sg_server_call_fail(sg_server_call *call, int32_t code, const char *message, size_t message_len) {
    as_call(call)->fail(code, std::string(message == nullptr ? "" : message, message == nullptr ? 0 : message_len));
}

}  // extern "C"
