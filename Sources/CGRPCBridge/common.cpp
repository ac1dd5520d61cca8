#include "common.h"

namespace shoal_bridge {

LiveCounters &live() {
    static LiveCounters counters;
    return counters;
}

void set_error(sg_error *err, int32_t code, const std::string &message) {
    if (err == nullptr) return;
    std::free(err->message);  // a reused, uncleared error must not leak its old message
    err->code = code;
    err->message = static_cast<char *>(std::malloc(message.size() + 1));
    if (err->message != nullptr) std::memcpy(err->message, message.c_str(), message.size() + 1);
}

}  // namespace shoal_bridge

extern "C" void sg_error_clear(sg_error *err) {
    if (err == nullptr) return;
    std::free(err->message);
    err->message = nullptr;
    err->code = 0;
}

extern "C" sg_live_counts sg_debug_live_counts(void) {
    auto &c = shoal_bridge::live();
    return sg_live_counts{c.servers.load(), c.server_calls.load(), c.channels.load(), c.client_calls.load(),
                          c.client_streams.load()};
}
