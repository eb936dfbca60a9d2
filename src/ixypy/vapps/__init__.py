"""Applications written in Python on the vectorised batch layer
(ixypy.vector): each works on whole batches with NumPy and ixypy.fastpath.ops,
never on one packet at a time. firewall: 5-tuple rules from a file;
nat: a stateless IPv4 prefix and port rewriter with checksum update;
flowmon: per-flow packet and byte counters in a compiled hash table (NumPy views)."""
