#include "shoal_grpc.h"
