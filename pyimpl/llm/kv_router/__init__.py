"""KV-aware routing: which worker already holds a request's prefix in its KV cache (no HTTP or C knowledge).

router.KvRouter (route / prefill_done / finished) over indexer.RadixIndexer (fed by KV events) or
approximate.ApproxIndexer (no events: predicted from routing decisions), with scheduler's cost; subscriber feeds a
router from the runtime's event plane; protocol is the wire seam with the publishers."""
