"""Tiercel: Falco's rules language and gRPC API, rebuilt in Python as microservices over NATS.

The folder `services/` is installed as the package `tiercel` (see pyproject.toml):
`services/rules/` is `tiercel.rules`, `services/common/` is `tiercel.common`, and so on.
"""

__version__ = "0.1.0"

# The Falco rules engine version whose language Tiercel implements (Falco 0.44's engine).
# Rules files requiring an engine version up to this one load; newer ones are refused.
ENGINE_VERSION = (0, 62, 0)
