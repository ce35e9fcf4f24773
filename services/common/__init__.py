"""Code every service shares: the bus contract, configuration, the broker and logging."""
