/* Placeholder: the bridge's C header is being written. */
#ifndef SHOAL_GRPC_H
#define SHOAL_GRPC_H
#endif
