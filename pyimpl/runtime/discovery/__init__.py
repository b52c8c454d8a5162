"""Discovery backends: mem (one process), file (one machine), nats (JetStream KV)."""
