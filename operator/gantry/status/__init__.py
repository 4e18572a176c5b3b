"""From observations and rollout state to one truthful status (pure)."""
