// Client bidi streams: a grpc::ClientBidiReactor over ByteBuffers, started with
// GenericStub::PrepareBidiStreamingCall. The stream keeps one read outstanding
// until the server ends it, and writes the caller's messages one at a time from
// a queue (gRPC allows one write in flight).
//
// A hold keeps gRPC from finishing the stream (OnDone) while the caller may still
// start a write; it is removed when the read side ends, after which no write
// starts. The object is freed when both gRPC (OnDone) and the caller's handle
// have let go; if gRPC is last, on a thread of its own, never on gRPC's.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "channel.h"
#include "common.h"

using shoal_bridge::live;

struct sg_client_stream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
    std::shared_ptr<sg_channel> channel;  // keeps the stub alive while the stream runs
    std::string method;                   // must outlive the call (GenericStub contract)
    grpc::ClientContext context;
    sg_client_stream_callbacks callbacks;
    void *ctx;
    grpc::ByteBuffer reading;  // the read in flight (one at a time)
    std::atomic<int> refs{2};  // gRPC's OnDone + the caller's handle

    // Guarded by `mu`. Invariant: `queue` is non-empty only while `writing`.
    std::mutex mu;
    grpc::ByteBuffer written;          // the write in flight
    std::deque<grpc::ByteBuffer> queue;  // accepted, not yet started
    bool writing = false;
    bool writes_closed = false;    // the caller called writes_done
    bool writes_done_sent = false;
    bool reads_over = false;       // the read side ended: the hold is gone, no write starts
    bool broken = false;           // a write failed: the stream is ending

    sg_client_stream() { live().client_streams++; }
    ~sg_client_stream() override { live().client_streams--; }

    void start() {
        AddHold();
        StartRead(&reading);
        StartCall();
    }

    /// Drops one reference. The last one frees the stream; gRPC's, if last, on a
    /// fresh thread: freeing the last grpc::Channel on a completion-queue thread
    /// tears down the queue that thread is polling.
    void unref(bool on_grpc_thread) {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        if (on_grpc_thread) {
            std::thread([this] { delete this; }).detach();
        } else {
            delete this;
        }
    }

    int write(const uint8_t *bytes, size_t len) {
        std::lock_guard<std::mutex> lock(mu);
        if (reads_over || writes_closed || broken) return 0;
        grpc::Slice slice(bytes, len);
        if (writing) {
            queue.emplace_back(&slice, 1);
        } else {
            writing = true;
            written = grpc::ByteBuffer(&slice, 1);
            StartWrite(&written);  // completes on a gRPC thread, never inline
        }
        return 1;
    }

    void writes_done() {
        std::lock_guard<std::mutex> lock(mu);
        if (writes_closed) return;
        writes_closed = true;
        maybe_send_writes_done_locked();
    }

    void maybe_send_writes_done_locked() {
        if (writes_closed && !writes_done_sent && !writing && !reads_over && !broken) {
            writes_done_sent = true;
            StartWritesDone();
        }
    }

    void OnReadDone(bool ok) override {
        if (ok) {
            std::vector<uint8_t> bytes;
            if (shoal_bridge::copy_bytes(reading, &bytes)) {
                callbacks.message(ctx, bytes.data(), bytes.size());
            } else {
                context.TryCancel();  // unreadable bytes: end the stream rather than skip a message
            }
            StartRead(&reading);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mu);
            reads_over = true;  // queued writes are dropped by the write in flight's OnWriteDone
        }
        RemoveHold();  // OnDone may follow at once (on another thread): touch nothing after
    }

    void OnWriteDone(bool ok) override {
        callbacks.write_done(ctx, ok ? 1 : 0);  // before the next write starts: keeps the order
        size_t dropped = 0;
        {
            std::lock_guard<std::mutex> lock(mu);
            if (ok && !reads_over && !queue.empty()) {
                written = std::move(queue.front());
                queue.pop_front();
                StartWrite(&written);
                return;
            }
            if (!ok || reads_over) {
                broken = true;
                dropped = queue.size();
                queue.clear();
            }
            writing = false;
            maybe_send_writes_done_locked();
        }
        for (size_t i = 0; i < dropped; i++) callbacks.write_done(ctx, 0);
    }

    void OnDone(const grpc::Status &status) override {
        auto done = callbacks.done;
        void *done_ctx = ctx;
        int32_t code = static_cast<int32_t>(status.error_code());
        std::string message = status.error_message();
        unref(true);
        done(done_ctx, code, message.data(), message.size());
    }
};

extern "C" {

sg_client_stream *sg_client_stream_start(sg_channel *channel, const char *method, int64_t timeout_us,
                                         const sg_metadata *metadata, size_t metadata_count,
                                         sg_client_stream_callbacks callbacks, void *ctx, sg_error *err) {
    auto *stream = new sg_client_stream();
    stream->channel = reinterpret_cast<shoal_bridge::ChannelHandle *>(channel)->shared;
    stream->method = method;
    stream->callbacks = callbacks;
    stream->ctx = ctx;
    std::string why;
    if (!shoal_bridge::prepare_context(stream->context, timeout_us, metadata, metadata_count, &why)) {
        shoal_bridge::set_error(err, static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT), why);
        delete stream;
        return nullptr;
    }
    stream->channel->stub.PrepareBidiStreamingCall(&stream->context, stream->method, grpc::StubOptions(), stream);
    stream->start();
    return stream;
}

int sg_client_stream_write(sg_client_stream *stream, const uint8_t *bytes, size_t len) {
    return stream->write(bytes, len);
}

void sg_client_stream_writes_done(sg_client_stream *stream) { stream->writes_done(); }

void sg_client_stream_cancel(sg_client_stream *stream) { stream->context.TryCancel(); }

void sg_client_stream_release(sg_client_stream *stream) {
    stream->context.TryCancel();  // a no-op once the stream is over
    stream->unref(false);
}

}  // extern "C"
