// Internal helpers shared by the server and client halves of the bridge.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shoal_grpc.h"

namespace shoal_bridge {

struct LiveCounters {
    std::atomic<int64_t> servers{0};
    std::atomic<int64_t> server_calls{0};
    std::atomic<int64_t> channels{0};
    std::atomic<int64_t> client_calls{0};
    std::atomic<int64_t> client_streams{0};
};

LiveCounters &live();

/// Fills `err` (if given) with a code and a heap copy of `message`.
void set_error(sg_error *err, int32_t code, const std::string &message);

}  // namespace shoal_bridge
