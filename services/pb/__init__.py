"""Generated protobuf and gRPC code (`make protos`). Do not edit; edit protos/ instead."""
