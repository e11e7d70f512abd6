"""The semi-autoregressive decoding loop, its schedules and its remask policies."""
