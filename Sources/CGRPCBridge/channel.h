// The client channel, shared by unary calls (client.cpp) and streams (stream.cpp).
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

struct sg_channel {
    std::shared_ptr<grpc::Channel> channel;
    grpc::GenericStub stub;

    explicit sg_channel(std::shared_ptr<grpc::Channel> ch) : channel(ch), stub(ch) { shoal_bridge::live().channels++; }
    ~sg_channel() { shoal_bridge::live().channels--; }
};

namespace shoal_bridge {

// Holds the channel object shared between the caller's handle and in-flight calls.
struct ChannelHandle {
    std::shared_ptr<sg_channel> shared;
};

/// gRPC aborts the process on metadata it considers illegal; refuse it first.
/// Keys: [0-9a-z_.-]+, not "grpc-…"; values of non-binary keys: printable ASCII.
bool legal_metadata(const sg_metadata &m, std::string *why);

/// Microseconds from now, saturated to a deadline system_clock can represent.
std::chrono::system_clock::time_point deadline_after_us(int64_t timeout_us);

/// Copies a received message's bytes into `out`; false if gRPC cannot give them.
bool copy_bytes(grpc::ByteBuffer &buffer, std::vector<uint8_t> *out);

/// Sets the deadline (timeout_us >= 0) and the metadata on `context`; false (and
/// `why`) if any metadata entry is illegal.
bool prepare_context(grpc::ClientContext &context, int64_t timeout_us, const sg_metadata *metadata,
                     size_t metadata_count, std::string *why);

}  // namespace shoal_bridge
