"""The gRPC front: Falco's outputs and version services plus drops, inputs, rules and configs."""
