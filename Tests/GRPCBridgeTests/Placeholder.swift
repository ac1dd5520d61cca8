// Tests for GRPCBridge live here.
