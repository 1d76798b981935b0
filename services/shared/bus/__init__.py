"""How followers receive events: one port (``EventFeed``), two adapters.

``StoreFeed`` reads the store directly (the embedded default, no broker); ``JetStreamFeed`` consumes what the
``Relay`` published to NATS JetStream (the distributed setup). Both deliver batches in commit-safe
``(tx_id, global_position)`` order and acknowledge a batch only after the handler returned.
"""
